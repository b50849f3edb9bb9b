"""Recommendations' reactions to other apps' events: each becomes an Interaction (DESIGN.md
section 2's catalogue), and the person's recommendations are folded in again after commit.

Contact: chat publishes `chat.conversation_started` {conversation_id, listing_id} when a
customer opens a conversation with an agent about a listing; the handler reads the
conversation's listing and customer."""

import logging

from realio import events
from recommendations import services, serving
from recommendations.models import Interaction

logger = logging.getLogger(__name__)
Kind = Interaction.Kind
SAVED_SEARCH_LISTINGS = 5


@events.handler("listing.viewed", queue="ml")
def record_view(event):
    payload = event.payload
    services.interaction_add(listing_id=payload["listing_id"], kind=Kind.VIEW, user_id=payload.get("user_id"),
                             session=payload.get("session") or "", created_at=event.created_at)


@events.handler("listing.favorited", queue="ml")
def record_favorite(event):
    services.interaction_add(listing_id=event.payload["listing_id"], kind=Kind.FAVORITE,
                             user_id=event.payload["user_id"], created_at=event.created_at)


@events.handler("listing.unfavorited", queue="ml")
def record_unfavorite(event):
    services.interaction_add(listing_id=event.payload["listing_id"], kind=Kind.UNFAVORITE,
                             user_id=event.payload["user_id"], created_at=event.created_at)


@events.handler("booking.requested", queue="ml")
def record_booking(event):
    from bookings.models import Viewing

    viewing = Viewing.objects.filter(pk=event.payload["booking_id"]).values("listing_id", "customer_id").first()
    if viewing is not None:
        services.interaction_add(listing_id=viewing["listing_id"], kind=Kind.BOOKING,
                                 user_id=viewing["customer_id"], created_at=event.created_at)


@events.handler("chat.conversation_started", queue="ml")
def record_contact(event):
    from chat.models import Conversation

    conversation = (Conversation.objects.filter(pk=event.payload["conversation_id"])
                    .values("listing_id", "customer_id").first())
    if conversation is not None and conversation["listing_id"]:
        services.interaction_add(listing_id=conversation["listing_id"], kind=Kind.CONTACT,
                                 user_id=conversation["customer_id"], created_at=event.created_at)


@events.handler("saved_search.created", queue="ml")
def record_saved_search(event):
    """A saved search's filters are a preference: its few most viewed active matches get a
    light `saved_search` interaction each (cold start reads the saved searches themselves)."""
    from listings.models import Listing
    from search.models import SavedSearch

    saved = SavedSearch.objects.filter(pk=event.payload["saved_search_id"]).first()
    if saved is None:
        return
    matches = Listing.objects.filter(status=Listing.Status.ACTIVE)
    if saved.listing_types:
        matches = matches.filter(listing_type__in=saved.listing_types)
    if saved.property_types:
        matches = matches.filter(property_type__in=saved.property_types)
    if saved.min_price is not None:
        matches = matches.filter(price__gte=saved.min_price)
    if saved.max_price is not None:
        matches = matches.filter(price__lte=saved.max_price)
    if saved.min_beds is not None:
        matches = matches.filter(bedrooms__gte=saved.min_beds)
    if saved.area is not None:
        matches = matches.filter(location__intersects=saved.area)
    ids = list(matches.order_by("-view_count", "-published_at").values_list("pk", flat=True)[:SAVED_SEARCH_LISTINGS])
    for listing_id in ids:
        services.interaction_add(listing_id=listing_id, kind=Kind.SAVED_SEARCH, user_id=saved.user_id,
                                 created_at=event.created_at, refresh=False)
    services.refresh_on_commit(saved.user_id)


@events.handler("interaction.recorded", queue="ml")
def refresh_after_client_signal(event):
    interaction = Interaction.objects.filter(pk=event.payload["interaction_id"]).values("user_id").first()
    if interaction is not None and interaction["user_id"]:
        serving.refresh_user(interaction["user_id"])


@events.handler("listing.updated", queue="ml")
def forget_changed_photos(event):
    if "photos" in (event.payload.get("fields") or ()):
        serving.forget_body(event.payload["listing_id"])
