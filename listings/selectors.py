"""Reads on listings: what each person may see, lists for pages and the API."""

from django.db.models import Prefetch, Q, QuerySet

from listings.models import Favorite, Listing, ListingPhoto, PriceChange, RecentlyViewed

PUBLIC_STATUSES = (Listing.Status.ACTIVE, Listing.Status.PENDING, Listing.Status.SOLD, Listing.Status.RENTED)


def listings_visible_to(user) -> QuerySet[Listing]:
    """Listings `user` may open: anyone sees published ones (active, and under offer, sold or
    rented, as a property site shows them); an agent also their own drafts and withdrawn ones;
    staff everything."""
    queryset = Listing.objects.all()
    if getattr(user, "sees_everything", False):
        return queryset
    visible = Q(status__in=PUBLIC_STATUSES)
    if getattr(user, "is_authenticated", False) and user.is_agent:
        visible |= Q(agent=user)
    return queryset.filter(visible)


def published_listings() -> QuerySet[Listing]:
    """Listings everyone may open (what `listings_visible_to` gives an anonymous visitor)."""
    return Listing.objects.filter(status__in=PUBLIC_STATUSES)


def listings_listed_for(user) -> QuerySet[Listing]:
    """The `listings/` list: active listings for everyone, plus an agent's own in any status."""
    queryset = Listing.objects.all()
    if getattr(user, "sees_everything", False):
        return queryset
    listed = Q(status=Listing.Status.ACTIVE)
    if getattr(user, "is_authenticated", False) and user.is_agent:
        listed |= Q(agent=user)
    return queryset.filter(listed)


def with_details(queryset: QuerySet[Listing]) -> QuerySet[Listing]:
    """What the listing representation needs, in a constant number of queries."""
    return queryset.select_related("agent").prefetch_related(
        Prefetch("photos", queryset=ListingPhoto.objects.order_by("position", "id")),
        Prefetch("price_changes", queryset=PriceChange.objects.order_by("changed_at", "id")),
    )


def newest_listings(*, limit=8) -> QuerySet[Listing]:
    return with_details(Listing.objects.filter(status=Listing.Status.ACTIVE).order_by("-published_at", "-id"))[:limit]


def favorites_of(user) -> QuerySet[Favorite]:
    """A person's favorites, newest first, whatever the listing's status now (they saved it;
    they see it went under offer or sold). Drafts and withdrawn homes drop out."""
    return Favorite.objects.filter(user=user).filter(
        Q(listing__status__in=PUBLIC_STATUSES) | Q(listing__agent=user)
    ).select_related("listing", "listing__agent").prefetch_related(
        Prefetch("listing__photos", queryset=ListingPhoto.objects.order_by("position", "id")),
        Prefetch("listing__price_changes", queryset=PriceChange.objects.order_by("changed_at", "id")),
    )


def favorite_ids_of(user, listing_ids) -> set[int]:
    if not getattr(user, "is_authenticated", False):
        return set()
    return set(Favorite.objects.filter(user=user, listing_id__in=listing_ids).values_list("listing_id", flat=True))


def recently_viewed_by(user, *, limit=12) -> list[Listing]:
    """The homes `user` viewed last, most recent first (still visible to them)."""
    ids = list(RecentlyViewed.objects.filter(user=user).order_by("-viewed_at")
               .values_list("listing_id", flat=True)[:limit])
    found = with_details(listings_visible_to(user)).in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]
