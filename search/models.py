"""Search's own tables: the keyword vocabulary for typo tolerance, and saved searches."""

from django.conf import settings
from django.contrib.gis.db import models as gis_models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _


class SearchTerm(models.Model):
    """A distinct word of the active listings' text. Keywords not in it are corrected to the
    most similar word (pg_trgm) before the full-text index is used."""

    word = models.CharField(max_length=64, primary_key=True)

    class Meta:
        verbose_name = _("search term")
        verbose_name_plural = _("search terms")
        indexes = [GinIndex(OpClass("word", name="gin_trgm_ops"), name="search_term_trgm")]

    def __str__(self):
        return self.word


class SavedSearch(models.Model):
    """A person's saved search and how often they want alerts for new matches.

    `query` holds the canonical request parameters (search.query.SearchQuery.to_params); the
    columns after it are extracted from it so that, when a listing is published or its price
    drops, the searches it matches are found by an indexed query, not by running every search.
    """

    class Frequency(models.TextChoices):
        INSTANT = "instant", _("As soon as a home matches")
        DAILY = "daily", _("Daily digest")
        WEEKLY = "weekly", _("Weekly digest")
        NEVER = "never", _("No alerts")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches")
    name = models.CharField(_("name"), max_length=100)
    query = models.JSONField(_("query"), default=dict)
    alert_frequency = models.CharField(_("alerts"), max_length=8, choices=Frequency.choices,
                                       default=Frequency.DAILY)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    last_alerted_at = models.DateTimeField(_("last alert"), null=True, blank=True)

    # Extracted criteria (empty array / null = any).
    listing_types = ArrayField(models.CharField(max_length=8), default=list, blank=True)
    property_types = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    features = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    min_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    max_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    min_beds = models.PositiveSmallIntegerField(null=True, blank=True)
    min_baths = models.PositiveSmallIntegerField(null=True, blank=True)
    min_area = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    max_area = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    min_year = models.PositiveSmallIntegerField(null=True, blank=True)
    max_year = models.PositiveSmallIntegerField(null=True, blank=True)
    keywords = models.CharField(max_length=200, blank=True)
    # The area searched (circle, box or polygon) as one geography, for an indexed containment test.
    area = gis_models.PolygonField(geography=True, srid=4326, null=True, blank=True)

    class Meta:
        verbose_name = _("saved search")
        verbose_name_plural = _("saved searches")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint("user", Upper("name"), name="saved_search_name_unique_per_user"),
        ]
        indexes = [
            models.Index(fields=["alert_frequency", "max_price"], name="saved_search_alert_price_idx"),
            GinIndex(fields=["property_types"], name="saved_search_types_gin"),
        ]

    def __str__(self):
        return self.name


class SavedSearchMatch(models.Model):
    """A listing that matched a saved search, once per (search, listing, reason).

    The unique key makes alerts idempotent (a handler run twice, a home published, withdrawn
    and re-listed within minutes); `alerted_at` says whether an alert covered it yet: set at
    once for instant alerts, by the digest for daily and weekly ones.
    """

    class Reason(models.TextChoices):
        NEW = "new", _("New listing")
        PRICE_DROP = "price_drop", _("Price reduced")
        RELISTED = "relisted", _("Back on the market")

    saved_search = models.ForeignKey(SavedSearch, on_delete=models.CASCADE, related_name="matches")
    # A deleted listing has nothing left to alert about: its matches go with it.
    listing = models.ForeignKey("listings.Listing", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    matched_at = models.DateTimeField(_("matched"))
    alerted_at = models.DateTimeField(_("alerted"), null=True, blank=True)

    class Meta:
        verbose_name = _("saved search match")
        verbose_name_plural = _("saved search matches")
        constraints = [
            models.UniqueConstraint(fields=["saved_search", "listing", "reason"], name="saved_search_match_once"),
        ]
        indexes = [
            models.Index(fields=["saved_search", "matched_at"], condition=models.Q(alerted_at__isnull=True),
                         name="saved_search_match_pending_idx"),
        ]

    def __str__(self):
        return f"{self.saved_search_id} ← {self.listing_id} ({self.reason})"
