"""Page fragments of the listing page, loaded by htmx after the page itself: the price estimate
and similar homes cost model work and queries the page's own budget does not pay for, and the
page is whole without them."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from listings import selectors as listing_selectors


def _listing(request, pk):
    listing = listing_selectors.listings_visible_to(request.user).filter(pk=pk).first()
    if listing is None:
        raise Http404
    return listing


@require_GET
@never_cache
def estimate_block(request, pk):
    return render(request, "recommendations/estimate_block.html", {"listing": _listing(request, pk)})


@require_GET
@never_cache
def similar_block(request, pk):
    return render(request, "recommendations/similar_block.html", {"listing": _listing(request, pk)})
