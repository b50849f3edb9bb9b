"""Writes of the recommendation app: recording interactions, merging an anonymous session's
interactions into an account, and asking for a person's candidates to be refreshed."""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from listings.models import Listing
from listings.services import session_digest
from realio import events
from realio.errors import ApplicationError, NotFound
from realio.redis import get_redis
from realio.redis import key as redis_key
from recommendations.models import Interaction

logger = logging.getLogger(__name__)
Kind = Interaction.Kind
CLIENT_KINDS = (Kind.GALLERY_OPENED, Kind.SEARCH_CLICK, Kind.SHARE)
SESSION_KEY = "reco_anon"
MERGED_SECONDS = 24 * 3600


def weight_of(kind):
    return float(settings.RECO_WEIGHTS.get(str(kind), 1.0))


def merged_key(session):
    return redis_key("reco", "merged", session)


def _owner_of(session):
    """The account an anonymous session was merged into (views arrive in batches, after login)."""
    if not session:
        return None
    try:
        value = get_redis().get(merged_key(session))
    except Exception:
        logger.warning("could not read the merged-session map", exc_info=True)
        return None
    return int(value) if value else None


def interaction_add(*, listing_id, kind, user_id=None, session="", created_at=None, refresh=True):
    """Record one interaction of a person or an anonymous session (the handlers' entry point).

    Returns the Interaction, or None when the listing no longer exists or nobody is named.
    The person's recommendations are refreshed after commit (fold-in, no retraining).
    """
    user_id = user_id or _owner_of(session)
    if not user_id and not session:
        return None
    if not Listing.objects.filter(pk=listing_id).exists():
        return None
    interaction = Interaction.objects.create(
        user_id=user_id, session="" if user_id else session, listing_id=listing_id, kind=kind,
        weight=weight_of(kind), created_at=created_at or timezone.now())
    if user_id and refresh:
        refresh_on_commit(user_id)
    return interaction


def refresh_on_commit(user_id):
    from recommendations import serving

    transaction.on_commit(lambda: serving.refresh_user(user_id), robust=True)


def anonymous_identity(request):
    """The stable stand-in for an anonymous visitor: the digest of their first session key,
    kept in the session's data (which survives the key change at sign-in)."""
    session = request.session
    if SESSION_KEY not in session:
        if not session.session_key:
            session.save()
        session[SESSION_KEY] = session_digest(session.session_key)
    return session[SESSION_KEY]


def interaction_record(*, user, session="", listing_id, kind):
    """A client signal from a page (gallery opened, search result clicked, shared): recorded at
    once, published as `interaction.recorded` for the refresh. 404 for a listing the caller may
    not see, 400 for another kind."""
    from listings import selectors as listing_selectors

    if kind not in CLIENT_KINDS:
        raise ApplicationError(_("kind: not a signal pages send."), errors={"kind": [_("Unknown kind.")]})
    with transaction.atomic():
        if not listing_selectors.listings_visible_to(user).filter(pk=listing_id).exists():
            raise NotFound(_("No such listing."))
        user_id = user.pk if getattr(user, "is_authenticated", False) else None
        interaction = Interaction.objects.create(
            user_id=user_id, session="" if user_id else session, listing_id=listing_id, kind=kind,
            weight=weight_of(kind), created_at=timezone.now())
        events.publish("interaction.recorded", interaction_id=interaction.pk, listing_id=listing_id, kind=kind)
    return interaction


def interactions_merge(*, user, session):
    """Give `user` the interactions their anonymous session made before signing in (or up)."""
    if not session or not getattr(user, "is_authenticated", False):
        return 0
    with transaction.atomic():
        merged = Interaction.objects.filter(user__isnull=True, session=session).update(user=user, session="")
        refresh_on_commit(user.pk)
    try:
        get_redis().set(merged_key(session), user.pk, ex=MERGED_SECONDS)
    except Exception:
        logger.warning("could not remember the merged session", exc_info=True)
    return merged


def on_user_logged_in(sender, request, user, **kwargs):
    """`user_logged_in` receiver (connected in RecommendationsConfig.ready): a cross-cutting hook
    on every web sign-in and sign-up, whatever view logged the person in."""
    session = getattr(request, "session", None) if request is not None else None
    token = session.get(SESSION_KEY) if session is not None else None
    if token:
        interactions_merge(user=user, session=token)


def interactions_export(user):
    """A person's interactions for `me/export/`."""
    return [{"listing": listing_id, "kind": kind, "at": created_at.isoformat()}
            for listing_id, kind, created_at in Interaction.objects.filter(user=user).order_by("created_at")
            .values_list("listing_id", "kind", "created_at")]


def interactions_erase(user):
    """Delete a person's interactions and cached recommendations (account deletion)."""
    from recommendations import serving

    deleted = Interaction.objects.filter(user=user).delete()[0]
    transaction.on_commit(lambda: get_redis().delete(serving.candidates_key(user.pk)), robust=True)
    return deleted
