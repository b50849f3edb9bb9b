"""Reads on bookings: a person's viewings, an agent's agenda, exports."""

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils import timezone

from bookings.models import Viewing


def viewings_of(user) -> QuerySet[Viewing]:
    """Viewings `user` takes part in, as customer or as agent (staff: all)."""
    queryset = Viewing.objects.select_related("listing", "agent", "customer")
    if getattr(user, "sees_everything", False):
        return queryset
    return queryset.filter(Q(customer=user) | Q(agent=user))


def upcoming(queryset: QuerySet[Viewing], *, now=None) -> QuerySet[Viewing]:
    """Requested and confirmed viewings that have not ended, soonest first."""
    now = now or timezone.now()
    return queryset.filter(status__in=Viewing.ACTIVE, end__gt=now).order_by("start", "id")


def past(queryset: QuerySet[Viewing], *, now=None) -> QuerySet[Viewing]:
    """Everything else: ended, cancelled, declined, expired; latest first."""
    now = now or timezone.now()
    return queryset.exclude(status__in=Viewing.ACTIVE, end__gt=now).order_by("-start", "-id")


def agent_feed_viewings(agent, *, now=None) -> QuerySet[Viewing]:
    """What an agent's calendar feed shows: the last 30 days and everything ahead, cancelled
    ones included (so calendar apps remove them)."""
    now = now or timezone.now()
    return (Viewing.objects.filter(agent=agent, start__gte=now - dt.timedelta(days=30))
            .exclude(status=Viewing.Status.EXPIRED).select_related("listing", "agent", "customer")
            .order_by("start", "id")[:2000])


def viewings_export(user):
    """The caller's viewings for `me/export/`."""
    return [
        {"id": v.pk, "listing": v.listing_id, "as": "customer" if v.customer_id == user.pk else "agent",
         "start": v.start.isoformat(), "end": v.end.isoformat(), "status": v.status,
         "note": v.note if v.customer_id == user.pk else "", "cancel_reason": v.cancel_reason,
         "created_at": v.created_at.isoformat()}
        for v in Viewing.objects.filter(Q(customer=user) | Q(agent=user)).order_by("start", "id")
    ]


def viewings_taking_part(user) -> QuerySet[Viewing]:
    """The viewings of the `/bookings/` page: those `user` takes part in as customer or as agent
    (staff too: the page is their own agenda, the admin shows everyone's), with what the page
    shows of each listing (its photos for the thumbnail)."""
    return (Viewing.objects.filter(Q(customer=user) | Q(agent=user))
            .select_related("listing", "agent", "customer").prefetch_related("listing__photos"))
