"""The listings admin: agents touch only their own listings, every write goes through the services,
photos are checked, and the map is served from the site's own static files under the CSP."""

import io
import json
import re
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory
from listings.models import Listing, ListingPhoto
from listings.tests.factories import ListingFactory, image_upload
from realio.models import OutboxEvent

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/listings/listing/"
ADD = "/admin/listings/listing/add/"
PARIS = '{"type": "Point", "coordinates": [2.3522, 48.8566]}'


def change_url(listing):
    return f"/admin/listings/listing/{listing.pk}/change/"


def form_data(response):
    """What the browser would send back for an admin add/change page as rendered: the main
    form's values and every inline's management form and existing rows."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        data.update({management.add_prefix(name): management[name].value() for name in management.fields})
        forms += formset.initial_forms
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            if value is None or value is False or field.disabled:
                continue
            data[form.add_prefix(name)] = value.geojson if hasattr(value, "geojson") else value
    return data


def new_listing_data(client, **fields):
    data = form_data(client.get(ADD))
    data.update({
        "title": "Sunny loft by the canal", "description": "Wide windows.", "listing_type": "sale",
        "property_type": "apartment", "status": "draft", "price": "420000", "bedrooms": "2",
        "bathrooms": "1", "area_sqm": "70", "year_built": "1990", "features": ["balcony", "garage"],
        "street": "3 quai de Jemmapes", "city": "Paris", "region": "", "postal_code": "75010", "country": "fr",
        "location": PARIS, "time_zone": "",
    })
    data.update(fields)
    return data


def events_of(event_type, listing):
    return OutboxEvent.objects.filter(type=event_type, payload__listing_id=listing.pk)


def error_messages(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def png_with_exif(size=(40, 30)):
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0131] = "secret-software"  # Software
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 60, 60)).save(buffer, "PNG", exif=exif)
    assert Image.open(io.BytesIO(buffer.getvalue())).getexif()  # the upload does carry EXIF
    return SimpleUploadedFile("holiday.png", buffer.getvalue(), content_type="image/png")


def queued_tasks(task_name):
    """The argument lists of `task_name` messages waiting on the (test) broker's default queue."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        headers = [json.loads(raw)["headers"] for raw in client.lrange("default", 0, -1)]
    finally:
        client.close()
    return [h["argsrepr"] for h in headers if h.get("task") == task_name]


# --- who sees what ----------------------------------------------------------------------------

def test_agent_changelist_shows_only_their_listings(client):
    agent = AgentFactory()
    ListingFactory(agent=agent, title="Mine on the hill")
    ListingFactory(title="Somebody else's barn")
    client.force_login(agent)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert b"Mine on the hill" in response.content
    assert b"Somebody else" not in response.content


def test_agent_cannot_open_or_change_another_agents_listing(client):
    agent = AgentFactory()
    theirs = ListingFactory(title="Not yours", price=Decimal("500000"))
    mine = ListingFactory(agent=agent)
    client.force_login(agent)

    assert client.get(change_url(theirs)).status_code in (302, 403, 404)

    # A crafted POST with a full, valid form changes nothing.
    crafted = {**form_data(client.get(change_url(mine))), "title": "Hijacked", "price": "1"}
    response = client.post(change_url(theirs), crafted)
    assert response.status_code in (302, 403, 404)
    # Nor can a bulk action reach it.
    client.post(CHANGELIST, {"action": "withdraw", "_selected_action": [theirs.pk]})
    assert client.post(f"/admin/listings/listing/{theirs.pk}/delete/", {"post": "yes"}).status_code in (302, 403, 404)

    theirs.refresh_from_db()
    assert (theirs.title, theirs.price, theirs.status) == ("Not yours", Decimal("500000"), "active")
    assert not OutboxEvent.objects.filter(payload__listing_id=theirs.pk).exists()


def test_is_staff_alone_reaches_no_listing(client):
    ListingFactory()
    client.force_login(UserFactory(is_staff=True))

    assert client.get(CHANGELIST).status_code == 403


def test_staff_see_every_listing(client):
    ListingFactory(title="Alpha house")
    ListingFactory(title="Beta house")
    client.force_login(StaffFactory())

    response = client.get(CHANGELIST)

    assert b"Alpha house" in response.content and b"Beta house" in response.content


