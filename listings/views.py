"""Listing pages: a home's page, saving it to favorites and the favorites list."""

import contextlib
import functools
import json
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from listings import selectors, services
from listings.models import Favorite, Feature, Listing
from realio import cache as versioned_cache
from realio.errors import NotFound

DOWN_PAYMENT_SHARE = Decimal("0.20")

# schema.org types for the home itself (an Accommodation where there is one to live in).
SCHEMA_TYPES = {
    Listing.PropertyType.HOUSE: "SingleFamilyResidence",
    Listing.PropertyType.APARTMENT: "Apartment",
    Listing.PropertyType.CONDO: "Apartment",
    Listing.PropertyType.TOWNHOUSE: "House",
    Listing.PropertyType.LAND: "Place",
    Listing.PropertyType.COMMERCIAL: "Place",
}
SCHEMA_AVAILABILITY = {
    Listing.Status.ACTIVE: "https://schema.org/InStock",
    Listing.Status.PENDING: "https://schema.org/LimitedAvailability",
    Listing.Status.SOLD: "https://schema.org/SoldOut",
    Listing.Status.RENTED: "https://schema.org/SoldOut",
}
SCHEMA_RENT_UNITS = {Listing.RentPeriod.MONTH: "MON", Listing.RentPeriod.WEEK: "WEE"}
RENT_PERIODS_PER_YEAR = {Listing.RentPeriod.MONTH: 12, Listing.RentPeriod.WEEK: 52}

# The price chart's drawing area, in SVG user units (the SVG scales to its box).
CHART_WIDTH, CHART_HEIGHT = 640, 240
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 150, 16, 16, 40

# What <script type="application/ld+json"> must not contain raw: "</script>" would end it early.
JSON_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def listing_detail(request, pk):
    # Read before the listing: a write committed in between then bumps it past this version, so
    # fragments of the older row are never kept under the newer version.
    fragment_version = versioned_cache.version(versioned_cache.listing_namespace(pk))
    # The photos and the price history are read when a fragment that shows them is rendered (a
    # context value that is callable is called by the template): not at all when all are cached.
    queryset = selectors.listings_visible_to(request.user).select_related("agent__agent_profile")
    listing = get_object_or_404(queryset, pk=pk)
    if not request.session.session_key:
        request.session.save()
    services.view_record(listing_id=listing.pk, user_id=request.user.pk if request.user.is_authenticated else None,
                         session_key=request.session.session_key)

    page_url = request.build_absolute_uri(reverse("listing_page", args=[listing.pk]))
    photos = once(lambda: list(listing.photos.order_by("position", "id")))
    prices = once(lambda: list(listing.price_changes.order_by("changed_at", "id")))
    image_urls = once(lambda: [request.build_absolute_uri(photo.large_url) for photo in photos()])
    profile = getattr(listing.agent, "agent_profile", None)
    context = {
        "fragment_seconds": settings.LISTING_CACHE_SECONDS,
        "fragment_cache": "default" if settings.LISTING_CACHE_SECONDS > 0 else "none",
        "fragment_version": fragment_version,
        "site_root": request.build_absolute_uri("/"),
        "listing": listing,
        "photos": photos,
        "agent": listing.agent,
        "agency": profile.agency if profile else "",
        "is_owner": request.user.is_authenticated and request.user.pk == listing.agent_id,
        "is_favorite": _is_favorite(request.user, listing),
        "features": [Feature(slug).label for slug in listing.features if slug in Feature.values],
        "price_per_sqm": (listing.price / listing.area_sqm).quantize(Decimal("1"))
        if listing.listing_type == Listing.ListingType.SALE and listing.area_sqm else None,
        "rent_per_year": listing.price * RENT_PERIODS_PER_YEAR[listing.rent_period]
        if listing.rent_period in RENT_PERIODS_PER_YEAR else None,
        "price_history": once(lambda: price_history_rows(prices())),
        "price_chart": once(lambda: price_chart(prices(), now=timezone.now())),
        "down_payment": (listing.price * DOWN_PAYMENT_SHARE).quantize(Decimal("1")),
        "page_url": page_url,
        "og_image": once(lambda: image_urls()[0] if image_urls() else ""),
        "json_ld": once(lambda: json_ld_script(listing_json_ld(listing, url=page_url, images=image_urls()))),
        "map": {
            "tile_url": settings.MAP_TILE_URL,
            "attribution": settings.MAP_TILE_ATTRIBUTION,
            # Leaflet guesses its marker images' folder from its stylesheet, which fails once
            # static files are hashed: the page names each image instead.
            "icon_url": static("vendor/leaflet/images/marker-icon.png"),
            "icon_retina_url": static("vendor/leaflet/images/marker-icon-2x.png"),
            "shadow_url": static("vendor/leaflet/images/marker-shadow.png"),
        },
    }
    return render(request, "listings/detail.html", context)


