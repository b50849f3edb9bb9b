"""The one query model: every bad parameter is refused naming itself (SearchQuery.from_params and
`/api/v1/search/`), garbage never becomes a 500, and to_params round-trips."""

from decimal import Decimal

import pytest

from realio.errors import ApplicationError
from search.query import SearchQuery

SEARCH_URL = "/api/v1/search/"
POINT = {"lat": "48.85", "lng": "2.35", "radius_km": "5"}
BOWTIE = "0,0;1,1;1,0;0,1;0,0"  # edges cross

# (case id, params, the parameter the error must name)
BAD = [
    *[(f"{param}-{value!r}", {param: value}, param)
      for param in ("min_price", "max_price", "min_area", "max_area")
      for value in ("abc", "-1", "1e13", "NaN", "Infinity", "1,5", "")
      if value],
    *[(f"{param}-{value!r}", {param: value}, param)
      for param in ("min_beds", "min_baths")
      for value in ("2.5", "-1", "101", "x", "1e2")],
    *[(f"{param}-{value!r}", {param: value}, param)
      for param in ("min_year", "max_year")
      for value in ("999", "2201", "19x", "-2000")],
    ("min_price>max_price", {"min_price": "500", "max_price": "400"}, "min_price"),
    ("min_area>max_area", {"min_area": "90", "max_area": "80"}, "min_area"),
    ("min_year>max_year", {"min_year": "2000", "max_year": "1999"}, "min_year"),
    ("lat-out-of-range", {**POINT, "lat": "91"}, "lat"),
    ("lat-not-a-number", {**POINT, "lat": "north"}, "lat"),
    ("lat-nan", {**POINT, "lat": "nan"}, "lat"),
    ("lng-out-of-range", {**POINT, "lng": "-180.5"}, "lng"),
    ("lng-inf", {**POINT, "lng": "inf"}, "lng"),
    ("lat-without-lng", {"lat": "48.85", "radius_km": "5"}, "lng"),
    ("lng-without-lat", {"lng": "2.35", "radius_km": "5"}, "lat"),
    ("point-without-radius", {"lat": "48.85", "lng": "2.35"}, "radius_km"),
    ("radius-without-point", {"radius_km": "5"}, "lat"),
    ("radius-zero", {**POINT, "radius_km": "0"}, "radius_km"),
    ("radius-negative", {**POINT, "radius_km": "-3"}, "radius_km"),
    ("radius-over-500", {**POINT, "radius_km": "500.1"}, "radius_km"),
    ("radius-text", {**POINT, "radius_km": "far"}, "radius_km"),
    ("bbox-three-numbers", {"bbox": "1,2,3"}, "bbox"),
    ("bbox-five-numbers", {"bbox": "1,2,3,4,5"}, "bbox"),
    ("bbox-words", {"bbox": "a,b,c,d"}, "bbox"),
    ("bbox-nan", {"bbox": "nan,0,1,1"}, "bbox"),
    ("bbox-west-out-of-range", {"bbox": "-181,0,0,1"}, "bbox"),
    ("bbox-south-out-of-range", {"bbox": "0,-91,1,0"}, "bbox"),
    ("bbox-west-after-east", {"bbox": "2,0,1,1"}, "bbox"),
    ("bbox-west-equals-east", {"bbox": "1,0,1,1"}, "bbox"),
    ("bbox-south-equals-north", {"bbox": "0,1,1,1"}, "bbox"),
    ("polygon-two-points", {"polygon": "1,1;2,2"}, "polygon"),
    ("polygon-one-point-thrice", {"polygon": "1,1;1,1;1,1"}, "polygon"),
    ("polygon-crossing-edges", {"polygon": BOWTIE}, "polygon"),
    ("polygon-odd-pair", {"polygon": "0,0;1;1,1"}, "polygon"),
    ("polygon-words", {"polygon": "x,y;1,1;2,0"}, "polygon"),
    ("polygon-out-of-range", {"polygon": "200,0;1,1;2,0"}, "polygon"),
    ("polygon-too-many-points", {"polygon": ";".join(f"{i / 1000:.3f},{(i % 2) / 1000:.3f}" for i in range(201))},
     "polygon"),
    ("sort-unknown", {"sort": "cheapest"}, "sort"),
    ("sort-distance-without-point", {"sort": "distance"}, "sort"),
    ("listing_type-unknown", {"listing_type": "boat"}, "listing_type"),
    ("property_type-one-unknown", {"property_type": "house,castle"}, "property_type"),
    ("features-unknown", {"features": "pool,jacuzzi"}, "features"),
    ("page-zero", {"page": "0"}, "page"),
    ("page-negative", {"page": "-1"}, "page"),
    ("page-text", {"page": "two"}, "page"),
    ("page-too-far", {"page": "10001"}, "page"),
    ("page_size-zero", {"page_size": "0"}, "page_size"),
    ("page_size-101", {"page_size": "101"}, "page_size"),
    ("page_size-text", {"page_size": "all"}, "page_size"),
    ("q-too-long", {"q": "x" * 201}, "q"),
]

FUZZ = ["", " ", "abc", "-1", "0", "1", "1e309", "-1e309", "nan", "NaN", "inf", "-Infinity", "1,2", "1;2", ",",
        ";", ",,,,", ";;;;", "\x00", "a\x00b", "5\x00", "ñandú", "💥", "9" * 400, "0x10", "1_000", "[]", "{}",
        "null", "%00", "' OR 1=1 --", "1e-320", "-0", "  5  ", "1.5", "1,2,3,4", "-180,-90,180,90",
        "0,0;1,0;1,1;0,0", "0,0;0,0;0,0;1,1", "house,,condo", "HOUSE", "sale,rent", "pool,garden,pool"]
