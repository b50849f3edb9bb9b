"""Listing pages: a home's page and the favorites list."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from listings import selectors, services


def listing_detail(request, pk):
    listing = get_object_or_404(selectors.with_details(selectors.listings_visible_to(request.user)), pk=pk)
    if not request.session.session_key:
        request.session.save()
    services.view_record(listing_id=listing.pk, user_id=request.user.pk if request.user.is_authenticated else None,
                         session_key=request.session.session_key)
    return render(request, "listings/detail.html", {"listing": listing})


@login_required
def favorites(request):
    return render(request, "listings/favorites.html", {"favorites": selectors.favorites_of(request.user)})