def once(compute):
    """A value computed on its first use and kept: for a template context, whose callable values
    the template calls each time it reads them."""
    return functools.cache(compute)


def _is_favorite(user, listing):
    return user.is_authenticated and Favorite.objects.filter(user=user, listing=listing).exists()


@require_POST
def favorite_toggle(request, pk):
    """Save a home to the signed-in person's favorites or take it out (`action` = add / remove,
    anything else toggles). htmx requests get the button back; others go back where they were."""
    if not request.user.is_authenticated:
        # Back to the home's page after signing in (this URL takes only POSTs); htmx is told to
        # navigate rather than swap the sign-in page into the button.
        login = redirect_to_login(reverse("listing_page", args=[pk]))
        if request.headers.get("HX-Request"):
            return HttpResponse(status=204, headers={"HX-Redirect": login.url})
        return login
    listing = selectors.listings_visible_to(request.user).filter(pk=pk).first()
    if listing is None:
        raise Http404(_("No such listing."))
    action = request.POST.get("action")
    if action not in ("add", "remove"):
        action = "remove" if _is_favorite(request.user, listing) else "add"
    if action == "add":
        try:
            services.favorite_add(user=request.user, listing_id=listing.pk)
        except NotFound as exc:  # withdrawn since it was fetched
            raise Http404(str(exc)) from exc
    else:
        with contextlib.suppress(NotFound):  # not saved (a second click, another tab): already as asked
            services.favorite_remove(user=request.user, listing_id=listing.pk)
    is_favorite = action == "add"

    if request.headers.get("HX-Request"):
        return render(request, "listings/_favorite_button.html", {"listing": listing, "is_favorite": is_favorite})
    if is_favorite:
        messages.success(request, _("Saved to your favorites."))
    else:
        messages.success(request, _("Removed from your favorites."))
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = reverse("listing_page", args=[listing.pk])
    return redirect(next_url)


@login_required
def favorites(request):
    return render(request, "listings/favorites.html", {"favorites": list(selectors.favorites_of(request.user))})


# --- what the detail page shows ----------------------------------------------------------------

def price_history_rows(changes):
    """Each price with its change from the one before (amount and percent), oldest first."""
    rows, previous = [], None
    for change in changes:
        row = {"price": change.price, "changed_at": change.changed_at, "direction": None, "amount": None,
               "percent": None}
        if previous is not None and change.price != previous:
            difference = change.price - previous
            row["direction"] = "up" if difference > 0 else "down"
            row["amount"] = abs(difference)
            if previous:
                row["percent"] = (abs(difference) * 100 / previous).quantize(Decimal("0.1"))
        rows.append(row)
        previous = change.price
    return rows


