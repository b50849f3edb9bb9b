"""Notifications' reactions to other apps' events: each handler reloads the current state
(payloads carry ids) and calls services.notify once per recipient with the event as source, so
a replayed event creates nothing twice. The booking.* and chat.* kinds join here."""

from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model

from listings.models import Favorite, Listing
from notifications import kinds, services
from realio import events

FAVORITES_BATCH = 500
# Status changes of a favorite worth telling: off the market, under offer, or back on it.
FAVORITE_STATUSES = {Listing.Status.PENDING, Listing.Status.SOLD, Listing.Status.RENTED, Listing.Status.WITHDRAWN,
                     Listing.Status.ACTIVE}


def source_of(event):
    return f"event:{event.pk}"


def _active_user(user_id):
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


def listing_context(listing):
    return {"listing": listing, "listing_id": listing.pk, "listing_title": listing.title,
            "listing_url": f"/listings/{listing.pk}/"}


def listing_data(listing):
    return {"listing_id": listing.pk, "listing_title": listing.title, "city": listing.city,
            "price": str(listing.price), "currency": listing.currency}


@events.handler("account.created", queue="notifications")
def welcome(event):
    user = _active_user(event.payload.get("user_id"))
    if user is None:
        return
    services.notify(user=user, kind=kinds.WELCOME.name, source=source_of(event), url="/",
                    context={"role": event.payload.get("role")}, data={"role": event.payload.get("role")})


@events.handler("saved_search.matched", queue="notifications")
def saved_search_match(event):
    """Instant alerts; daily and weekly matches wait for `saved_search.digest_due`."""
    from search.models import SavedSearch

    payload = event.payload
    if payload.get("frequency") != SavedSearch.Frequency.INSTANT:
        return
    saved = (SavedSearch.objects.select_related("user")
             .filter(pk=payload.get("saved_search_id"), user__is_active=True)
             .exclude(alert_frequency=SavedSearch.Frequency.NEVER).first())
    listing = Listing.objects.filter(pk=payload.get("listing_id"), status=Listing.Status.ACTIVE).first()
    if saved is None or listing is None:
        return
    reason = payload.get("reason", "new")
    services.notify(
        user=saved.user, kind=kinds.SAVED_SEARCH_MATCH.name, source=source_of(event), url=f"/listings/{listing.pk}/",
        context={**listing_context(listing), "saved_search": saved, "reason": reason},
        data={**listing_data(listing), "saved_search_id": saved.pk, "saved_search_name": saved.name,
              "reason": reason})


@events.handler("saved_search.digest_due", queue="notifications")
def saved_search_digest(event):
    from search import services as search_services
    from search.models import SavedSearch

    payload = event.payload
    saved = (SavedSearch.objects.select_related("user")
             .filter(pk=payload.get("saved_search_id"), user__is_active=True).first())
    if saved is None:
        return
    ids = [int(pk) for pk in payload.get("listing_ids", [])]
    by_id = Listing.objects.in_bulk(ids)
    listings = [by_id[pk] for pk in ids if pk in by_id and by_id[pk].status == Listing.Status.ACTIVE]
    if not listings:
        return
    total = max(int(payload.get("total") or 0), len(listings))
    token = search_services.saved_search_unsubscribe_token(saved)
    services.notify(
        user=saved.user, kind=kinds.SAVED_SEARCH_DIGEST.name, source=source_of(event),
        url=f"/saved-searches/#saved-search-{saved.pk}",
        context={"saved_search": saved, "total": total, "listings": listings[:5],
                 "frequency": payload.get("frequency")},
        data={"saved_search_id": saved.pk, "saved_search_name": saved.name, "total": total,
              "frequency": payload.get("frequency"),
              "stop_url": f"/saved-searches/unsubscribe/{token}/",
              "listings": [{**listing_data(listing), "url": f"/listings/{listing.pk}/"} for listing in listings[:20]]})


def _favoriters(listing):
    """Active people who favorited the listing (not its own agent), in id batches."""
    last = 0
    while True:
        users = list(get_user_model().objects.filter(
            pk__in=Favorite.objects.filter(listing=listing).values("user_id"), is_active=True, pk__gt=last)
            .exclude(pk=listing.agent_id).order_by("pk")[:FAVORITES_BATCH])
        if not users:
            return
        yield from users
        last = users[-1].pk


@events.handler("listing.price_changed", queue="notifications")
def favorite_price_drop(event):
    try:
        old, new = Decimal(event.payload["old"]), Decimal(event.payload["new"])
    except (KeyError, TypeError, InvalidOperation):
        return
    if new >= old:
        return
    # Relay order is not guaranteed: tell only while the home is on the market below the old price.
    listing = Listing.objects.filter(pk=event.payload.get("listing_id"), status=Listing.Status.ACTIVE,
                                     price__lt=old).first()
    if listing is None:
        return
    context = {**listing_context(listing), "old_price": old, "new_price": listing.price, "currency": listing.currency}
    data = {**listing_data(listing), "old_price": str(old), "new_price": str(listing.price)}
    for user in _favoriters(listing):
        services.notify(user=user, kind=kinds.FAVORITE_PRICE_DROP.name, source=source_of(event),
                        url=f"/listings/{listing.pk}/", context=context, data=data)


