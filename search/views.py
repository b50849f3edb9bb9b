"""Search pages: the search page (a plain GET form; with JavaScript, htmx keeps the list, the map
and the URL in step) and the management of saved searches."""

from math import ceil
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from listings.models import Feature, Listing
from listings.templatetags.listing_format import asking_price, money
from realio.errors import ApplicationError
from search import selectors as search_selectors
from search import services as search_services
from search.models import SavedSearch
from search.query import DEFAULT_PAGE_SIZE, SearchQuery

# Filters sent as one field per checked box; SearchQuery reads them comma-separated, as the API does.
LIST_PARAMS = ("listing_type", "property_type", "features")
AREA_PARAMS = ("bbox", "polygon", "lat", "lng", "radius_km")
BEDROOMS = (1, 2, 3, 4, 5)
BATHROOMS = (1, 2, 3, 4)
PAGE_LINKS_AROUND = 2
# How each parameter is called on the page, for error messages that name it.
PARAM_LABELS = {
    "q": gettext_lazy("Keywords"),
    "listing_type": gettext_lazy("Buy or rent"),
    "property_type": gettext_lazy("Property type"),
    "min_price": gettext_lazy("Minimum price"),
    "max_price": gettext_lazy("Maximum price"),
    "min_beds": gettext_lazy("Bedrooms"),
    "min_baths": gettext_lazy("Bathrooms"),
    "min_area": gettext_lazy("Minimum area"),
    "max_area": gettext_lazy("Maximum area"),
    "min_year": gettext_lazy("Built from"),
    "max_year": gettext_lazy("Built until"),
    "features": gettext_lazy("Features"),
    "lat": gettext_lazy("Latitude"),
    "lng": gettext_lazy("Longitude"),
    "radius_km": gettext_lazy("Radius"),
    "bbox": gettext_lazy("Map area"),
    "polygon": gettext_lazy("Drawn area"),
    "sort": gettext_lazy("Sort"),
    "page": gettext_lazy("Page"),
    "page_size": gettext_lazy("Results per page"),
}


def query_params(querydict):
    """The request's parameters as SearchQuery reads them: a list filter sent as repeated fields
    (the form's checkboxes) is joined with commas, like the API's `property_type=house,condo`."""
    params = {}
    for name, values in querydict.lists():
        if name in LIST_PARAMS:
            params[name] = ",".join(value for value in values if value.strip())
        else:
            params[name] = values[-1]
    return params


def search_url(params):
    """/search/ with these parameters (commas and semicolons left readable)."""
    query_string = urlencode(params, safe=",;")
    return reverse("search") + (f"?{query_string}" if query_string else "")


def search_page(request):
    """The search page. An htmx request gets the results with the filters' counts swapped in out
    of band; htmx restoring history (the back button) gets the whole form and results region; a
    bad parameter is a 400 page showing the message on the form."""
    params = query_params(request.GET)
    try:
        query = SearchQuery.from_params(params)
    except ApplicationError as exc:
        # The form shows what was sent, with the message; there are no results to show.
        query, page, error, values = None, None, exc, params
    else:
        page, error, values = search_services.search(query), None, query.to_params()
    context = search_context(values=values, query=query, page=page, error=error)

    if request.headers.get("HX-History-Restore-Request"):
        template = "search/_region.html"
    elif request.headers.get("HX-Request"):
        template = "search/_update.html"
    else:
        template = "search/search.html"
    response = render(request, template, context, status=error.status_code if error else 200)
    if request.headers.get("HX-Request"):
        # The address bar shows the canonical query (not every empty field of the form); a
        # request that failed is not a place to come back to.
        response["HX-Push-Url"] = search_url(query.to_params()) if query else "false"
    patch_vary_headers(response, ["HX-Request", "HX-History-Restore-Request"])
    return response


