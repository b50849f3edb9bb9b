"""Who may do what through the API (DESIGN.md sections 5 and 6), as one table.

Every operation of `/api/v1/schema/` has a row (a new endpoint without one fails
`test_every_operation_has_a_row`). Each row names the request (path ids and body, taken from one
small world) and the status each caller gets:

    anon     nobody signed in                          → 401 where sign-in is needed
    owner    the customer whose booking, conversation, saved search, favorite, notification
             and device these are
    cust2    another customer (a stranger to all of it)
    agent    the agent of the listing (and the other party of the conversation and booking)
    agent2   another agent
    staff    role staff

404 when the caller may not see the object, 403 when they may see it but not act on it.
"""

import datetime as dt

import pytest
from django.db import transaction
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import PASSWORD, AgentFactory, StaffFactory, UserFactory
from bookings import services as bookings
from bookings.tests.factories import ViewingFactory
from chat.tests.factories import ConversationFactory, MessageFactory, png_upload
from listings.models import Favorite, Listing, ListingPhoto
from listings.tests.factories import ListingFactory, image_upload
from notifications.models import Device, Notification
from search import services as search
from search.models import SavedSearch

ACTORS = ("anon", "owner", "cust2", "agent", "agent2", "staff")


def expect(anon, owner, cust2, agent, agent2, staff):
    return dict(zip(ACTORS, (anon, owner, cust2, agent, agent2, staff), strict=True))


def row(method, path, statuses, body=None, *, draft=False, fmt="json"):
    """`path` is the schema's template; `{name}` is filled from the world (see `World.ids`);
    `draft`: the listing is the agent's draft instead of the active one."""
    label = " (draft)" if draft else ""
    return pytest.param(method, path, statuses, body, fmt, draft, id=f"{method} {path}{label}")


SIGNED_IN = expect(401, 200, 200, 200, 200, 200)
OWNER_ONLY = expect(401, 200, 404, 404, 404, 404)      # the customer's own things
PARTIES = expect(401, 200, 404, 200, 404, 404)         # the conversation's two parties only
BOOKING_PARTIES = expect(401, 200, 404, 200, 404, 200)  # the viewing's two parties, and staff
LISTING_OWNER = expect(401, 403, 403, 200, 403, 200)   # a listing anyone sees, that its agent changes
ANYONE = expect(200, 200, 200, 200, 200, 200)


def with_status(base, **changes):
    return {**base, **changes}


def ok(base, code):
    """`base` with its 200s turned into `code` (201, 202, 204)."""
    return {actor: code if status == 200 else status for actor, status in base.items()}


