"""The chat API contract (DESIGN.md section 5): conversations, history pages, sending, reading,
attachments; parties only; every bad input a 4xx with a `detail`."""

import io
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from PIL import Image

from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory
from chat import services
from chat.models import Conversation, Message, ReadPosition
from chat.tests.factories import ConversationFactory, MessageFactory, png_upload
from listings.tests.factories import ListingFactory
from realio.models import OutboxEvent

pytestmark = pytest.mark.django_db

CONVERSATION_FIELDS = {"id", "listing", "customer", "agent", "last_message_at", "unread"}
MESSAGE_FIELDS = {"id", "sender", "body", "created_at", "client_id"}


def messages_url(conversation):
    return f"/api/v1/conversations/{conversation.pk}/messages/"


# --- conversations/ ----------------------------------------------------------------------------

def test_a_customer_starts_a_conversation_then_gets_the_same_one(auth_client):
    listing = ListingFactory()
    customer = UserFactory()
    client = auth_client(customer)

    first = client.post("/api/v1/conversations/", {"listing": listing.pk})
    again = client.post("/api/v1/conversations/", {"listing": listing.pk})

    assert first.status_code == 201
    body = first.json()
    assert set(body) >= CONVERSATION_FIELDS
    assert body["listing"] == listing.pk
    assert body["customer"] == {"id": customer.pk, "name": customer.name}
    assert body["agent"] == {"id": listing.agent_id, "name": listing.agent.name}
    assert body["last_message_at"] is None and body["unread"] == 0
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert Conversation.objects.count() == 1
    assert ReadPosition.objects.filter(conversation_id=body["id"]).count() == 2


@pytest.mark.parametrize("make_user", [AgentFactory, StaffFactory])
def test_agents_and_staff_cannot_start_a_conversation(auth_client, make_user):
    listing = ListingFactory()

    response = auth_client(make_user()).post("/api/v1/conversations/", {"listing": listing.pk})

    assert response.status_code == 403
    assert "only reply" in response.json()["detail"]
    assert not Conversation.objects.exists()


def test_the_listings_own_agent_cannot_start_one_either(auth_client):
    listing = ListingFactory()

    response = auth_client(listing.agent).post("/api/v1/conversations/", {"listing": listing.pk})

    assert response.status_code == 403


@pytest.mark.parametrize("payload, status", [
    ({}, 400), ({"listing": "abc"}, 400), ({"listing": -1}, 400), ({"listing": 10**20}, 400),
    ({"listing": None}, 400), ({"listing": 999999}, 404),
])
def test_bad_listing_values_are_refused(auth_client, payload, status):
    response = auth_client(UserFactory()).post("/api/v1/conversations/", payload, format="json")

    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)


def test_a_draft_listing_cannot_be_contacted(auth_client):
    listing = ListingFactory(status="draft")

    response = auth_client(UserFactory()).post("/api/v1/conversations/", {"listing": listing.pk})

    assert response.status_code == 404