def test_filters_and_search_stay_within_the_agents_listings(client):
    agent = AgentFactory()
    ListingFactory(agent=agent, city="Lyon", title="Lyon flat")
    ListingFactory(agent=agent, city="Paris", title="Paris flat")
    ListingFactory(city="Nantes", title="Nantes flat")
    client.force_login(agent)

    by_city = client.get(CHANGELIST, {"city": "Lyon"})
    searched = client.get(CHANGELIST, {"q": "flat"})

    assert b"Lyon flat" in by_city.content and b"Paris flat" not in by_city.content
    assert b"Nantes" not in by_city.content  # not even as a city filter choice
    assert b"Lyon flat" in searched.content and b"Paris flat" in searched.content
    assert b"Nantes flat" not in searched.content


# --- adding and changing through the services ---------------------------------------------------

def test_agent_adds_a_listing_as_themselves_whatever_the_post_says(client):
    agent = AgentFactory()
    other = AgentFactory()
    client.force_login(agent)

    response = client.post(ADD, new_listing_data(client, agent=other.pk, status="active"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    listing = Listing.objects.get(title="Sunny loft by the canal")
    assert listing.agent == agent
    assert (listing.status, listing.price, listing.country) == ("active", Decimal("420000"), "FR")
    assert listing.features == ["balcony", "garage"]
    assert (round(listing.latitude, 4), round(listing.longitude, 4)) == (48.8566, 2.3522)
    assert listing.time_zone == "Europe/Paris"  # from the point, by the services
    assert listing.published_at is not None
    assert list(listing.price_changes.values_list("price", flat=True)) == [Decimal("420000")]
    assert events_of("listing.published", listing).exists()


def test_staff_add_a_listing_for_the_agent_they_choose(client):
    agent = AgentFactory()
    client.force_login(StaffFactory())

    response = client.post(ADD, new_listing_data(client, agent=agent.pk))

    assert response.status_code == 302
    assert Listing.objects.get(title="Sunny loft by the canal").agent == agent


def test_the_agent_field_is_not_offered_to_agents(client):
    agent = AgentFactory()
    client.force_login(agent)

    assert "agent" not in client.get(ADD).context["adminform"].form.fields
    form = client.get(change_url(ListingFactory(agent=agent))).context["adminform"].form
    assert "agent" not in form.fields  # shown read-only


def test_a_point_off_the_globe_is_a_form_error(client):
    client.force_login(AgentFactory())

    response = client.post(ADD, new_listing_data(client, location='{"type": "Point", "coordinates": [190, 48]}'))

    assert response.status_code == 200
    assert "Longitude must be between -180 and 180." in str(response.context["adminform"].form.errors["location"])
    assert not Listing.objects.exists()


def test_price_change_writes_the_history_and_an_event(client):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent, price=Decimal("350000"))
    client.force_login(agent)
    data = form_data(client.get(change_url(listing)))

    response = client.post(change_url(listing), {**data, "price": "329000"})

    assert response.status_code == 302
    listing.refresh_from_db()
    assert listing.price == Decimal("329000")
    assert list(listing.price_changes.order_by("changed_at", "id").values_list("price", flat=True)) == [
        Decimal("350000"), Decimal("329000")]
    event = events_of("listing.price_changed", listing).get()
    assert event.payload == {"listing_id": listing.pk, "old": "350000.00", "new": "329000"}
    page = client.get(change_url(listing))
    assert "329" in page.content.decode()  # the read-only price history inline


def test_an_illegal_status_change_is_a_form_error_and_changes_nothing(client):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent, status="draft")
    client.force_login(agent)
    data = form_data(client.get(change_url(listing)))

    response = client.post(change_url(listing), {**data, "status": "sold", "price": "1000"})

    assert response.status_code == 200
    assert "cannot go from Draft to Sold" in str(response.context["adminform"].form.non_field_errors())
    assert response.context["adminform"].form["price"].value() == "1000"  # what was typed is kept
    listing.refresh_from_db()
    assert (listing.status, listing.price) == ("draft", Decimal("350000"))
    assert not OutboxEvent.objects.filter(payload__listing_id=listing.pk).exists()
    assert listing.price_changes.count() == 1


def test_an_unverified_agent_cannot_publish_from_the_form(client, settings):
    settings.AGENT_VERIFICATION_REQUIRED = True
    agent = AgentFactory()
    client.force_login(agent)

    response = client.post(ADD, new_listing_data(client, status="active"))

    assert response.status_code == 200
    assert "verified by staff" in str(response.context["adminform"].form.non_field_errors())
    assert not Listing.objects.exists()