MATRIX = [
    # --- accounts -------------------------------------------------------------------------------
    row("post", "/api/v1/auth/register/", ok(ANYONE, 201), {"email": "new-{actor}@example.com",
                                                             "password": "a-long-passphrase-9", "role": "customer"}),
    row("post", "/api/v1/auth/token/", ANYONE, {"email": "{owner_email}", "password": PASSWORD}),
    row("post", "/api/v1/auth/token/refresh/", ANYONE, {"refresh": "{owner_refresh}"}),
    row("get", "/api/v1/me/", SIGNED_IN),
    row("patch", "/api/v1/me/", SIGNED_IN, {"first_name": "Renamed"}),
    row("delete", "/api/v1/me/", ok(SIGNED_IN, 204)),
    row("get", "/api/v1/me/export/", SIGNED_IN),
    # --- listings -------------------------------------------------------------------------------
    row("get", "/api/v1/listings/", ANYONE),
    row("post", "/api/v1/listings/", expect(401, 403, 403, 201, 201, 201), {
        "title": "New flat", "listing_type": "sale", "property_type": "apartment", "price": "250000.00",
        "city": "Paris", "country": "FR", "latitude": 48.86, "longitude": 2.33}),
    row("get", "/api/v1/listings/{id}/", ANYONE),
    row("get", "/api/v1/listings/{id}/", expect(404, 404, 404, 200, 404, 200), draft=True),
    row("put", "/api/v1/listings/{id}/", LISTING_OWNER, {
        "title": "Renamed flat", "listing_type": "sale", "property_type": "apartment", "price": "260000.00",
        "city": "Paris", "country": "FR", "latitude": 48.86, "longitude": 2.33}),
    row("patch", "/api/v1/listings/{id}/", LISTING_OWNER, {"title": "Renamed flat"}),
    # A listing with viewings or conversations is kept (409, withdraw it instead): delete a draft.
    row("delete", "/api/v1/listings/{id}/", expect(401, 404, 404, 204, 404, 204), draft=True),
    row("post", "/api/v1/listings/{id}/photos/", ok(LISTING_OWNER, 201), {"image": "{image}"}, fmt="multipart"),
    row("patch", "/api/v1/listings/{id}/photos/{photo_id}/", LISTING_OWNER, {"caption": "Kitchen"}),
    row("delete", "/api/v1/listings/{id}/photos/{photo_id}/", ok(LISTING_OWNER, 204)),
    row("get", "/api/v1/listings/{listing_id}/similar/", ANYONE),
    row("get", "/api/v1/listings/{listing_id}/slots/?date={slot_date}", ANYONE),
    # No valuation model is trained in tests: 404 for everyone, whoever asks.
    row("get", "/api/v1/listings/{listing_id}/estimate/", expect(404, 404, 404, 404, 404, 404)),
    row("put", "/api/v1/listings/{listing_id}/booking-option/", LISTING_OWNER,
        {"instant_booking": True}),
    row("get", "/api/v1/favorites/", SIGNED_IN),
    row("post", "/api/v1/favorites/", ok(SIGNED_IN, 201) | {"owner": 200}, {"listing": "{listing_id}"}),
    row("delete", "/api/v1/favorites/{listing_id}/", ok(OWNER_ONLY, 204)),  # others: not in their favorites
    # --- search ---------------------------------------------------------------------------------
    row("get", "/api/v1/search/", ANYONE),
    row("get", "/api/v1/saved-searches/", SIGNED_IN),
    row("post", "/api/v1/saved-searches/", ok(SIGNED_IN, 201), {"name": "Lyon", "query": {"q": "flat"}}),
    row("get", "/api/v1/saved-searches/{id}/", OWNER_ONLY),
    row("put", "/api/v1/saved-searches/{id}/", OWNER_ONLY, {"name": "Lyon", "query": {"q": "house"},
                                                            "alert_frequency": "daily"}),
    row("patch", "/api/v1/saved-searches/{id}/", OWNER_ONLY, {"name": "Lyon"}),
    row("delete", "/api/v1/saved-searches/{id}/", ok(OWNER_ONLY, 204)),
    # The link in an alert: the signed token is the permission, whoever follows it.
    row("get", "/api/v1/saved-searches/unsubscribe/?token={unsubscribe_token}", ANYONE),
    row("post", "/api/v1/saved-searches/unsubscribe/?token={unsubscribe_token}", ANYONE),
    # --- bookings -------------------------------------------------------------------------------
    row("get", "/api/v1/availability/", expect(401, 403, 403, 200, 200, 200)),
    row("put", "/api/v1/availability/", expect(401, 403, 403, 200, 200, 200), {
        "time_zone": "Europe/Paris", "rules": [{"weekday": 0, "start": "09:00", "end": "17:00"}]}),
    row("get", "/api/v1/bookings/", SIGNED_IN),
    row("post", "/api/v1/bookings/", expect(401, 201, 201, 403, 201, 201),
        {"listing": "{listing_id}", "start": "{free_slot}"}),
    row("get", "/api/v1/bookings/{id}/", BOOKING_PARTIES),
    row("get", "/api/v1/bookings/{id}/calendar.ics", BOOKING_PARTIES),
    row("post", "/api/v1/bookings/{id}/confirm/", with_status(BOOKING_PARTIES, owner=403)),
    row("post", "/api/v1/bookings/{id}/decline/", with_status(BOOKING_PARTIES, owner=403)),
    row("post", "/api/v1/bookings/{id}/cancel/", BOOKING_PARTIES),
    row("post", "/api/v1/bookings/{id}/reschedule/", with_status(BOOKING_PARTIES, agent=403),
        {"start": "{free_slot}"}),
    # --- chat -----------------------------------------------------------------------------------
    row("get", "/api/v1/conversations/", SIGNED_IN),
    # A customer starts one (the owner has one already: 200); agents only reply.
    row("post", "/api/v1/conversations/", expect(401, 200, 201, 403, 403, 403), {"listing": "{listing_id}"}),
    row("get", "/api/v1/conversations/{conversation_id}/", PARTIES),
    row("get", "/api/v1/conversations/{conversation_id}/messages/", PARTIES),
    row("post", "/api/v1/conversations/{conversation_id}/messages/", ok(PARTIES, 201), {"body": "Hello"}),
    row("post", "/api/v1/conversations/{conversation_id}/read/", PARTIES, {"message_id": "{message_id}"}),
    row("get", "/api/v1/conversations/{conversation_id}/messages/{message_id}/attachment/", PARTIES),
    # --- notifications --------------------------------------------------------------------------
    row("get", "/api/v1/notifications/", SIGNED_IN),
    row("post", "/api/v1/notifications/{id}/read/", OWNER_ONLY),
    row("post", "/api/v1/notifications/read-all/", SIGNED_IN),
    row("get", "/api/v1/notifications/preferences/", SIGNED_IN),
    row("put", "/api/v1/notifications/preferences/", SIGNED_IN,
        {"kinds": [{"kind": "account.welcome", "channels": {"email": False}}]}),
    row("get", "/api/v1/devices/", SIGNED_IN),
    row("post", "/api/v1/devices/", ok(SIGNED_IN, 201), {"token": "token-of-{actor}", "platform": "android"}),
    row("delete", "/api/v1/devices/{id}/", ok(OWNER_ONLY, 204)),
    # --- recommendations ------------------------------------------------------------------------
    row("get", "/api/v1/recommendations/", ANYONE),
    row("post", "/api/v1/interactions/", ok(ANYONE, 202), {"listing": "{listing_id}", "kind": "share"}),
]


