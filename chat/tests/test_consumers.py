"""`/ws/chat/{id}/` through the real ASGI stack (origin check, Bearer/session auth, URL router)
and the real Redis channel layer, with Channels' WebsocketCommunicator."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import UserFactory
from chat import realtime, services
from chat.models import Message, ReadPosition
from chat.tests.factories import ConversationFactory
from realio.asgi import application
from realio.models import OutboxEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
ORIGIN = (b"origin", b"http://testserver")


def token_for(user):
    return str(RefreshToken.for_user(user).access_token)


async def communicator_for(user, conversation_id):
    headers = [ORIGIN]
    if user is not None:
        headers.append((b"authorization", f"Bearer {await sync_to_async(token_for)(user)}".encode()))
    return WebsocketCommunicator(application, f"/ws/chat/{conversation_id}/", headers=headers)


async def open_socket(user, conversation_id):
    """A connected party's socket, past its first frame (the other party's presence)."""
    communicator = await communicator_for(user, conversation_id)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    first = await communicator.receive_json_from(timeout=5)
    assert first["type"] == "presence"
    return communicator


async def receive(communicator, frame_type, timeout=5):
    """The next frame of `frame_type`, skipping the others (presence, typing)."""
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        if frame["type"] == frame_type:
            return frame


async def refused_with(user, conversation_id):
    communicator = await communicator_for(user, conversation_id)
    connected, code = await communicator.connect(timeout=5)
    if connected:  # accepted, then closed with the reason
        output = await communicator.receive_output(timeout=5)
        assert output["type"] == "websocket.close"
        return output["code"]
    return code


@pytest.fixture
def conversation():
    return ConversationFactory()


async def make_conversation():
    return await sync_to_async(ConversationFactory)()


# --- who gets in -----------------------------------------------------------------------------------

async def test_anonymous_is_closed_with_4401():
    conversation = await make_conversation()

    assert await refused_with(None, conversation.pk) == 4401


async def test_anyone_but_the_two_parties_is_closed_with_4403():
    conversation = await make_conversation()
    stranger = await sync_to_async(UserFactory)()
    other_agent = (await sync_to_async(ConversationFactory)()).agent

    assert await refused_with(stranger, conversation.pk) == 4403
    assert await refused_with(other_agent, conversation.pk) == 4403
    assert await refused_with(stranger, 987654321) == 4403


async def test_a_foreign_origin_is_rejected():
    conversation = await make_conversation()
    communicator = WebsocketCommunicator(application, f"/ws/chat/{conversation.pk}/",
                                         headers=[(b"origin", b"http://evil.example")])

    connected, _ = await communicator.connect(timeout=5)

    assert not connected


async def test_the_session_cookie_authenticates_too():
    from django.conf import settings
    from django.test import Client

    conversation = await make_conversation()

    def cookie():
        client = Client()
        client.force_login(conversation.customer)
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    session = await sync_to_async(cookie)()
    communicator = WebsocketCommunicator(application, f"/ws/chat/{conversation.pk}/", headers=[
        ORIGIN, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())])

    connected, _ = await communicator.connect(timeout=5)

    assert connected
    assert await communicator.receive_json_from(timeout=5) == {"type": "presence",
                                                                "user_id": conversation.agent_id, "online": False}
    await communicator.disconnect()


# --- messages ----------------------------------------------------------------------------------------

async def test_a_message_reaches_both_parties_after_it_is_stored():
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)
    agent = await open_socket(conversation.agent, conversation.pk)

    await customer.send_json_to({"type": "message", "body": "Is it still available?", "client_id": "k1"})
    to_agent = await receive(agent, "message")
    to_customer = await receive(customer, "message")

    # Committed before delivery: a separate connection already sees the row.
    stored = await sync_to_async(Message.objects.get)(pk=to_agent["message"]["id"])
    assert stored.body == "Is it still available?"
    assert to_agent == to_customer
    assert to_agent["message"]["sender"] == {"id": conversation.customer_id, "name": conversation.customer.name}
    assert to_agent["message"]["client_id"] == "k1" and to_agent["message"]["created_at"].endswith("Z")
    assert {"id", "sender", "body", "created_at", "client_id"} <= set(to_agent["message"])
    await customer.disconnect()
    await agent.disconnect()


async def test_nothing_is_delivered_before_the_transaction_commits():
    conversation = await make_conversation()
    agent = await open_socket(conversation.agent, conversation.pk)

    def send_in_a_transaction():
        with transaction.atomic():
            message, _ = services.message_send(conversation_id=conversation.pk, sender=conversation.customer,
                                               body="Written, not committed yet")
            assert async_to_sync(agent.receive_nothing)(timeout=0.5)
        return message

    message = await sync_to_async(send_in_a_transaction)()

    assert (await receive(agent, "message"))["message"]["id"] == message.pk
    await agent.disconnect()


async def test_a_rolled_back_message_is_never_delivered():
    conversation = await make_conversation()
    agent = await open_socket(conversation.agent, conversation.pk)

    def send_and_roll_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            services.message_send(conversation_id=conversation.pk, sender=conversation.customer, body="Oops")
            raise RuntimeError("the request failed after the write")

    await sync_to_async(send_and_roll_back)()

    assert await agent.receive_nothing(timeout=0.5)
    assert not await sync_to_async(Message.objects.exists)()
    await agent.disconnect()


async def test_messages_arrive_in_order():
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)
    agent = await open_socket(conversation.agent, conversation.pk)

    for n in range(12):
        await customer.send_json_to({"type": "message", "body": f"line {n}", "client_id": f"o{n}"})
    received = [(await receive(agent, "message"))["message"] for _ in range(12)]

    assert [m["body"] for m in received] == [f"line {n}" for n in range(12)]
    ids = [m["id"] for m in received]
    assert ids == sorted(ids)
    assert ids == await sync_to_async(lambda: list(Message.objects.order_by("id").values_list("id", flat=True)))()
    await customer.disconnect()
    await agent.disconnect()


async def test_a_resent_client_id_is_stored_once_and_acknowledged_again():
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)
    agent = await open_socket(conversation.agent, conversation.pk)

    await customer.send_json_to({"type": "message", "body": "Hello", "client_id": "same"})
    first = await receive(customer, "message")
    await customer.disconnect()
    customer = await open_socket(conversation.customer, conversation.pk)  # a new socket: nothing delivered yet
    await customer.send_json_to({"type": "message", "body": "Hello", "client_id": "same"})
    again = await receive(customer, "message")

    assert again == first
    assert await sync_to_async(Message.objects.count)() == 1
    await receive(agent, "message")
    assert not [f for f in await drain(agent) if f["type"] == "message"]
    await customer.disconnect()
    await agent.disconnect()


async def drain(communicator, timeout=0.3):
    frames = []
    while not await communicator.receive_nothing(timeout=timeout):
        frames.append(await communicator.receive_json_from())
    return frames


async def test_a_message_sent_through_the_api_reaches_the_open_sockets():
    conversation = await make_conversation()
    agent = await open_socket(conversation.agent, conversation.pk)

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(conversation.customer)}")
        return client.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"body": "Sent from the app"},
                           format="json")

    response = await sync_to_async(post)()

    assert response.status_code == 201
    frame = await receive(agent, "message")
    assert frame["message"] == response.json() | {"attachment": None}
    await agent.disconnect()


# --- reconnecting ------------------------------------------------------------------------------------

async def test_resume_replays_what_was_missed_before_live_delivery():
    conversation = await make_conversation()
    agent = await open_socket(conversation.agent, conversation.pk)
    customer = await open_socket(conversation.customer, conversation.pk)
    await customer.send_json_to({"type": "message", "body": "before", "client_id": "r0"})
    seen = (await receive(agent, "message"))["message"]["id"]
    await agent.disconnect()

    for n in range(3):  # while the agent is away (on the API and on the socket)
        await sync_to_async(services.message_send)(conversation_id=conversation.pk, sender=conversation.customer,
                                                   body=f"missed {n}")
    agent = await open_socket(conversation.agent, conversation.pk)
    await agent.send_json_to({"type": "resume", "after_id": seen})
    await customer.send_json_to({"type": "message", "body": "live", "client_id": "r1"})

    frames = [(await receive(agent, "message"))["message"]["body"] for _ in range(4)]

    assert frames == ["missed 0", "missed 1", "missed 2", "live"]
    assert not [f for f in await drain(agent) if f["type"] == "message"]
    await agent.disconnect()
    await customer.disconnect()


async def test_resume_from_zero_replays_the_whole_history_in_batches():
    conversation = await make_conversation()

    def many():
        for n in range(450):
            Message.objects.create(conversation=conversation, sender=conversation.customer, body=f"m{n}")

    await sync_to_async(many)()
    agent = await open_socket(conversation.agent, conversation.pk)
    await agent.send_json_to({"type": "resume", "after_id": 0})

    bodies = [(await receive(agent, "message"))["message"]["body"] for _ in range(450)]

    assert bodies == [f"m{n}" for n in range(450)]
    await agent.disconnect()


async def test_resume_also_tells_how_far_the_other_party_read():
    conversation = await make_conversation()
    message, _ = await sync_to_async(services.message_send)(conversation_id=conversation.pk,
                                                            sender=conversation.customer, body="hi")
    await sync_to_async(services.message_read)(conversation_id=conversation.pk, user=conversation.agent,
                                               message_id=message.pk)
    customer = await open_socket(conversation.customer, conversation.pk)

    await customer.send_json_to({"type": "resume", "after_id": message.pk})

    assert await receive(customer, "read") == {"type": "read", "user_id": conversation.agent_id,
                                               "message_id": message.pk}
    await customer.disconnect()


# --- typing, read, presence ------------------------------------------------------------------------

async def test_typing_is_relayed_to_the_other_party_only():
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)
    agent = await open_socket(conversation.agent, conversation.pk)
    await receive(customer, "presence")  # the agent arrived

    await agent.send_json_to({"type": "typing"})

    assert await receive(customer, "typing") == {"type": "typing", "user_id": conversation.agent_id}
    assert await agent.receive_nothing(timeout=0.3)
    await customer.disconnect()
    await agent.disconnect()


async def test_reading_moves_the_position_and_tells_the_other_party():
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)
    agent = await open_socket(conversation.agent, conversation.pk)
    await customer.send_json_to({"type": "message", "body": "hello", "client_id": "x"})
    message_id = (await receive(agent, "message"))["message"]["id"]

    await agent.send_json_to({"type": "read", "message_id": message_id})

    assert await receive(customer, "read") == {"type": "read", "user_id": conversation.agent_id,
                                               "message_id": message_id}
    position = await sync_to_async(ReadPosition.objects.get)(conversation=conversation, user=conversation.agent)
    assert position.last_read_id == message_id
    await customer.disconnect()
    await agent.disconnect()


async def test_presence_follows_the_other_partys_sockets():
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)

    first_tab = await open_socket(conversation.agent, conversation.pk)
    assert await receive(customer, "presence") == {"type": "presence", "user_id": conversation.agent_id,
                                                   "online": True}
    second_tab = await open_socket(conversation.agent, conversation.pk)
    await first_tab.disconnect()
    assert await customer.receive_nothing(timeout=0.3)  # still there in the second tab
    await second_tab.disconnect()

    assert await receive(customer, "presence") == {"type": "presence", "user_id": conversation.agent_id,
                                                   "online": False}
    await customer.disconnect()


async def test_a_crashed_processs_socket_stops_counting_as_online(settings):
    settings.CHAT_PRESENCE_TTL_SECONDS = 2
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)
    # A socket of the agent on a process that then dies: joined, never refreshed, never left.
    await realtime.presence_join(conversation.pk, conversation.agent_id, "dead-process!channel",
                                 other_id=conversation.customer_id)

    assert (await receive(customer, "presence", timeout=4))["online"] is True  # seen by the heartbeat
    assert (await receive(customer, "presence", timeout=5))["online"] is False  # expired
    assert not await sync_to_async(realtime.is_present)(conversation.pk, conversation.agent_id)
    await customer.disconnect()


# --- limits and bad frames -------------------------------------------------------------------------

async def test_the_rate_limit_is_an_error_frame(settings):
    settings.CHAT_RATE_MESSAGES = 3
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)

    for n in range(4):
        await customer.send_json_to({"type": "message", "body": f"n{n}", "client_id": f"rl{n}"})
    frames = [await customer.receive_json_from(timeout=5) for _ in range(4)]

    # The refusal is sent at once; the stored messages come back through the group.
    assert sorted(f["type"] for f in frames) == ["error", "message", "message", "message"]
    [error] = [f for f in frames if f["type"] == "error"]
    assert error["status"] == 429 and error["client_id"] == "rl3" and error["detail"]
    assert await sync_to_async(Message.objects.count)() == 3
    await customer.disconnect()


async def test_a_too_long_message_is_a_413_error_frame_and_the_socket_stays_open():
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)

    await customer.send_json_to({"type": "message", "body": "x" * 5001, "client_id": "big"})
    error = await customer.receive_json_from(timeout=5)
    await customer.send_json_to({"type": "message", "body": "short", "client_id": "small"})

    assert error["type"] == "error" and error["status"] == 413 and "5,000" in error["detail"]
    assert (await receive(customer, "message"))["message"]["body"] == "short"
    assert await sync_to_async(Message.objects.count)() == 1
    await customer.disconnect()


@pytest.mark.parametrize("frame, status", [
    ("not json", 400),
    ("[1, 2]", 400),
    ('{"type": "dance"}', 400),
    ('{"no": "type"}', 400),
    ('{"type": "message", "body": ""}', 400),
    ('{"type": "message", "body": 12}', 400),
    ('{"type": "message", "body": "hi", "client_id": {"a": 1}}', 400),
    ('{"type": "read", "message_id": "x"}', 400),
    ('{"type": "read", "message_id": 999999}', 400),
    ('{"type": "resume", "after_id": -1}', 400),
    ('{"type": "resume", "after_id": "5"}', 400),
    ('{"type": "message", "body": "' + "y" * 70000 + '"}', 413),
])
async def test_bad_frames_get_an_error_frame(frame, status):
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)

    await customer.send_to(text_data=frame)
    error = await customer.receive_json_from(timeout=5)
    await customer.send_to(text_data=json.dumps({"type": "typing"}))  # still open and working

    assert error["type"] == "error" and error["status"] == status and isinstance(error["detail"], str)
    assert await customer.receive_nothing(timeout=0.2)
    assert not await sync_to_async(Message.objects.exists)()
    await customer.disconnect()


async def test_a_binary_frame_is_an_error():
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)

    await customer.send_to(bytes_data=b"\x00\x01")

    assert (await customer.receive_json_from(timeout=5))["status"] == 400
    await customer.disconnect()


# --- the offline event -------------------------------------------------------------------------------

async def test_the_unread_event_is_published_only_when_the_recipient_is_not_connected():
    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)

    await customer.send_json_to({"type": "message", "body": "agent away", "client_id": "a"})
    away = (await receive(customer, "message"))["message"]["id"]
    agent = await open_socket(conversation.agent, conversation.pk)
    await customer.send_json_to({"type": "message", "body": "agent here", "client_id": "b"})
    here = (await receive(customer, "message"))["message"]["id"]

    events = await sync_to_async(lambda: list(OutboxEvent.objects.order_by("id").values_list("type", "payload")))()
    assert ("chat.message_unread", {"message_id": away, "conversation_id": conversation.pk,
                                    "recipient_id": conversation.agent_id}) in events
    assert not [p for t, p in events if t == "chat.message_unread" and p["message_id"] == here]
    assert [p["message_id"] for t, p in events if t == "chat.message_sent"] == [away, here]
    await customer.disconnect()
    await agent.disconnect()


async def test_a_socket_is_cleaned_up_when_it_closes():
    conversation = await make_conversation()
    agent = await open_socket(conversation.agent, conversation.pk)
    assert await sync_to_async(realtime.is_present)(conversation.pk, conversation.agent_id)

    await agent.disconnect()
    await asyncio.sleep(0.05)

    assert not await sync_to_async(realtime.is_present)(conversation.pk, conversation.agent_id)


async def test_the_loops_database_and_redis_clients_close_with_its_last_socket():
    """Messages from sockets run on clients of the event loop's own (realio.asyncdb): kept while a
    socket is open, closed when the last one goes (a test's loop, or a process left idle)."""
    from realio import asyncdb

    conversation = await make_conversation()
    customer = await open_socket(conversation.customer, conversation.pk)
    agent = await open_socket(conversation.agent, conversation.pk)
    await customer.send_json_to({"type": "message", "body": "Hello", "client_id": "c1"})
    await receive(agent, "message")
    clients = asyncdb._loops[asyncio.get_running_loop()]
    pool = clients.pool
    assert pool is not None and clients.redis is not None

    await customer.disconnect()
    assert clients.pool is pool  # the agent's socket is still open
    await agent.disconnect()

    assert clients.pool is None and clients.redis is None and pool.closed
