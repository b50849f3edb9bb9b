"""The search page and the saved-searches pages through Django's test client: the plain form
(no JavaScript), the htmx answers, and the management of saved searches."""

import json
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.gis.geos import Point
from django.http import QueryDict

from accounts.tests.factories import UserFactory
from listings.models import Listing
from listings.tests.factories import ListingFactory
from search import services as search_services
from search.models import SavedSearch
from search.query import SearchQuery

pytestmark = pytest.mark.django_db

SEARCH = "/search/"
HTMX = {"HTTP_HX_REQUEST": "true"}
HISTORY_RESTORE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_HISTORY_RESTORE_REQUEST": "true"}
PARIS = Point(2.3470, 48.8590, srid=4326)
LYON = Point(4.8357, 45.7640, srid=4326)


# --- reading the page -----------------------------------------------------------------------------

class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, dict(attrs), parent, [], ""

    def iter(self):
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag=None, **attrs):
        return [node for node in self.iter() if (tag is None or node.tag == tag)
                and all(node.attrs.get(name.rstrip("_").replace("_", "-")) == value for name, value in attrs.items())]

    def find(self, tag=None, **attrs):
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def text_content(self):
        return " ".join((self.text + " " + " ".join(child.text_content() for child in self.children)).split())


class Page(HTMLParser):
    """A small DOM of the response (html.parser), enough to read forms, links and scripts."""

    VOID = {"input", "meta", "link", "br", "img", "hr", "source", "area", "base", "col", "embed", "wbr"}

    def __init__(self, html):
        super().__init__()
        self.root = self.current = Node("#document", {}, None)
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.text += data


def page_of(response):
    return Page(response.content.decode()).root


def card_ids(root):
    return [int(node.attrs["data-listing-id"]) for node in root.find_all("li") if "data-listing-id" in node.attrs]


def markers(root):
    return json.loads(root.find("script", id="search-markers").text)


def option_count(root, name, value):
    """The count shown beside a filter option, or None when none is shown."""
    input_id = f"search-{name}-{value or 'any'}"
    label = root.find("label", **{"for": input_id})
    count = next((node for node in label.iter() if node.attrs.get("class") == "search-options__count"), None)
    return int(count.text) if count else None


def form_submission(form):
    """What a browser sends for this form: each named field with its value, checked boxes only,
    each select's selected option (the first when none is)."""
    data = []
    for node in form.iter():
        name = node.attrs.get("name")
        if not name or "disabled" in node.attrs:
            continue
        if node.tag == "input":
            kind = node.attrs.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in node.attrs:
                continue
            if kind in ("submit", "button"):
                continue
            data.append((name, node.attrs.get("value", "")))
        elif node.tag == "select":
            options = node.find_all("option")
            chosen = next((o for o in options if "selected" in o.attrs), options[0] if options else None)
            if chosen is not None:
                data.append((name, chosen.attrs.get("value", chosen.text_content())))
    return data


def querystring(data):
    query = QueryDict(mutable=True)
    for name, value in data:
        query.appendlist(name, value)
    return query.urlencode()


