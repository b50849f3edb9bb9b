"""Page blocks of the recommendation app: recommended homes, similar homes, the price estimate.

A block that cannot be computed (Redis or a model file unavailable) renders as empty rather
than failing the page around it.
"""

import logging

from django import template

from recommendations import services, serving, valuation

logger = logging.getLogger(__name__)
register = template.Library()


def _stamp_visitor(request):
    """Remember an anonymous visitor's identity in their session, for the merge at sign-in."""
    user = getattr(request, "user", None)
    if request is not None and hasattr(request, "session") and user is not None and not user.is_authenticated \
            and request.session.session_key:
        services.anonymous_identity(request)


@register.inclusion_tag("recommendations/_recommended.html", takes_context=True)
def recommended_homes(context, limit=8):
    request = context.get("request")
    user = getattr(request, "user", None)
    try:
        found = serving.recommended_listings(user, limit=limit)
    except Exception:
        logger.exception("could not compute recommendations")
        found = []
    return {"listings": found, "user": user}


@register.inclusion_tag("recommendations/_similar.html", takes_context=True)
def similar_homes(context, listing, limit=4):
    request = context.get("request")
    try:
        _stamp_visitor(request)
        found = [home for home, _score in serving.load([(pk, 0.0) for pk in serving.similar(listing, limit=limit)])]
    except Exception:
        logger.exception("could not compute similar homes of %s", listing.pk)
        found = []
    from django.urls import reverse

    share_url = request.build_absolute_uri(reverse("listing_page", args=[listing.pk])) if request else ""
    return {"listings": found, "listing": listing, "share_url": share_url}


@register.inclusion_tag("recommendations/_estimate.html")
def price_estimate(listing):
    try:
        estimate = valuation.estimate_for(listing) if listing.listing_type else None
    except Exception:
        logger.exception("could not estimate listing %s", listing.pk)
        estimate = None
    def percent(share):
        return None if share is None else round(share * 100)

    return {"estimate": estimate, "listing": listing,
            "error_percent": percent(estimate["median_error"]) if estimate else None,
            "coverage_percent": percent(estimate["coverage"]) if estimate else None}