def test_anonymous_callers_get_401(api_client):
    conversation = ConversationFactory()

    assert api_client.get("/api/v1/conversations/").status_code == 401
    assert api_client.post("/api/v1/conversations/", {"listing": conversation.listing_id}).status_code == 401
    assert api_client.get(messages_url(conversation)).status_code == 401
    assert api_client.post(messages_url(conversation), {"body": "hi"}).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_make_one_conversation():
    """Two requests from separate connections at once: one conversation, both get it."""
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    listing = ListingFactory()
    customer = UserFactory()
    token = str(RefreshToken.for_user(customer).access_token)
    barrier = threading.Barrier(4)
    results = []

    def start():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        barrier.wait()
        try:
            response = client.post("/api/v1/conversations/", {"listing": listing.pk}, format="json")
            results.append((response.status_code, response.json()["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(status for status, _ in results).count(201) == 1
    assert {status for status, _ in results} <= {200, 201}
    assert len({pk for _, pk in results}) == 1
    assert Conversation.objects.count() == 1


def test_the_list_holds_the_callers_conversations_with_unread_counts(auth_client):
    conversation = ConversationFactory()
    ConversationFactory()  # someone else's
    services.message_send(conversation_id=conversation.pk, sender=conversation.agent, body="Hello")
    services.message_send(conversation_id=conversation.pk, sender=conversation.agent, body="Still there?")
    services.message_send(conversation_id=conversation.pk, sender=conversation.customer, body="Yes")

    customer_view = auth_client(conversation.customer).get("/api/v1/conversations/").json()
    agent_view = auth_client(conversation.agent).get("/api/v1/conversations/").json()

    assert customer_view["count"] == 1 and {"next", "previous"} <= set(customer_view)
    row = customer_view["results"][0]
    assert row["id"] == conversation.pk
    # The customer's own reply marks what came before as read.
    assert row["unread"] == 0
    assert row["last_message"]["body"] == "Yes"
    assert row["last_message_at"].endswith("Z")
    assert agent_view["results"][0]["unread"] == 1


def test_unread_counts_only_the_other_partys_messages_after_the_read_position(auth_client):
    conversation = ConversationFactory()
    first, _ = services.message_send(conversation_id=conversation.pk, sender=conversation.agent, body="one")
    services.message_send(conversation_id=conversation.pk, sender=conversation.agent, body="two")
    services.message_send(conversation_id=conversation.pk, sender=conversation.agent, body="three")
    client = auth_client(conversation.customer)

    assert client.get("/api/v1/conversations/").json()["results"][0]["unread"] == 3
    response = client.post(f"/api/v1/conversations/{conversation.pk}/read/", {"message_id": first.pk})
    assert response.status_code == 200 and response.json() == {"message_id": first.pk}
    assert client.get("/api/v1/conversations/").json()["results"][0]["unread"] == 2
    # Positions only move forward.
    client.post(f"/api/v1/conversations/{conversation.pk}/read/", {"message_id": first.pk})
    assert client.get(f"/api/v1/conversations/{conversation.pk}/").json()["unread"] == 2


def test_an_agent_sees_a_conversation_once_it_has_a_message(auth_client):
    conversation = ConversationFactory()
    client = auth_client(conversation.agent)

    assert client.get("/api/v1/conversations/").json()["count"] == 0
    services.message_send(conversation_id=conversation.pk, sender=conversation.customer, body="Is it available?")
    assert client.get("/api/v1/conversations/").json()["results"][0]["unread"] == 1


def test_the_inbox_is_ordered_by_the_last_message(auth_client):
    customer = UserFactory()
    older, newer = ConversationFactory(customer=customer), ConversationFactory(customer=customer)
    services.message_send(conversation_id=newer.pk, sender=customer, body="first")
    services.message_send(conversation_id=older.pk, sender=customer, body="later")
    empty = ConversationFactory(customer=customer)

    ids = [row["id"] for row in auth_client(customer).get("/api/v1/conversations/").json()["results"]]

    assert ids == [older.pk, newer.pk, empty.pk]


def test_someone_elses_conversation_is_404(auth_client):
    conversation = ConversationFactory()
    message = MessageFactory(conversation=conversation)
    client = auth_client(UserFactory())

    assert client.get(f"/api/v1/conversations/{conversation.pk}/").status_code == 404
    assert client.get(messages_url(conversation)).status_code == 404
    assert client.post(messages_url(conversation), {"body": "hi"}).status_code == 404
    assert client.post(f"/api/v1/conversations/{conversation.pk}/read/",
                       {"message_id": message.pk}).status_code == 404
    # Staff review conversations in the admin, not through the parties' API.
    assert auth_client(StaffFactory()).get(messages_url(conversation)).status_code == 404


# --- conversations/{id}/messages/ --------------------------------------------------------------

def test_history_pages_run_oldest_to_newest_with_previous_leading_to_older(auth_client):
    conversation = ConversationFactory()
    ids = [MessageFactory(conversation=conversation).pk for _ in range(120)]
    client = auth_client(conversation.customer)

    first = client.get(messages_url(conversation)).json()
    second = client.get(first["previous"]).json()
    third = client.get(second["previous"]).json()
    back = client.get(third["next"]).json()

    assert set(first) == {"next", "previous", "results"}
    assert [m["id"] for m in first["results"]] == ids[70:]
    assert first["next"] is None
    assert [m["id"] for m in second["results"]] == ids[20:70]
    assert [m["id"] for m in third["results"]] == ids[:20]
    assert third["previous"] is None
    assert [m["id"] for m in back["results"]] == ids[20:70]
    assert set(first["results"][0]) >= MESSAGE_FIELDS


def test_page_size_and_bad_cursors(auth_client):
    conversation = ConversationFactory()
    for _ in range(5):
        MessageFactory(conversation=conversation)
    client = auth_client(conversation.customer)

    assert len(client.get(messages_url(conversation) + "?page_size=2").json()["results"]) == 2
    response = client.get(messages_url(conversation) + "?cursor=not-a-cursor")
    assert response.status_code == 400 and response.json()["detail"].startswith("cursor:")


def test_sending_returns_the_stored_message_and_publishes_ids_only(auth_client):
    conversation = ConversationFactory()

    response = auth_client(conversation.customer).post(messages_url(conversation),
                                                       {"body": "Is the garden south-facing?", "client_id": "c-1"})

    assert response.status_code == 201
    body = response.json()
    message = Message.objects.get()
    assert body["id"] == message.pk and body["body"] == "Is the garden south-facing?" and body["client_id"] == "c-1"
    assert body["sender"] == {"id": conversation.customer_id, "name": conversation.customer.name}
    assert body["created_at"].endswith("Z") and body["attachment"] is None
    sent = OutboxEvent.objects.get(type="chat.message_sent")
    assert sent.payload == {"message_id": message.pk, "conversation_id": conversation.pk,
                            "sender_id": conversation.customer_id}
    # Nobody has the conversation open: the agent is told through notifications.
    unread = OutboxEvent.objects.get(type="chat.message_unread")
    assert unread.payload == {"message_id": message.pk, "conversation_id": conversation.pk,
                              "recipient_id": conversation.agent_id}
    conversation.refresh_from_db()
    assert conversation.last_message_id == message.pk and conversation.last_message_at == message.created_at


def test_a_repeated_client_id_returns_the_stored_message(auth_client):
    conversation = ConversationFactory()
    client = auth_client(conversation.customer)

    first = client.post(messages_url(conversation), {"body": "Hello", "client_id": "abc"})
    second = client.post(messages_url(conversation), {"body": "Hello (resent)", "client_id": "abc"})

    assert first.status_code == 201 and second.status_code == 200
    assert second.json() == first.json()
    assert Message.objects.count() == 1
    assert OutboxEvent.objects.filter(type="chat.message_sent").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_client_id_sent_twice_at_once_is_stored_once():
    """Two connections resend one client_id while a third holds the conversation's lock: both
    read "not stored yet" before the lock frees them, so the second one's insert is the check."""
    import time

    from django.db import transaction

    conversation = ConversationFactory()
    results = []

    def send():
        try:
            message, created = services.message_send(conversation_id=conversation.pk, sender=conversation.customer,
                                                     body="Hello", client_id="twice")
            results.append((message.pk, created))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    with transaction.atomic():
        Conversation.objects.select_for_update().get(pk=conversation.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 15
        while waiting_on_a_lock() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    for thread in threads:
        thread.join()

    assert sorted(created for _, created in results) == [False, True]
    assert len({pk for pk, _ in results}) == 1
    assert Message.objects.count() == 1
    assert OutboxEvent.objects.filter(type="chat.message_sent").count() == 1


def waiting_on_a_lock():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else frozen for the transaction
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


def test_a_client_id_from_another_conversation_is_a_conflict(auth_client):
    customer = UserFactory()
    one, two = ConversationFactory(customer=customer), ConversationFactory(customer=customer)
    client = auth_client(customer)
    client.post(messages_url(one), {"body": "Hello", "client_id": "same"})

    response = client.post(messages_url(two), {"body": "Hello", "client_id": "same"})

    assert response.status_code == 409 and response.json()["detail"].startswith("client_id:")


@pytest.mark.parametrize("payload, status, field", [
    ({"body": ""}, 400, "body"),
    ({"body": "   \n "}, 400, "body"),
    ({}, 400, "body"),
    ({"body": "x" * 5001}, 413, "body"),
    ({"body": "nul \x00 inside"}, 400, "body"),
    ({"body": "ok", "client_id": "x" * 65}, 400, "client_id"),
    ({"body": ["a", "list"]}, 400, "body"),
])
def test_bad_messages_are_refused_and_nothing_is_stored(auth_client, payload, status, field):
    conversation = ConversationFactory()

    response = auth_client(conversation.customer).post(messages_url(conversation), payload, format="json")

    assert response.status_code == status
    assert response.json()["detail"].startswith(f"{field}:")
    assert not Message.objects.exists()
    assert not OutboxEvent.objects.filter(type__startswith="chat.").exists()


def test_a_message_of_exactly_5000_characters_is_accepted(auth_client):
    conversation = ConversationFactory()

    response = auth_client(conversation.customer).post(messages_url(conversation), {"body": "é" * 5000})

    assert response.status_code == 201


def test_the_rate_limit_answers_429(auth_client, settings):
    settings.CHAT_RATE_MESSAGES = 3
    conversation = ConversationFactory()
    client = auth_client(conversation.customer)

    statuses = [client.post(messages_url(conversation), {"body": f"n{i}"}).status_code for i in range(4)]

    assert statuses == [201, 201, 201, 429]
    assert Message.objects.count() == 3
    # The other party has a budget of their own.
    assert auth_client(conversation.agent).post(messages_url(conversation), {"body": "hi"}).status_code == 201


def test_writing_to_a_deleted_account_is_a_conflict(auth_client):
    from accounts.services import user_delete

    conversation = ConversationFactory()
    services.message_send(conversation_id=conversation.pk, sender=conversation.customer, body="Hello")
    user_delete(user=conversation.customer)

    client = auth_client(conversation.agent)
    response = client.post(messages_url(conversation), {"body": "Still interested?"})
    history = client.get(messages_url(conversation)).json()

    assert response.status_code == 409
    assert history["results"][0]["sender"]["name"] == "deleted user"
    assert history["results"][0]["body"] == "Hello"


# --- read positions -------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [{}, {"message_id": "x"}, {"message_id": 0}, {"message_id": 999999}])
def test_bad_read_positions_are_400(auth_client, payload):
    conversation = ConversationFactory()

    response = auth_client(conversation.customer).post(f"/api/v1/conversations/{conversation.pk}/read/", payload)

    assert response.status_code == 400 and response.json()["detail"]


def test_a_message_of_another_conversation_cannot_be_marked_read(auth_client):
    conversation = ConversationFactory()
    elsewhere = MessageFactory()

    response = auth_client(conversation.customer).post(f"/api/v1/conversations/{conversation.pk}/read/",
                                                       {"message_id": elsewhere.pk})

    assert response.status_code == 400


# --- attachments ----------------------------------------------------------------------------------

def test_an_image_is_stored_privately_and_served_to_the_parties_only(auth_client, api_client):
    conversation = ConversationFactory()
    customer_client = auth_client(conversation.customer)

    response = customer_client.post(messages_url(conversation), {"body": "The crack in the wall",
                                                                 "attachment": png_upload(exif=True)},
                                    format="multipart")

    assert response.status_code == 201
    url = response.json()["attachment"]
    message = Message.objects.get()
    assert url.endswith(f"/api/v1/conversations/{conversation.pk}/messages/{message.pk}/attachment/")
    stored = Path(settings.STORAGES["private"]["OPTIONS"]["location"]) / message.attachment.name
    assert stored.exists()
    assert not str(stored).startswith(str(settings.MEDIA_ROOT))
    path = url.split("testserver", 1)[1]
    served = auth_client(conversation.agent).get(path)
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"
    assert "private" in served["Cache-Control"]
    image = Image.open(io.BytesIO(b"".join(served.streaming_content)))
    assert image.size == (40, 30) and not image.getexif()  # re-encoded, metadata gone
    assert auth_client(UserFactory()).get(path).status_code == 404
    assert api_client.get(path).status_code == 401


def test_an_image_alone_is_a_message(auth_client):
    conversation = ConversationFactory()

    response = auth_client(conversation.customer).post(messages_url(conversation), {"attachment": png_upload()},
                                                       format="multipart")

    assert response.status_code == 201 and response.json()["body"] == ""


def test_a_file_that_is_no_image_is_refused(auth_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    conversation = ConversationFactory()
    fake = SimpleUploadedFile("photo.png", b"#!/bin/sh\necho not an image\n", content_type="image/png")

    response = auth_client(conversation.customer).post(messages_url(conversation), {"attachment": fake},
                                                       format="multipart")

    assert response.status_code == 400 and response.json()["detail"]
    assert not Message.objects.exists()


def test_a_too_large_image_is_413_and_leaves_no_file(auth_client, settings):
    settings.CHAT_ATTACHMENT_MAX_BYTES = 100
    conversation = ConversationFactory()
    location = Path(settings.STORAGES["private"]["OPTIONS"]["location"])
    before = set(location.rglob("*")) if location.exists() else set()

    response = auth_client(conversation.customer).post(messages_url(conversation),
                                                       {"attachment": png_upload(size=(400, 400))},
                                                       format="multipart")

    assert response.status_code == 413
    assert not Message.objects.exists()
    assert (set(location.rglob("*")) if location.exists() else set()) == before


def test_a_message_without_attachment_has_no_attachment_url(auth_client):
    conversation = ConversationFactory()
    message = MessageFactory(conversation=conversation)

    response = auth_client(conversation.customer).get(
        f"/api/v1/conversations/{conversation.pk}/messages/{message.pk}/attachment/")

    assert response.status_code == 404


# --- account data ---------------------------------------------------------------------------------

def test_the_export_holds_the_conversations_and_their_messages(auth_client):
    conversation = ConversationFactory()
    services.message_send(conversation_id=conversation.pk, sender=conversation.customer, body="Hello")
    services.message_send(conversation_id=conversation.pk, sender=conversation.agent, body="Hi, how can I help?")

    export = auth_client(conversation.customer).get("/api/v1/me/export/").json()

    [exported] = export["conversations"]
    assert exported["id"] == conversation.pk and exported["listing"]["id"] == conversation.listing_id
    assert [m["body"] for m in exported["messages"]] == ["Hello", "Hi, how can I help?"]


def test_deleting_an_account_keeps_the_counterparts_conversation_and_removes_the_images(auth_client):
    from django.db import transaction

    from accounts.services import user_delete

    conversation = ConversationFactory()
    services.message_send(conversation_id=conversation.pk, sender=conversation.customer, body="See the photo",
                          attachment=png_upload())
    empty = ConversationFactory(customer=conversation.customer)
    message = Message.objects.get()
    stored = Path(settings.STORAGES["private"]["OPTIONS"]["location"]) / message.attachment.name
    assert stored.exists()

    with transaction.atomic():
        user_delete(user=conversation.customer)
    # (on_commit runs in tests' transactions only with captureOnCommitCallbacks; the file goes
    # after commit in production.)

    message.refresh_from_db()
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Conversation.objects.filter(pk=empty.pk).exists()
    assert message.body == "See the photo" and not message.attachment and message.deleted_at is not None
    listed = auth_client(conversation.agent).get("/api/v1/conversations/").json()["results"][0]
    assert listed["customer"]["name"] == "deleted user"


def test_deleting_an_account_deletes_the_image_files_after_commit(django_capture_on_commit_callbacks):
    from accounts.services import user_delete

    conversation = ConversationFactory()
    services.message_send(conversation_id=conversation.pk, sender=conversation.customer, body="x",
                          attachment=png_upload())
    name = Message.objects.get().attachment.name
    stored = Path(settings.STORAGES["private"]["OPTIONS"]["location"]) / name

    with django_capture_on_commit_callbacks(execute=True):
        user_delete(user=conversation.customer)

    assert not stored.exists()


def test_a_listing_with_conversations_is_withdrawn_rather_than_deleted(auth_client):
    conversation = ConversationFactory()

    response = auth_client(conversation.agent).delete(f"/api/v1/listings/{conversation.listing_id}/")

    assert response.status_code == 409
    assert Conversation.objects.filter(pk=conversation.pk).exists()