def test_close_price_is_taken_when_marking_sold(client):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent)
    client.force_login(agent)
    data = form_data(client.get(change_url(listing)))

    refused = client.post(change_url(listing), {**data, "close_price": "300000"})
    sold = client.post(change_url(listing), {**data, "status": "sold", "close_price": "340000"})

    assert "close_price" in refused.context["adminform"].form.errors
    assert sold.status_code == 302
    listing.refresh_from_db()
    assert (listing.status, listing.close_price) == ("sold", Decimal("340000"))
    assert listing.closed_at is not None


def test_view_count_is_read_only(client):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent)
    Listing.objects.filter(pk=listing.pk).update(view_count=7)
    client.force_login(agent)
    data = form_data(client.get(change_url(listing)))

    client.post(change_url(listing), {**data, "view_count": "9999", "title": "Renamed"})

    listing.refresh_from_db()
    assert (listing.title, listing.view_count) == ("Renamed", 7)


def test_delete_goes_through_the_services(client):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent)
    client.force_login(agent)

    response = client.post(f"/admin/listings/listing/{listing.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Listing.objects.filter(pk=listing.pk).exists()
    assert events_of("listing.deleted", listing).exists()


# --- bulk actions ------------------------------------------------------------------------------

def test_bulk_publish_withdraw_and_mark_sold_or_rented(client):
    agent = AgentFactory()
    draft = ListingFactory(agent=agent, status="draft")
    sale = ListingFactory(agent=agent, status="active")
    rental = ListingFactory(agent=agent, status="active", listing_type="rent", price=Decimal("1500"))
    client.force_login(agent)

    client.post(CHANGELIST, {"action": "publish", "_selected_action": [draft.pk]})
    client.post(CHANGELIST, {"action": "mark_closed", "_selected_action": [sale.pk, rental.pk]})
    draft.refresh_from_db()
    assert draft.status == "active" and draft.published_at is not None
    client.post(CHANGELIST, {"action": "withdraw", "_selected_action": [draft.pk]})

    for listing in (draft, sale, rental):
        listing.refresh_from_db()
    assert (draft.status, sale.status, rental.status) == ("withdrawn", "sold", "rented")
    assert sale.close_price == Decimal("350000") and rental.close_price == Decimal("1500")
    assert events_of("listing.status_changed", draft).count() == 2


def test_an_illegal_bulk_change_is_reported_and_the_others_still_happen(client):
    agent = AgentFactory()
    sold = ListingFactory(agent=agent, status="sold", title="Gone already")
    draft = ListingFactory(agent=agent, status="draft")
    client.force_login(agent)

    response = client.post(CHANGELIST, {"action": "publish", "_selected_action": [sold.pk, draft.pk]}, follow=True)

    notes = error_messages(response)
    assert any(note.startswith("Gone already:") and "cannot go from Sold to Active" in note for note in notes)
    assert any("1 listing is now active." in note for note in notes)
    sold.refresh_from_db()
    draft.refresh_from_db()
    assert (sold.status, draft.status) == ("sold", "active")


# --- photos ------------------------------------------------------------------------------------

def photo_post(client, listing, upload, **row):
    data = form_data(client.get(change_url(listing)))
    index = int(data["photos-INITIAL_FORMS"])
    data.update({f"photos-{index}-image": upload, f"photos-{index}-caption": row.get("caption", ""),
                 f"photos-{index}-position": row.get("position", "")})
    return client.post(change_url(listing), data)


def test_photo_inline_rejects_a_text_file_named_png(client):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent)
    client.force_login(agent)

    response = photo_post(client, listing, SimpleUploadedFile("house.png", b"not an image at all"))

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors[0]["image"]
    assert not ListingPhoto.objects.exists()


def test_photo_inline_checks_the_content_not_the_name(client):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent)
    client.force_login(agent)
    data = form_data(client.get(change_url(listing)))

    # A GIF is an image Django accepts, but not a format listings take.
    response = photo_post(client, listing, image_upload("GIF", name="house.png"))
    # The listing's own change in the same submission is not kept either.
    response_with_title = client.post(change_url(listing), {
        **data, "title": "Changed with a bad photo",
        "photos-0-image": image_upload("GIF", name="house.png")})

    assert "Send a JPEG, PNG or WebP image." in str(response.context["inline_admin_formsets"][0].formset.errors)
    assert response_with_title.status_code == 200
    listing.refresh_from_db()
    assert listing.title != "Changed with a bad photo"
    assert not ListingPhoto.objects.exists()
    assert not events_of("listing.updated", listing).exists()


