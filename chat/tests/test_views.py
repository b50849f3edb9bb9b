"""The chat pages through Django's test client: the inbox, "Contact the agent", a conversation
(escaped text, clickable links, no inline script), the form that works without JavaScript,
and the admin review."""

import re

import pytest
from django.urls import reverse

from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory
from chat import services
from chat.models import Conversation, Message, ReadPosition
from chat.tests.factories import ConversationFactory
from listings.tests.factories import ListingFactory

pytestmark = pytest.mark.django_db


def test_the_pages_need_a_signed_in_person(client):
    conversation = ConversationFactory()

    for url in ("/messages/", f"/messages/{conversation.pk}/", f"/messages/?listing={conversation.listing_id}"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not Conversation.objects.exclude(pk=conversation.pk).exists()


def test_contact_the_agent_opens_the_conversation_and_lands_in_it(client):
    listing = ListingFactory()
    customer = UserFactory()
    client.force_login(customer)

    first = client.get(f"/messages/?listing={listing.pk}")
    again = client.get(f"/messages/?listing={listing.pk}")

    conversation = Conversation.objects.get()
    assert conversation.customer == customer and conversation.agent == listing.agent
    assert first["Location"] == again["Location"] == reverse("conversation_page", args=[conversation.pk])


def test_the_listing_page_links_to_it(client):
    listing = ListingFactory()
    client.force_login(UserFactory())

    page = client.get(f"/listings/{listing.pk}/").content.decode()

    assert f'href="/messages/?listing={listing.pk}"' in page


@pytest.mark.parametrize("value", ["abc", "", "999999"])
def test_contacting_about_a_bad_listing_says_why(client, value):
    client.force_login(UserFactory())

    response = client.get(f"/messages/?listing={value}", follow=True)

    assert response.redirect_chain[-1][0] == "/messages/"
    assert list(response.context["messages"])
    assert not Conversation.objects.exists()


def test_an_agent_cannot_open_a_conversation_from_a_listing(client):
    listing = ListingFactory()
    client.force_login(AgentFactory())

    response = client.get(f"/messages/?listing={listing.pk}", follow=True)

    assert "only reply" in next(str(m) for m in response.context["messages"])
    assert not Conversation.objects.exists()


def test_the_inbox_shows_listing_last_message_and_unread_count(client):
    conversation = ConversationFactory(listing=ListingFactory(title="Loft by the river"))
    services.message_send(conversation_id=conversation.pk, sender=conversation.agent, body="<b>Hi</b> there")
    services.message_send(conversation_id=conversation.pk, sender=conversation.agent, body="Any questions?")
    client.force_login(conversation.customer)

    page = client.get("/messages/").content.decode()

    assert "Loft by the river" in page
    assert "Any questions?" in page
    assert "2 unread" in page
    assert conversation.agent.name in page


def test_an_agents_inbox_lists_the_conversations_about_their_homes(client):
    conversation = ConversationFactory()
    services.message_send(conversation_id=conversation.pk, sender=conversation.customer, body="Hello agent")
    ConversationFactory(listing=conversation.listing)  # opened, nothing written yet
    client.force_login(conversation.agent)

    page = client.get("/messages/").content.decode()

    assert page.count('class="inbox__item') == 1
    assert "Hello agent" in page and conversation.customer.name in page


def test_a_conversation_page_escapes_text_and_links_urls(client):
    conversation = ConversationFactory()
    services.message_send(conversation_id=conversation.pk, sender=conversation.agent,
                          body='<script>alert("x")</script> see https://example.com/plan?a=1&b=2')
    client.force_login(conversation.customer)

    response = client.get(f"/messages/{conversation.pk}/")
    page = response.content.decode()

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'href="https://example.com/plan?a=1&amp;b=2"' in page
    # Only external scripts, each with the CSP nonce.
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and all('src="' in tag and "nonce=" in tag for tag in scripts)
    assert "js/chat.js" in page


def test_opening_a_conversation_marks_it_read(client):
    conversation = ConversationFactory()
    message, _ = services.message_send(conversation_id=conversation.pk, sender=conversation.agent, body="Hello")
    client.force_login(conversation.customer)

    client.get(f"/messages/{conversation.pk}/")

    assert ReadPosition.objects.get(conversation=conversation, user=conversation.customer).last_read_id == message.pk


def test_someone_elses_conversation_page_is_404(client):
    conversation = ConversationFactory()
    client.force_login(UserFactory())

    assert client.get(f"/messages/{conversation.pk}/").status_code == 404
    assert client.post(f"/messages/{conversation.pk}/", {"body": "hi"}).status_code == 404
    assert not Message.objects.exists()


def test_the_form_sends_without_javascript(client):
    conversation = ConversationFactory()
    client.force_login(conversation.customer)

    response = client.post(f"/messages/{conversation.pk}/", {"body": "Sent by the form", "client_id": "f1"})
    client.post(f"/messages/{conversation.pk}/", {"body": "Sent by the form", "client_id": "f1"})  # resubmitted

    assert response.status_code == 302
    assert list(Message.objects.values_list("body", flat=True)) == ["Sent by the form"]


def test_the_form_shows_what_went_wrong(client):
    conversation = ConversationFactory()
    client.force_login(conversation.customer)

    response = client.post(f"/messages/{conversation.pk}/", {"body": "x" * 5001}, follow=True)

    assert "5,000" in next(str(m) for m in response.context["messages"])
    assert not Message.objects.exists()


def test_staff_review_any_conversation_in_the_admin_and_agents_their_own(client):
    conversation = ConversationFactory()
    services.message_send(conversation_id=conversation.pk, sender=conversation.customer, body="Admin can read me")
    other = ConversationFactory()

    client.force_login(StaffFactory())
    assert client.get("/admin/chat/conversation/").status_code == 200
    page = client.get(f"/admin/chat/conversation/{conversation.pk}/change/").content.decode()
    assert "Admin can read me" in page

    client.force_login(conversation.agent)
    listing = client.get("/admin/chat/conversation/").content.decode()
    assert f"/admin/chat/conversation/{conversation.pk}/change/" in listing
    assert f"/admin/chat/conversation/{other.pk}/change/" not in listing
    assert client.get(f"/admin/chat/conversation/{other.pk}/change/").status_code in (302, 403, 404)

    client.force_login(conversation.customer)
    assert client.get("/admin/chat/conversation/").status_code == 302