class World:
    """A customer's booking, conversation, saved search, favorite, notification and device
    about the agent's listing; a draft listing; strangers of both roles; a staff member."""

    def __init__(self):
        self.users = {
            "owner": UserFactory(), "cust2": UserFactory(), "agent": AgentFactory(), "agent2": AgentFactory(),
            "staff": StaffFactory(),
        }
        owner, agent = self.users["owner"], self.users["agent"]
        self.listing = ListingFactory(agent=agent)
        self.draft = ListingFactory(agent=agent, status=Listing.Status.DRAFT)
        self.photo = ListingPhoto.objects.create(listing=self.listing, image=image_upload(), position=0)
        slots = self._free_slots(days=range(3, 12))
        self.viewing = ViewingFactory(listing=self.listing, customer=owner, start=slots[0][0], end=slots[0][1])
        self.free_slot = slots[-1][0]
        self.conversation = ConversationFactory(listing=self.listing, customer=owner)
        self.message = MessageFactory(conversation=self.conversation, attachment=png_upload(),
                                      attachment_type="image/png")
        self.saved = SavedSearch.objects.create(user=owner, name="Paris", query={"q": "flat"})
        Favorite.objects.create(user=owner, listing=self.listing)
        self.notification = Notification.objects.create(user=owner, kind="account.welcome", source="test:1",
                                                        title="Welcome", body="Hello")
        self.device = Device.objects.create(user=owner, token="owner-device", platform="android",
                                            last_seen_at=dt.datetime.now(dt.UTC))

    def _free_slots(self, days):
        today = dt.date.today()
        found = []
        for offset in days:
            found += bookings.listing_slots(listing=self.listing, date=today + dt.timedelta(days=offset))
        assert len(found) >= 2, "the agent's default week gives free slots"
        return found

    def ids(self, path, actor):
        if path.startswith("/api/v1/bookings/"):
            object_id = self.viewing.pk
        elif path.startswith("/api/v1/saved-searches/"):
            object_id = self.saved.pk
        elif path.startswith("/api/v1/notifications/"):
            object_id = self.notification.pk
        elif path.startswith("/api/v1/devices/"):
            object_id = self.device.pk
        else:
            object_id = self.listing.pk
        return {
            "id": object_id, "listing_id": self.listing.pk, "photo_id": self.photo.pk,
            "conversation_id": self.conversation.pk, "message_id": self.message.pk,
            "slot_date": self.free_slot.date().isoformat(), "free_slot": self.free_slot.isoformat(),
            "unsubscribe_token": search.saved_search_unsubscribe_token(self.saved),
            "owner_email": self.users["owner"].email,
            "owner_refresh": str(RefreshToken.for_user(self.users["owner"])), "actor": actor,
        }


def fill(value, ids):
    if isinstance(value, str):
        if value == "{image}":
            return image_upload()
        filled = value.format(**ids)
        return int(filled) if value in ("{listing_id}", "{message_id}") else filled
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


def schema_operations():
    client = APIClient()
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    return {(method, path) for path, item in schema["paths"].items() for method in item
            if method in ("get", "post", "put", "patch", "delete")}


@pytest.mark.django_db
def test_every_operation_has_a_row():
    rows = {(param.values[0], param.values[1].split("?")[0]) for param in MATRIX}

    assert schema_operations() - rows == set(), "operations without a row in MATRIX"
    assert rows - schema_operations() == set(), "rows of operations the schema does not have"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "statuses", "body", "fmt", "draft"), MATRIX)
def test_matrix(method, path, statuses, body, fmt, draft):
    world = World()
    got = {}
    for actor in ACTORS:
        ids = world.ids(path, actor)
        if draft:
            ids["id"] = world.draft.pk
        client = APIClient()
        if actor != "anon":
            token = RefreshToken.for_user(world.users[actor]).access_token
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        # Each caller meets the same world: what one request changed is rolled back.
        with transaction.atomic():
            response = getattr(client, method)(path.format(**ids), fill(body, ids) if body is not None else None,
                                               format=fmt)
            transaction.set_rollback(True)
        got[actor] = response.status_code

    assert got == statuses
