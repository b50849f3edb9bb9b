"""Saved-search alerts: when a home comes on the market (published or re-listed) or its price
drops, the saved searches it matches get a `saved_search.matched` event (search.services does
the work; these handlers only read the listing events)."""

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from listings.models import Listing
from realio import events
from realio.models import OutboxEvent
from search import services
from search.models import SavedSearchMatch

Reason = SavedSearchMatch.Reason
# A first publication sets `published_at` in the transaction that publishes the event; a home
# published longer ago than this before the event has been on the market before.
FIRST_PUBLICATION_WINDOW = timedelta(minutes=5)


@events.handler("listing.published", queue="search")
def alert_new_listing(event):
    services.saved_search_alerts_for_listing(listing_id=event.payload["listing_id"], reason=Reason.NEW)


@events.handler("listing.status_changed", queue="search")
def alert_relisted_listing(event):
    if event.payload.get("new") != "active" or not _is_relisting(event):
        return
    services.saved_search_alerts_for_listing(listing_id=event.payload["listing_id"], reason=Reason.RELISTED)


@events.handler("listing.price_changed", queue="search")
def alert_price_drop(event):
    try:
        old, new = Decimal(event.payload["old"]), Decimal(event.payload["new"])
    except (KeyError, TypeError, InvalidOperation):
        return
    if new >= old:
        return
    # Relay order is not guaranteed: alert only while the price is still below the one it dropped from.
    if not Listing.objects.filter(pk=event.payload["listing_id"], price__lt=old).exists():
        return
    services.saved_search_alerts_for_listing(listing_id=event.payload["listing_id"], reason=Reason.PRICE_DROP)


def _is_relisting(event):
    """Whether this change to active brings back a home that was on the market before.

    The first publication also changes the status to active (from draft, or from withdrawn for
    a draft withdrawn before it was ever published); `listing.published` alerts for that one.
    """
    if event.payload.get("old") == Listing.Status.DRAFT:
        return False
    published_at = Listing.objects.filter(pk=event.payload["listing_id"]).values_list(
        "published_at", flat=True).first()
    if published_at is None:
        return False
    if published_at < event.created_at - FIRST_PUBLICATION_WINDOW:
        return True
    # Published within minutes of this change: re-listed only if an earlier event activated it.
    return OutboxEvent.objects.filter(
        type="listing.status_changed", payload__listing_id=event.payload["listing_id"], payload__new="active",
        created_at__gte=event.created_at - FIRST_PUBLICATION_WINDOW * 2, pk__lt=event.pk,
    ).exists()