def search_context(*, values, query, page, error):
    """What the page's templates show: the filters (from `values`, the canonical parameters or,
    for a refused query, those sent) with their counts, the results and the map's markers."""
    facets = page.result.facets if page else {}
    chosen = {name: set(filter(None, values.get(name, "").split(","))) for name in LIST_PARAMS}
    has_point = bool(values.get("lat") and values.get("lng"))
    context = {
        "values": values,
        "error": error,
        "error_message": _error_message(error) if error else "",
        "invalid": set(error.errors) if error else set(),
        "groups": {
            "listing_type": _choice_group(
                "listing_type", _("Buy or rent"), "radio", Listing.ListingType.choices, chosen["listing_type"],
                facets.get("listing_type"), any_label=_("Any")),
            "property_type": _choice_group(
                "property_type", _("Property type"), "checkbox", Listing.PropertyType.choices,
                chosen["property_type"], facets.get("property_type")),
            "bedrooms": _bedrooms_group(values.get("min_beds", ""), facets.get("bedrooms")),
            "features": _choice_group("features", _("Features"), "checkbox", Feature.choices, chosen["features"],
                                      facets.get("features")),
        },
        "alert_frequencies": SavedSearch.Frequency.choices,
        "bathroom_choices": [(str(n), f"{n}+") for n in BATHROOMS],
        "sort_choices": _sort_choices(values.get("q", ""), has_point),
        "area": _area(values, has_point),
        "page_size": values.get("page_size", "") if values.get("page_size") != str(DEFAULT_PAGE_SIZE) else "",
        "map": {
            "tile_url": settings.MAP_TILE_URL,
            "attribution": settings.MAP_TILE_ATTRIBUTION,
        },
    }
    if page:
        listings = page.listings
        context.update({
            "listings": listings,
            "total": page.total,
            "first_number": query.offset + 1,
            "last_number": query.offset + len(listings),
            "pages": _pagination(query, page.total),
            "markers": [_marker(listing) for listing in listings],
            # A saved search keeps the query, not the page being looked at.
            "saved_query": urlencode(query.without_pagination().to_params(), safe=",;"),
            "login_url": reverse("account_login") + "?" + urlencode({"next": search_url(query.to_params())}),
        })
    else:
        context["markers"] = []
    return context


def _error_message(error):
    if not error.errors:
        return error.detail
    param, messages = next(iter(error.errors.items()))
    label = PARAM_LABELS.get(param, param)
    return _("%(field)s: %(message)s") % {"field": label, "message": messages[0]}


def _choice_group(name, legend, kind, choices, chosen, counts, any_label=None):
    """A filter's options with each one's count (None when there are no results to count)."""
    options = []
    if any_label:
        options.append({"value": "", "label": any_label, "checked": not chosen or len(chosen) > 1, "count": None})
    for value, label in choices:
        options.append({
            "value": value,
            "label": label,
            "checked": value in chosen if kind == "checkbox" else chosen == {value},
            "count": counts.get(value, 0) if counts is not None else None,
        })
    return {"name": name, "legend": legend, "kind": kind, "options": options}


def _bedrooms_group(chosen, counts):
    """Minimum bedrooms: "2+" counts every home with two or more (the facet counts exact numbers)."""
    by_number = {int(beds): count for beds, count in (counts or {}).items()}
    options = [{"value": "", "label": _("Any"), "checked": not chosen, "count": None}]
    for minimum in BEDROOMS:
        options.append({
            "value": str(minimum),
            "label": f"{minimum}+",
            "checked": chosen == str(minimum),
            "count": sum(n for beds, n in by_number.items() if beds >= minimum) if counts is not None else None,
        })
    return {"name": "min_beds", "legend": _("Bedrooms"), "kind": "radio", "options": options}


def _sort_choices(keywords, has_point):
    """The sorts that apply: the default first (best match with keywords, newest without)."""
    choices = [("", _("Best match") if keywords.strip() else _("Newest"))]
    if keywords.strip():
        choices.append(("newest", _("Newest")))
    choices += [("price_asc", _("Price, lowest first")), ("price_desc", _("Price, highest first"))]
    if has_point:
        choices.append(("distance", _("Distance")))
    return choices


def _area(values, has_point):
    """Which area the search is limited to, and the address of the same search without it."""
    if values.get("polygon"):
        kind, description = "polygon", _("Within the area drawn on the map")
    elif values.get("bbox"):
        kind, description = "bbox", _("Within the map’s area")
    elif has_point and values.get("radius_km"):
        kind, description = "point", _("Within %(km)s km of a point") % {"km": values["radius_km"]}
    else:
        return {"kind": "", "description": "", "remove_url": ""}
    remaining = {name: value for name, value in values.items() if name not in (*AREA_PARAMS, "page")}
    if remaining.get("sort") == "distance":
        remaining.pop("sort")
    return {"kind": kind, "description": description, "remove_url": search_url(remaining)}


def _pagination(query, total):
    last = max(1, ceil(total / query.page_size))
    if total <= query.page_size and query.page == 1:
        return None
    params = query.to_params()

    def url(number):
        return search_url({**params, "page": str(number)} if number > 1 else
                          {name: value for name, value in params.items() if name != "page"})

    around = range(max(1, query.page - PAGE_LINKS_AROUND), min(last, query.page + PAGE_LINKS_AROUND) + 1)
    numbers = sorted({1, last, *around})
    items, previous = [], 0
    for number in numbers:
        if number > previous + 1:
            items.append({"gap": True})
        items.append({"number": number, "url": url(number), "current": number == query.page})
        previous = number
    return {
        "items": items,
        "previous_url": url(query.page - 1) if 1 < query.page <= last + 1 else "",
        "next_url": url(query.page + 1) if query.page < last else "",
        "first_url": url(1),
        "beyond_last": query.page > last,
    }


