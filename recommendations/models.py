"""The interaction log that recommendations learn from, and the versions of the trained models."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Interaction(models.Model):
    """One signal of interest of a person (or an anonymous session) in a listing.

    `weight` is copied from RECO_WEIGHTS when the signal is recorded, so changing the settings
    re-weights only new signals; training sums the weights per person and listing.
    """

    class Kind(models.TextChoices):
        VIEW = "view", _("Viewed")
        GALLERY_OPENED = "gallery_opened", _("Opened the photos")
        SEARCH_CLICK = "search_click", _("Clicked in search results")
        SHARE = "share", _("Shared")
        FAVORITE = "favorite", _("Saved to favorites")
        UNFAVORITE = "unfavorite", _("Removed from favorites")
        CONTACT = "contact", _("Contacted the agent")
        BOOKING = "booking", _("Booked a viewing")
        SAVED_SEARCH = "saved_search", _("Matched a saved search")

    # Interactions are the person's data: deleted with the account (export lists them).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="interactions")
    # The anonymous session's digest (listings.services.session_digest), never the key itself.
    session = models.CharField(_("session"), max_length=64, blank=True, default="")
    listing = models.ForeignKey("listings.Listing", on_delete=models.CASCADE, related_name="interactions")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    weight = models.FloatField(_("weight"))
    created_at = models.DateTimeField(_("time"), db_index=True)

    class Meta:
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        constraints = [
            models.CheckConstraint(condition=Q(user__isnull=False) | ~Q(session=""),
                                   name="interaction_has_someone"),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="interaction_user_idx"),
            models.Index(fields=["session"], condition=Q(user__isnull=True), name="interaction_anon_session_idx"),
        ]

    def __str__(self):
        return f"{self.user_id or self.session} {self.kind} {self.listing_id}"


class ModelVersion(models.Model):
    """One trained model: its artefact under RECO_MODEL_DIR, its hold-out metrics, whether it serves.

    At most one version of each kind is promoted (a partial unique constraint); serving
    processes follow the promoted one (recommendations.store).
    """

    class Kind(models.TextChoices):
        RECOMMENDER = "recommender", _("Recommender")
        VALUATION = "valuation", _("Valuation")

    class Status(models.TextChoices):
        TRAINED = "trained", _("Trained")
        PROMOTED = "promoted", _("Promoted")
        REJECTED = "rejected", _("Not better than the current one")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    version = models.CharField(_("version"), max_length=64, unique=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.TRAINED)
    promoted = models.BooleanField(_("promoted"), default=False)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    train_seconds = models.FloatField(_("training time (s)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    promoted_at = models.DateTimeField(_("promoted"), null=True, blank=True)

    class Meta:
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind"], condition=Q(promoted=True), name="model_version_one_promoted"),
        ]

    def __str__(self):
        return self.version