PARAMS = ["q", "listing_type", "property_type", "min_price", "max_price", "min_beds", "min_baths", "min_area",
          "max_area", "min_year", "max_year", "features", "lat", "lng", "radius_km", "bbox", "polygon", "sort",
          "page", "page_size"]


# --- SearchQuery.from_params -------------------------------------------------------------------

@pytest.mark.parametrize(("params", "param"), [(p, n) for _, p, n in BAD], ids=[i for i, _, _ in BAD])
def test_a_bad_parameter_is_refused_naming_it(params, param):
    with pytest.raises(ApplicationError) as raised:
        SearchQuery.from_params(params)

    assert raised.value.status_code == 400
    assert list(raised.value.errors) == [param]
    assert raised.value.detail.startswith(f"{param}: ")


def test_empty_parameters_are_the_defaults():
    query = SearchQuery.from_params({"q": "  ", "min_price": "", "bbox": " ", "page": ""})

    assert query == SearchQuery()
    assert (query.effective_sort, query.page, query.page_size) == ("newest", 1, 20)


def test_values_are_parsed_and_lists_normalised():
    query = SearchQuery.from_params({"property_type": " condo, house,condo ", "features": "pool,garden",
                                     "min_price": "100000.50", "min_beds": "2", "polygon": "0,0;1,0;1,1"})

    assert query.property_types == ("condo", "house")
    assert query.features == ("garden", "pool")
    assert query.min_price == Decimal("100000.50")
    assert query.min_beds == 2
    assert query.polygon == ((0, 0), (1, 0), (1, 1), (0, 0))  # closed
    assert SearchQuery.from_params({"q": "loft"}).effective_sort == "relevance"
    assert SearchQuery.from_params({"sort": "relevance"}).effective_sort == "newest"  # nothing to rank


def test_a_query_dict_takes_the_last_value():
    from django.http import QueryDict

    assert SearchQuery.from_params(QueryDict("page=2&page=3")).page == 3


FULL = {"q": "garden loft", "listing_type": "sale", "property_type": "condo,house", "min_price": "100000",
        "max_price": "750000.50", "min_beds": "2", "min_baths": "1", "min_area": "40", "max_area": "250.5",
        "min_year": "1900", "max_year": "2020", "features": "balcony,garden", "lat": "48.8566",
        "lng": "2.3522", "radius_km": "12.5", "bbox": "2.25,48.8,2.45,48.95",
        "polygon": "2.3,48.8;2.4,48.8;2.4,48.9;2.3,48.8", "sort": "distance", "page": "3", "page_size": "50"}


@pytest.mark.parametrize("params", [{}, {"q": "loft"}, {"page": "2"}, FULL,
                                    {"bbox": "-0.7,44.78,4.9,45.8", "sort": "price_desc", "page_size": "100"}],
                         ids=["empty", "keywords", "page", "everything", "bbox"])
def test_to_params_round_trips(params):
    query = SearchQuery.from_params(params)

    canonical = query.to_params()

    assert SearchQuery.from_params(canonical) == query
    assert canonical == {k: v for k, v in canonical.items() if v not in ("", None)}  # only what is set
    assert "page" not in SearchQuery.from_params({"page": "1"}).to_params()


def test_to_params_keeps_coordinates_exactly():
    """A saved search drawn at street level must not move (6 significant digits moved it ~50 m)."""
    query = SearchQuery.from_params({"bbox": "2.3456789,48.8512345,2.3567891,48.8623456",
                                     "polygon": "2.3456789,48.8512345;2.3567891,48.8512345;2.3567891,48.8623456"})

    assert SearchQuery.from_params(query.to_params()) == query


# --- through the API ---------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(("params", "param"), [(p, n) for _, p, n in BAD], ids=[i for i, _, _ in BAD])
def test_the_api_answers_400_naming_the_parameter(api_client, params, param):
    response = api_client.get(SEARCH_URL, params)

    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body["errors"]) == [param]
    assert isinstance(body["detail"], str) and param in body["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("param", PARAMS)
def test_garbage_in_any_parameter_is_never_a_500(api_client, param):
    """Each odd string alone, and beside a valid point (so that geo and sort values reach the
    database), is a 200 or a 400 naming one parameter, as JSON."""
    for value in FUZZ:
        for extra in ({}, POINT):
            params = {**extra, param: value}

            response = api_client.get(SEARCH_URL, params)

            assert response.status_code in (200, 400), (param, value, response.status_code, response.content[:300])
            body = response.json()
            if response.status_code == 400:
                # The bad one, or its missing companion (lat without lng names lng).
                assert len(body["errors"]) == 1 and set(body["errors"]) <= set(PARAMS), (param, value, body)
                assert isinstance(body["detail"], str)
            else:
                assert {"count", "results", "facets"} <= set(body), (param, value, body)


@pytest.mark.django_db
def test_a_valid_search_through_the_api(api_client):
    from listings.tests.factories import ListingFactory

    listing = ListingFactory(title="Sunny loft")

    response = api_client.get(SEARCH_URL, {"q": "loft", "lat": "48.869", "lng": "2.3312", "radius_km": "1"})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert [r["id"] for r in body["results"]] == [listing.pk]
    assert body["results"][0]["distance_km"] == pytest.approx(0.0, abs=0.01)
    assert body["facets"]["property_type"] == {"apartment": 1}
