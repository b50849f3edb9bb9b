"""Chat messages while the recipient is away, from `chat.message_unread`: a burst is one
notification, its email and push wait for the burst to end, a message read in the meantime
tells nobody."""

import pytest

from accounts.tests.factories import AgentFactory, UserFactory
from chat import services as chat_services
from listings.tests.factories import ListingFactory
from notifications import handlers
from notifications.models import Delivery, Notification
from notifications.tests.conftest import wait_for
from realio.models import OutboxEvent


def conversation_with_agent():
    agent = AgentFactory(first_name="Ana", last_name="Agent")
    customer = UserFactory(first_name="Carl", last_name="Customer")
    listing = ListingFactory(agent=agent, title="Loft by the canal")
    conversation, _ = chat_services.conversation_start(user=customer, listing_id=listing.pk)
    return conversation, customer, agent


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_messages_to_an_absent_agent_is_one_notification(celery_worker):
    conversation, customer, agent = conversation_with_agent()

    for body in ("Hello!", "Is the loft still available?", "I could visit on Friday."):
        chat_services.message_send(conversation_id=conversation.pk, sender=customer, body=body)

    def collapsed():
        notification = Notification.objects.filter(user=agent, kind="chat.message").first()
        return notification if notification and notification.data.get("count") == 3 else None

    notification = wait_for(collapsed, "three messages in one notification")
    assert Notification.objects.filter(user=agent, kind="chat.message").count() == 1
    assert notification.title == "Carl Customer wrote about Loft by the canal"
    assert notification.body == "I could visit on Friday."
    assert notification.url == f"/messages/{conversation.pk}/"
    deliveries = {d.channel: d for d in Delivery.objects.filter(notification=notification)}
    assert deliveries["in_app"].status == "delivered"
    # email and push wait for the burst to end
    assert deliveries["email"].status == "pending"
    assert deliveries["email"].due_at > notification.created_at
    assert not Notification.objects.filter(user=customer).exists()


@pytest.mark.django_db
def test_a_message_read_before_the_handler_runs_tells_nobody():
    conversation, customer, agent = conversation_with_agent()
    message, _ = chat_services.message_send(conversation_id=conversation.pk, sender=customer, body="Hi")
    chat_services.message_read(conversation_id=conversation.pk, user=agent, message_id=message.pk)

    handlers.chat_message_unread(OutboxEvent.objects.get(type="chat.message_unread"))

    assert not Notification.objects.filter(kind="chat.message").exists()


@pytest.mark.django_db
def test_a_replayed_event_creates_nothing_more_and_long_text_is_cut():
    conversation, customer, agent = conversation_with_agent()
    chat_services.message_send(conversation_id=conversation.pk, sender=customer, body="word " * 300)
    event = OutboxEvent.objects.get(type="chat.message_unread")

    handlers.chat_message_unread(event)
    handlers.chat_message_unread(event)

    [notification] = Notification.objects.filter(user=agent, kind="chat.message")
    assert len(notification.body) == handlers.CHAT_EXCERPT
    assert notification.body.endswith("…")