def test_photo_inline_accepts_a_png_strips_exif_and_queues_renditions(client, django_capture_on_commit_callbacks):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent)
    client.force_login(agent)

    with django_capture_on_commit_callbacks(execute=True):
        response = photo_post(client, listing, png_with_exif(), caption="Living room")

    assert response.status_code == 302
    photo = ListingPhoto.objects.get(listing=listing)
    assert (photo.caption, photo.position, photo.width, photo.height) == ("Living room", 0, 40, 30)
    with photo.image.open("rb") as stored:
        image = Image.open(stored)
        image.load()
    assert image.format == "PNG" and not image.getexif() and "exif" not in image.info
    assert queued_tasks("listings.make_photo_renditions") == [f"({photo.pk},)"]
    assert events_of("listing.updated", listing).filter(payload__fields=["photos"]).exists()
    page = client.get(change_url(listing)).content.decode()
    assert f'src="{photo.thumbnail_url}"' in page


def test_a_new_listing_and_its_photos_are_saved_together(client):
    client.force_login(AgentFactory())
    data = new_listing_data(client)
    data.update({"photos-TOTAL_FORMS": "2",
                 "photos-0-image": image_upload("JPEG"), "photos-0-caption": "Front",
                 "photos-1-image": image_upload("WEBP"), "photos-1-caption": "Kitchen", "photos-1-position": "0"})

    response = client.post(ADD, data)

    assert response.status_code == 302
    listing = Listing.objects.get(title="Sunny loft by the canal")
    assert list(listing.photos.order_by("position").values_list("caption", "position")) == [
        ("Kitchen", 0), ("Front", 1)]


def test_photo_count_is_limited(client, monkeypatch):
    from listings import services

    monkeypatch.setattr(services, "MAX_PHOTOS", 1)
    agent = AgentFactory()
    listing = ListingFactory(agent=agent)
    ListingPhoto.objects.create(listing=listing, image=image_upload())
    client.force_login(agent)

    response = photo_post(client, listing, image_upload())

    assert "at most 1 photos" in str(response.context["inline_admin_formsets"][0].formset.non_form_errors())
    assert listing.photos.count() == 1


def test_photo_rows_are_edited_and_deleted_through_the_services(client):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent)
    first, second, third = (ListingPhoto.objects.create(listing=listing, image=image_upload(), position=i)
                            for i in range(3))
    client.force_login(agent)
    data = form_data(client.get(change_url(listing)))
    rows = {int(data[f"photos-{i}-id"]): i for i in range(3)}

    data[f"photos-{rows[first.pk]}-DELETE"] = "on"
    data[f"photos-{rows[third.pk]}-caption"] = "Garden"
    data[f"photos-{rows[third.pk]}-position"] = "0"
    response = client.post(change_url(listing), data)

    assert response.status_code == 302
    assert list(listing.photos.order_by("position").values_list("pk", "position", "caption")) == [
        (third.pk, 0, "Garden"), (second.pk, 1, "")]


# --- the map: local assets, strict CSP ---------------------------------------------------------

def test_change_page_uses_the_sites_leaflet_and_no_cdn(client):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent)
    client.force_login(agent)

    response = client.get(change_url(listing))
    html = response.content.decode()

    assert response.status_code == 200
    assert "/static/leaflet/leaflet.js" in html and "/static/leaflet/leaflet.forms.js" in html
    assert "/static/leaflet/leaflet.css" in html
    assert "openlayers" not in html.lower()
    asset_urls = re.findall(r'<(?:script|link|img)\b[^>]*?\b(?:src|href)="([^"]*)"', html)
    assert asset_urls and not [url for url in asset_urls if re.match(r"(https?:)?//", url)]
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    for attributes in re.findall(r"<script\b([^>]*)>", html):
        assert ("src=" in attributes or f'nonce="{nonce}"' in attributes
                or 'type="application/json"' in attributes), attributes
    assert 'nonce=""' not in html
    # The point is in the widget, and the tiles come from the configured tile server.
    assert "2.3312" in html and settings.MAP_TILE_URL in html


def test_leaflet_static_files_are_served(client):
    for path in ("/static/leaflet/leaflet.js", "/static/leaflet/leaflet.forms.js",
                 "/static/leaflet/draw/leaflet.draw.js", "/static/leaflet/leaflet.css"):
        response = client.get(path)
        assert response.status_code == 200, path