def _marker(listing):
    return {
        "id": listing.pk,
        "lat": listing.latitude,
        "lng": listing.longitude,
        "title": listing.title,
        "price": asking_price(listing),
        "amount": float(listing.price),
        "url": reverse("listing_page", args=[listing.pk]),
    }


# --- saved searches ------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def saved_searches(request):
    """A person's saved searches; POST saves one (from the search page's "save this search")."""
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        frequency = request.POST.get("alert_frequency") or SavedSearch.Frequency.DAILY
        try:
            query = SearchQuery.from_params(query_params(QueryDict(request.POST.get("query", ""))))
            saved = search_services.saved_search_create(user=request.user, name=name, query=query,
                                                        alert_frequency=frequency)
        except ApplicationError as exc:
            retry = {"name": name, "alert_frequency": frequency, "query": request.POST.get("query", "")}
            return _saved_searches_page(request, error=exc, retry=retry)
        messages.success(request, _("Search saved as “%(name)s”.") % {"name": saved.name})
        return redirect(search_url(query.to_params()))
    return _saved_searches_page(request)


@login_required
@require_POST
def saved_search_update(request, pk):
    """Rename a saved search or change how often it alerts (the fields sent; others are kept)."""
    name = request.POST.get("name")
    try:
        search_services.saved_search_update(
            saved_search_id=pk, user=request.user, name=name.strip() if name is not None else None,
            alert_frequency=request.POST.get("alert_frequency") or None)
    except ApplicationError as exc:
        return _saved_searches_page(request, error=exc)
    messages.success(request, _("Saved search updated."))
    return redirect("saved_searches")


@login_required
@require_POST
def saved_search_delete(request, pk):
    try:
        search_services.saved_search_delete(saved_search_id=pk, user=request.user)
    except ApplicationError as exc:
        return _saved_searches_page(request, error=exc)
    messages.success(request, _("Saved search deleted."))
    return redirect("saved_searches")


@require_http_methods(["GET", "POST"])
def saved_search_unsubscribe(request, token):
    """The link in an alert email: GET asks to confirm (a mail scanner's visit changes nothing),
    POST stops the alerts. No sign-in needed: the token is the permission."""
    if request.method == "POST":
        try:
            saved = search_services.saved_search_unsubscribe(token=token)
        except ApplicationError as exc:
            return render(request, "search/unsubscribe.html", {"token": token, "error": exc},
                          status=exc.status_code)
        return render(request, "search/unsubscribe.html", {"done": True, "name": getattr(saved, "name", "")})
    return render(request, "search/unsubscribe.html", {"token": token})


def _saved_searches_page(request, *, error=None, retry=None):
    if error is not None and error.status_code == 404:
        raise Http404(error.detail)
    rows = [{"saved": saved, "url": search_url(saved.query), "summary": describe_query(saved.query)}
            for saved in search_selectors.saved_searches_of(request.user)]
    return render(request, "search/saved_searches.html", {
        "rows": rows,
        "error": error,
        "retry": retry,
        "frequencies": SavedSearch.Frequency.choices,
    }, status=error.status_code if error else 200)


def describe_query(params):
    """A short description of a saved query's criteria, for the list of saved searches."""
    parts = []
    if params.get("q"):
        parts.append(f"“{params['q']}”")
    labels = [(Listing.ListingType, "listing_type"), (Listing.PropertyType, "property_type"), (Feature, "features")]
    for choices, name in labels:
        values = [value for value in str(params.get(name, "")).split(",") if value in choices.values]
        if values:
            parts.append(", ".join(str(choices(value).label) for value in values))
    low, high = (money(params.get(name), settings.CURRENCY) for name in ("min_price", "max_price"))
    if low and high:
        parts.append(_("%(low)s to %(high)s") % {"low": low, "high": high})
    elif low:
        parts.append(_("from %(low)s") % {"low": low})
    elif high:
        parts.append(_("up to %(high)s") % {"high": high})
    if params.get("min_beds"):
        parts.append(_("%(n)s+ bedrooms") % {"n": params["min_beds"]})
    area = _area({name: str(value) for name, value in params.items()},
                 bool(params.get("lat") and params.get("lng")))
    if area["kind"]:
        parts.append(area["description"])
    return " · ".join(parts) or _("Every home")