@events.handler("listing.status_changed", queue="notifications")
def favorite_status_changed(event):
    new, old = event.payload.get("new"), event.payload.get("old")
    if new not in FAVORITE_STATUSES or old == Listing.Status.DRAFT or old == new:
        return
    # Only while it still holds: a later change superseded this one otherwise.
    listing = Listing.objects.filter(pk=event.payload.get("listing_id"), status=new).first()
    if listing is None:
        return
    context = {**listing_context(listing), "old_status": old, "new_status": new,
               "status_label": listing.get_status_display()}
    data = {**listing_data(listing), "old_status": old, "new_status": new}
    for user in _favoriters(listing):
        services.notify(user=user, kind=kinds.FAVORITE_STATUS.name, source=source_of(event),
                        url=f"/listings/{listing.pk}/", context=context, data=data)


# --- bookings ---------------------------------------------------------------------------------

def _viewing(event):
    from bookings.models import Viewing

    return (Viewing.objects.select_related("listing", "agent", "customer")
            .filter(pk=event.payload.get("booking_id")).first())


def _notify_viewing(event, kind, viewing, recipients, **extra):
    """One notification per recipient (the viewing's customer and/or agent) of `kind`."""
    from zoneinfo import ZoneInfo

    listing = viewing.listing
    local = viewing.start.astimezone(ZoneInfo(listing.time_zone))
    context = {**listing_context(listing), "viewing": viewing, "when": local.replace(tzinfo=None),
               "time_zone": listing.time_zone, "agent_name": viewing.agent.name,
               "customer_name": viewing.customer.name, **extra}
    data = {**listing_data(listing), "booking_id": viewing.pk, "start": local.isoformat(),
            "time_zone": listing.time_zone, "status": viewing.status,
            **{k: v for k, v in extra.items() if isinstance(v, str | int | bool)}}
    for user in recipients:
        if user is None or not user.is_active:
            continue
        role = "agent" if user.pk == viewing.agent_id else "customer"
        url = "/admin/bookings/viewing/" if role == "agent" else "/bookings/"
        services.notify(user=user, kind=kind.name, source=source_of(event), url=url,
                        context={**context, "role": role}, data={**data, "role": role})


@events.handler("booking.requested", queue="notifications")
def booking_requested(event):
    """The agent hears of a new request (or, under instant booking, a new booked viewing)."""
    viewing = _viewing(event)
    if viewing is None:
        return
    _notify_viewing(event, kinds.BOOKING_REQUESTED, viewing, [viewing.agent],
                    instant=bool(event.payload.get("instant")), note=viewing.note)


@events.handler("booking.confirmed", queue="notifications")
def booking_confirmed(event):
    viewing = _viewing(event)
    if viewing is None or viewing.status != viewing.Status.CONFIRMED:
        return
    _notify_viewing(event, kinds.BOOKING_CONFIRMED, viewing, [viewing.customer],
                    instant=bool(event.payload.get("instant")))


@events.handler("booking.declined", queue="notifications")
def booking_declined(event):
    viewing = _viewing(event)
    if viewing is None:
        return
    _notify_viewing(event, kinds.BOOKING_DECLINED, viewing, [viewing.customer], reason=viewing.cancel_reason)


@events.handler("booking.cancelled", queue="notifications")
def booking_cancelled(event):
    """The other party is told; when staff or the system cancelled, both are."""
    viewing = _viewing(event)
    if viewing is None:
        return
    by = event.payload.get("by")
    recipients = {"customer": [viewing.agent], "agent": [viewing.customer]}.get(by, [viewing.customer, viewing.agent])
    _notify_viewing(event, kinds.BOOKING_CANCELLED, viewing, recipients, reason=viewing.cancel_reason,
                    by=by or "system")


@events.handler("booking.rescheduled", queue="notifications")
def booking_rescheduled(event):
    from zoneinfo import ZoneInfo

    from django.utils.dateparse import parse_datetime

    viewing = _viewing(event)
    if viewing is None or not viewing.is_active:
        return
    old = parse_datetime(event.payload.get("old_start") or "")
    old_when = old.astimezone(ZoneInfo(viewing.listing.time_zone)).replace(tzinfo=None) if old else None
    _notify_viewing(event, kinds.BOOKING_RESCHEDULED, viewing, [viewing.agent], old_when=old_when)


@events.handler("booking.expired", queue="notifications")
def booking_expired(event):
    viewing = _viewing(event)
    if viewing is None:
        return
    _notify_viewing(event, kinds.BOOKING_EXPIRED, viewing, [viewing.customer])


@events.handler("booking.reminder_due", queue="notifications")
def booking_reminder(event):
    """Both parties, while the viewing still stands at the time the reminder was for."""
    viewing = _viewing(event)
    if viewing is None or viewing.status != viewing.Status.CONFIRMED:
        return
    _notify_viewing(event, kinds.BOOKING_REMINDER, viewing, [viewing.customer, viewing.agent],
                    lead=event.payload.get("lead", ""))