def price_chart(changes, *, now):
    """The price history as an SVG step line (a price holds until the next change, the last
    one until now), in SVG user units; None when the price never changed."""
    if len(changes) < 2:
        return None
    start = changes[0].changed_at
    end = max(now, changes[-1].changed_at)
    span = (end - start).total_seconds()
    low = min(change.price for change in changes)
    high = max(change.price for change in changes)
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM

    def x(index, at):
        # Changes all at one instant (span 0) are spread evenly instead.
        share = (at - start).total_seconds() / span if span > 0 else index / len(changes)
        return round(CHART_LEFT + share * plot_width, 1)

    def y(price):
        if high == low:
            return round(CHART_TOP + plot_height / 2, 1)
        return round(CHART_TOP + float((high - price) / (high - low)) * plot_height, 1)

    markers = [{"x": x(i, change.changed_at), "y": y(change.price), "price": change.price,
                "changed_at": change.changed_at} for i, change in enumerate(changes)]
    points = []
    for marker, following in zip(markers, [*markers[1:], None], strict=True):
        points.append((marker["x"], marker["y"]))
        end_x = following["x"] if following else CHART_LEFT + plot_width
        points.append((end_x, marker["y"]))
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "points": " ".join(f"{px},{py}" for px, py in points),
        "markers": markers,
        "left": CHART_LEFT,
        "right": CHART_LEFT + plot_width,
        "top": CHART_TOP,
        "bottom": CHART_TOP + plot_height,
        "label_x": CHART_LEFT - 8,
        "label_y": CHART_HEIGHT - 12,
        "high": {"price": high, "y": y(high)},
        "low": {"price": low, "y": y(low)} if low != high else None,
        "start": start,
        "end": end,
    }


def listing_json_ld(listing, *, url, images):
    """schema.org data for search engines: the listing, its offer and the home offered."""
    address = {
        "@type": "PostalAddress",
        "streetAddress": listing.street,
        "addressLocality": listing.city,
        "addressRegion": listing.region,
        "postalCode": listing.postal_code,
        "addressCountry": listing.country,
    }
    home = {
        "@type": SCHEMA_TYPES.get(listing.property_type, "Place"),
        "name": listing.title,
        "address": {key: value for key, value in address.items() if value},
        "geo": {"@type": "GeoCoordinates", "latitude": listing.latitude, "longitude": listing.longitude},
    }
    if home["@type"] != "Place":  # rooms and floor size belong to an Accommodation
        # Bedrooms are the only rooms counted here; search engines read numberOfRooms.
        home["numberOfRooms"] = listing.bedrooms
        home["numberOfBedrooms"] = listing.bedrooms
        home["numberOfBathroomsTotal"] = listing.bathrooms
        if listing.area_sqm:
            home["floorSize"] = {"@type": "QuantitativeValue", "value": listing.area_sqm, "unitCode": "MTK"}
        if listing.year_built:
            home["yearBuilt"] = listing.year_built
    offer = {
        "@type": "Offer",
        "price": listing.price,
        "priceCurrency": listing.currency,
        "businessFunction": ("http://purl.org/goodrelations/v1#LeaseOut"
                             if listing.listing_type == Listing.ListingType.RENT
                             else "http://purl.org/goodrelations/v1#Sell"),
        "url": url,
        "itemOffered": home,
    }
    if listing.status in SCHEMA_AVAILABILITY:
        offer["availability"] = SCHEMA_AVAILABILITY[listing.status]
    if listing.listing_type == Listing.ListingType.RENT and listing.rent_period in SCHEMA_RENT_UNITS:
        offer["priceSpecification"] = {"@type": "UnitPriceSpecification", "price": listing.price,
                                       "priceCurrency": listing.currency,
                                       "unitCode": SCHEMA_RENT_UNITS[listing.rent_period]}
    data = {
        "@context": "https://schema.org",
        "@type": "RealEstateListing",
        "name": listing.title,
        "description": listing.description,
        "url": url,
        "offers": offer,
    }
    if images:
        data["image"] = images
    if listing.published_at:
        data["datePosted"] = listing.published_at.isoformat()
    return data


def json_ld_script(data):
    """JSON safe to place between <script> tags (no "<", ">" or "&" left raw)."""
    return mark_safe(json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False).translate(  # noqa: S308
        JSON_SCRIPT_ESCAPES))