def params_of(url):
    return {name: values[-1] for name, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


# --- data -------------------------------------------------------------------------------------------

@pytest.fixture
def homes():
    """Three flats for sale and a house for sale in Paris, a house to rent in Lyon."""
    flats = [ListingFactory(title=f"Paris flat {n}", location=PARIS, bedrooms=n + 1, price=Decimal(300000 + n * 50000),
                            features=["balcony"] if n else ["balcony", "elevator"]) for n in range(3)]
    house = ListingFactory(title="Paris house", location=PARIS, property_type="house", bedrooms=4,
                           price=Decimal("900000"), features=["garden"])
    rental = ListingFactory(title="Lyon house to rent", city="Lyon", location=LYON, property_type="house",
                            listing_type="rent", bedrooms=3, price=Decimal("1500"), features=["garden", "garage"])
    ListingFactory(title="Draft flat", status="draft", location=PARIS)  # never shown
    search_services.vocabulary_refresh()
    return {"flats": flats, "house": house, "rental": rental}


@pytest.fixture
def customer(client):
    user = UserFactory()
    client.force_login(user)
    return user


# --- the search page --------------------------------------------------------------------------------

def test_the_page_shows_the_filters_with_counts_and_every_active_home(client, homes):
    response = client.get(SEARCH)

    assert response.status_code == 200
    root = page_of(response)
    form = root.find("form", id="search-form")
    assert form.attrs["method"] == "get" and form.attrs["action"] == SEARCH
    assert form.attrs["hx-get"] == SEARCH and form.attrs["hx-push-url"] == "true"
    assert form.attrs["hx-target"] == "#search-results"
    assert option_count(root, "property_type", "apartment") == 3
    assert option_count(root, "property_type", "house") == 2
    assert option_count(root, "property_type", "condo") == 0
    assert option_count(root, "listing_type", "sale") == 4
    assert option_count(root, "listing_type", "rent") == 1
    assert option_count(root, "min_beds", "3") == 3  # 3, 4 and 3 bedrooms
    assert option_count(root, "min_beds", "") is None
    assert option_count(root, "features", "garden") == 2
    assert option_count(root, "features", "elevator") == 1
    assert "5 homes" in root.find("h2", id="search-results-title").text_content()
    assert set(card_ids(root)) == {home.pk for home in [*homes["flats"], homes["house"], homes["rental"]]}
    sort = root.find("select", name="sort")
    assert [o.attrs["value"] for o in sort.find_all("option")] == ["", "price_asc", "price_desc"]


def test_a_query_shows_its_results_as_cards_and_the_same_homes_as_markers(client, homes):
    response = client.get(SEARCH, {"property_type": "house", "sort": "price_desc"})

    root = page_of(response)
    assert card_ids(root) == [homes["house"].pk, homes["rental"].pk]
    points = markers(root)
    assert [point["id"] for point in points] == card_ids(root)
    house = points[0]
    assert house["url"] == f"/listings/{homes['house'].pk}/"
    assert house["title"] == "Paris house" and house["price"] == "900,000 EUR"
    assert (house["lat"], house["lng"]) == pytest.approx((48.859, 2.347))
    assert "checked" in root.find("input", id="search-property_type-house").attrs
    assert "selected" in root.find("option", value="price_desc").attrs
    # Each facet is counted without its own filter: the other types still show their counts.
    assert option_count(root, "property_type", "apartment") == 3
    assert option_count(root, "listing_type", "rent") == 1


def test_the_plain_form_round_trips_without_javascript(client, homes):
    """Submit the rendered form as a browser would (every field, boxes as repeated names), change
    nothing, and get the same search back."""
    first = client.get(SEARCH, {"property_type": "house,apartment", "min_price": "320000", "features": "balcony",
                                "sort": "price_asc"})
    root = page_of(first)
    data = form_submission(root.find("form", id="search-form"))
    assert ("property_type", "house") in data and ("property_type", "apartment") in data
    assert ("q", "") in data and ("bbox", "") in data  # empty fields are sent too

    again = client.get(f"{SEARCH}?{querystring(data)}")

    assert again.status_code == 200
    again_root = page_of(again)
    assert card_ids(again_root) == card_ids(root) == [homes["flats"][1].pk, homes["flats"][2].pk]
    assert again_root.find("input", name="min_price").attrs["value"] == "320000"
    assert "checked" in again_root.find("input", id="search-features-balcony").attrs
    assert form_submission(again_root.find("form", id="search-form")) == data


def test_a_bad_parameter_is_a_400_page_with_the_message_on_the_form(client, homes):
    response = client.get(SEARCH, {"min_price": "lots", "property_type": "house"})

    assert response.status_code == 400
    root = page_of(response)
    alert = root.find("div", id="search-errors").find(role="alert")
    assert alert.text_content() == "Minimum price: Must be a number."
    field = root.find("input", name="min_price")
    assert field.attrs["value"] == "lots" and field.attrs["aria-invalid"] == "true"
    assert "checked" in root.find("input", id="search-property_type-house").attrs  # what was chosen stays
    assert card_ids(root) == [] and markers(root) == []


@pytest.mark.parametrize(("params", "message"), [
    ({"sort": "distance"}, "Sort: Sorting by distance needs a point (lat, lng, radius_km)."),
    ({"polygon": "2,48;3,49;2,49;3,48"}, "Drawn area: The polygon's edges cross: draw a simple ring."),
    ({"property_type": "castle"}, "Property type: Unknown value castle"),
    ({"min_price": "500", "max_price": "100"}, "Minimum price: Must not be more than max_price."),
])
def test_each_refused_parameter_is_named(client, params, message):
    response = client.get(SEARCH, params)

    assert response.status_code == 400
    assert message in page_of(response).find("div", id="search-errors").text_content()


def test_an_htmx_request_gets_the_results_and_the_filters_out_of_band(client, homes):
    response = client.get(SEARCH, {"property_type": "house", "q": ""}, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and "<form" not in html
    root = page_of(response)
    results = root.find("section", id="search-results")
    assert results.parent is root  # the swap target, at the top
    assert card_ids(results) == [homes["rental"].pk, homes["house"].pk]
    assert [point["id"] for point in markers(results)] == card_ids(results)
    out_of_band = {node.attrs["id"] for node in root.find_all(hx_swap_oob="true")}
    assert out_of_band == {"search-errors", "search-filter-listing_type", "search-filter-property_type",
                           "search-filter-min_beds", "search-filter-features", "search-sort", "search-area"}
    assert option_count(root, "property_type", "apartment") == 3
    assert response["HX-Push-Url"] == "/search/?property_type=house"
    assert "HX-Request" in response["Vary"]


def test_an_htmx_request_with_a_bad_parameter_gets_the_message_and_no_new_address(client, homes):
    response = client.get(SEARCH, {"bbox": "5,45,4,46"}, **HTMX)

    assert response.status_code == 400
    root = page_of(response)
    errors = root.find("div", id="search-errors")
    assert errors.attrs["hx-swap-oob"] == "true"
    assert "Map area: West must be less than east" in errors.text_content()
    assert response["HX-Push-Url"] == "false"


def test_the_back_button_gets_the_whole_form_and_results_for_that_address(client, homes):
    response = client.get(SEARCH, {"listing_type": "rent"}, **HISTORY_RESTORE)

    assert response.status_code == 200
    root = page_of(response)
    region = root.find("div", id="search-region")
    assert "hx-history-elt" in region.attrs and region.parent is root
    assert "checked" in region.find("input", id="search-listing_type-rent").attrs
    assert card_ids(region) == [homes["rental"].pk]
    assert not root.find_all(hx_swap_oob="true")


def test_the_area_searched_is_kept_in_the_form_and_can_be_removed(client, homes):
    bbox = "4.7,45.7,4.9,45.8"
    response = client.get(SEARCH, {"bbox": bbox, "min_beds": "2"})

    root = page_of(response)
    assert card_ids(root) == [homes["rental"].pk]
    assert root.find("input", name="bbox").attrs["value"] == bbox
    remove = next(node for node in root.iter() if "data-search-clear-area" in node.attrs)
    assert remove.attrs["href"] == "/search/?min_beds=2"


def test_pagination_links_keep_the_whole_query(client):
    homes = [ListingFactory(location=LYON, property_type="house", price=Decimal(100000 + n)) for n in range(45)]
    params = {"property_type": "house", "min_price": "1000", "bbox": "4.5,45.5,5,46", "sort": "price_asc"}

    first = page_of(client.get(SEARCH, params))

    nav = first.find("nav", **{"aria-label": "Result pages"})
    assert nav.attrs["hx-target"] == "#search-results" and nav.attrs["hx-push-url"] == "true"
    links = {node.text_content(): node for node in nav.find_all("a")}
    assert set(links) == {"1 (current page)", "2", "3", "Next"}
    assert params_of(links["2"].attrs["href"]) == params | {"page": "2"}
    assert links["Next"].attrs["hx-get"] == links["Next"].attrs["href"] == links["2"].attrs["href"]

    second = page_of(client.get(links["2"].attrs["href"]))

    assert card_ids(second) == [home.pk for home in homes[20:40]]
    back = next(node for node in second.find_all("a") if node.attrs.get("rel") == "prev")
    assert params_of(back.attrs["href"]) == params  # page 1 is the address without `page`
    assert "Showing 21–40" in second.text_content()

    beyond = page_of(client.get(SEARCH, params | {"page": "9"}))
    assert "fewer pages of results" in beyond.text_content()
    first_page = next(node for node in beyond.find_all("a") if node.text_content() == "Go to the first page")
    assert params_of(first_page.attrs["href"]) == params


def test_no_inline_script_or_style_on_the_page(client, homes, customer):
    response = client.get(SEARCH, {"q": "flat"})

    root = page_of(response)
    scripts = root.find_all("script")
    assert scripts
    for script in scripts:
        assert script.attrs.get("src") or script.attrs.get("type") == "application/json", script.attrs
    for node in root.iter():
        assert "style" not in node.attrs, node.tag
        assert not any(name.startswith("on") for name in node.attrs), node.tag
    assert root.find("style") is None


def test_anonymous_visitors_are_asked_to_sign_in_to_save_a_search(client, homes):
    root = page_of(client.get(SEARCH, {"property_type": "house", "page": "1"}))

    link = next(node for node in root.find_all("a") if "Sign in to save" in node.text_content())
    assert urlsplit(link.attrs["href"]).path == "/accounts/login/"
    assert params_of(link.attrs["href"])["next"] == "/search/?property_type=house"
    assert root.find("form", action="/saved-searches/") is None


# --- saved searches -------------------------------------------------------------------------------

def saved_for(user, name="Houses", params=None, frequency="daily"):
    return search_services.saved_search_create(
        user=user, name=name, query=SearchQuery.from_params(params or {"property_type": "house"}),
        alert_frequency=frequency)


def test_save_the_search_from_the_search_page(client, homes, customer):
    params = {"property_type": "house", "features": "garden", "page": "1", "sort": "price_desc"}
    root = page_of(client.get(SEARCH, params))
    form = root.find("form", action="/saved-searches/")
    data = dict(form_submission(form))
    assert QueryDict(data["query"]).dict() == {"property_type": "house", "features": "garden", "sort": "price_desc"}
    csrf = form.find("input", name="csrfmiddlewaretoken")
    assert csrf is not None

    response = client.post("/saved-searches/", data | {"name": "Gardens", "alert_frequency": "weekly"})

    assert response.status_code == 302
    assert response["Location"] == "/search/?property_type=house&features=garden&sort=price_desc"
    saved = SavedSearch.objects.get(user=customer)
    assert (saved.name, saved.alert_frequency) == ("Gardens", "weekly")
    assert saved.query == {"features": "garden", "property_type": "house", "sort": "price_desc"}


def test_saving_under_a_name_already_used_is_refused_and_the_form_kept(client, customer):
    saved_for(customer, name="Houses")

    response = client.post("/saved-searches/", {"name": "houses", "alert_frequency": "daily",
                                                 "query": "property_type=condo"})

    assert response.status_code == 409
    root = page_of(response)
    assert root.find(role="alert") is not None
    assert root.find("input", id="retry-name").attrs["value"] == "houses"
    assert root.find("input", name="query").attrs["value"] == "property_type=condo"
    assert SavedSearch.objects.filter(user=customer).count() == 1


def test_saving_a_bad_query_is_a_400(client, customer):
    response = client.post("/saved-searches/", {"name": "Odd", "query": "min_beds=many"})

    assert response.status_code == 400
    assert "min_beds" in page_of(response).find(role="alert").text_content()
    assert not SavedSearch.objects.exists()


def test_the_list_shows_each_search_with_a_link_that_opens_it(client, customer):
    saved_for(customer, name="Lyon houses", params={"property_type": "house", "bbox": "4.7,45.7,4.9,45.8",
                                                   "max_price": "500000"}, frequency="instant")
    saved_for(UserFactory(), name="Someone else's")

    response = client.get("/saved-searches/")

    assert response.status_code == 200
    root = page_of(response)
    (item,) = [node for node in root.find_all("li") if "data-saved-search-id" in node.attrs]
    assert item.find("h2").text_content() == "Lyon houses"
    link = next(node for node in item.find_all("a") if "Open the search" in node.text_content())
    assert params_of(link.attrs["href"]) == {"bbox": "4.7,45.7,4.9,45.8", "max_price": "500000",
                                             "property_type": "house"}
    assert "House · up to 500,000 EUR · Within the map’s area" in item.text_content()
    frequency = item.find("select", name="alert_frequency")
    assert "selected" in frequency.find("option", value="instant").attrs
    assert "Someone else's" not in response.content.decode()


def test_rename_and_change_the_alerts(client, customer):
    saved = saved_for(customer, name="Houses")

    renamed = client.post(f"/saved-searches/{saved.pk}/", {"name": "  Big houses "})
    changed = client.post(f"/saved-searches/{saved.pk}/", {"alert_frequency": "never"})

    assert renamed.status_code == changed.status_code == 302
    assert renamed["Location"] == "/saved-searches/"
    saved.refresh_from_db()
    assert (saved.name, saved.alert_frequency) == ("Big houses", "never")
    assert saved.query == {"property_type": "house"}


def test_a_bad_frequency_is_a_400_and_changes_nothing(client, customer):
    saved = saved_for(customer)

    response = client.post(f"/saved-searches/{saved.pk}/", {"alert_frequency": "hourly"})

    assert response.status_code == 400
    saved.refresh_from_db()
    assert saved.alert_frequency == "daily"


def test_delete(client, customer):
    saved = saved_for(customer)

    response = client.post(f"/saved-searches/{saved.pk}/delete/")

    assert response.status_code == 302
    assert not SavedSearch.objects.filter(pk=saved.pk).exists()
    assert "No saved searches yet" in client.get("/saved-searches/").content.decode()


def test_another_persons_saved_search_is_not_found(client, customer):
    theirs = saved_for(UserFactory(), name="Theirs")

    assert client.post(f"/saved-searches/{theirs.pk}/", {"name": "Mine now"}).status_code == 404
    assert client.post(f"/saved-searches/{theirs.pk}/delete/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"


def test_saved_searches_need_a_signed_in_person(client):
    saved = saved_for(UserFactory())

    for response in (client.get("/saved-searches/"), client.post(f"/saved-searches/{saved.pk}/delete/")):
        assert response.status_code == 302
        assert urlsplit(response["Location"]).path == "/accounts/login/"
    assert SavedSearch.objects.filter(pk=saved.pk).exists()
    assert client.get(f"/saved-searches/{saved.pk}/").status_code in (302, 405)


def test_unsubscribe_from_the_link_in_an_alert(client):
    saved = saved_for(UserFactory(), frequency="weekly")
    url = f"/saved-searches/unsubscribe/{search_services.saved_search_unsubscribe_token(saved)}/"

    shown = client.get(url)
    saved.refresh_from_db()
    assert shown.status_code == 200 and saved.alert_frequency == "weekly"  # a GET changes nothing
    assert page_of(shown).find("form", action=url) is not None

    done = client.post(url)

    assert done.status_code == 200
    assert "no more alerts for the saved search “Houses”" in done.content.decode()
    saved.refresh_from_db()
    assert saved.alert_frequency == "never"


def test_a_forged_unsubscribe_link_is_refused(client):
    response = client.post("/saved-searches/unsubscribe/not-a-token/")

    assert response.status_code == 400
    assert "not valid" in page_of(response).find(role="alert").text_content()


def test_only_active_homes_are_listed(client, homes):
    Listing.objects.filter(pk=homes["house"].pk).update(status="sold")

    root = page_of(client.get(SEARCH, {"property_type": "house"}))

    assert card_ids(root) == [homes["rental"].pk]
