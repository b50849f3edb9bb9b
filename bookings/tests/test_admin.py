"""Bookings in the admin: agents see and act on their own viewings, availability and listing
options only; staff see everyone's; every change goes through the services."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory
from bookings import services
from bookings.models import AgentAvailability, ListingBookingOption, Viewing
from bookings.tests.factories import ViewingFactory
from listings.tests.factories import ListingFactory
from realio.models import OutboxEvent

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
VIEWINGS = "/admin/bookings/viewing/"
AVAILABILITY = "/admin/bookings/agentavailability/"
OPTIONS = "/admin/bookings/listingbookingoption/"


def next_weekday(days_ahead=2):
    day = dt.datetime.now(PARIS).date() + dt.timedelta(days=days_ahead)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return day


def paris(day, hour, minute=0):
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS)


@pytest.fixture
def agent_a():
    return AgentFactory(time_zone="Europe/Paris")


@pytest.fixture
def agent_b():
    return AgentFactory(time_zone="Europe/Paris")


def book(listing, hour, customer=None, day=None):
    return services.booking_request(customer=customer or UserFactory(), listing_id=listing.pk,
                                    start=paris(day or next_weekday(), hour))


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def viewings(agent_a, agent_b):
    """A requested viewing of each agent's listing."""
    mine = book(ListingFactory(agent=agent_a, title="Agent A's loft"), 10)
    theirs = book(ListingFactory(agent=agent_b, title="Agent B's barn"), 10)
    return mine, theirs


# --- viewings: scoping ------------------------------------------------------------------------

def test_an_agent_sees_only_their_own_viewings(client, agent_a, viewings):
    client.force_login(agent_a)

    response = client.get(VIEWINGS)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Agent A&#x27;s loft" in html
    assert "Agent B" not in html
    assert list(response.context["cl"].queryset) == [viewings[0]]


def test_an_agent_cannot_open_another_agents_viewing(client, agent_a, viewings):
    client.force_login(agent_a)

    assert client.get(f"{VIEWINGS}{viewings[0].pk}/change/").status_code == 200
    assert client.get(f"{VIEWINGS}{viewings[1].pk}/change/").status_code in (302, 403, 404)


def test_an_agent_cannot_confirm_another_agents_viewing_with_a_crafted_post(client, agent_a, viewings):
    mine, theirs = viewings
    client.force_login(agent_a)

    client.post(VIEWINGS, {"action": "confirm", "_selected_action": [mine.pk, theirs.pk]})

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("confirmed", "requested")


def test_staff_see_every_viewing_and_may_confirm(client, viewings):
    client.force_login(StaffFactory())

    response = client.get(VIEWINGS)
    assert {v.pk for v in response.context["cl"].queryset} == {v.pk for v in viewings}

    client.post(VIEWINGS, {"action": "confirm", "_selected_action": [viewings[1].pk]})
    viewings[1].refresh_from_db()
    assert viewings[1].status == "confirmed"


def test_a_customer_has_no_viewings_admin(client, viewings):
    customer = viewings[0].customer
    customer.is_staff = True  # even with the flag, no permission on viewings
    customer.save()
    client.force_login(customer)
    assert client.get(VIEWINGS).status_code == 403


def test_viewings_are_not_added_changed_or_deleted_in_the_admin(client, agent_a, viewings):
    client.force_login(agent_a)
    mine = viewings[0]

    assert client.get(f"{VIEWINGS}add/").status_code == 403
    assert client.post(f"{VIEWINGS}{mine.pk}/change/", {"status": "cancelled"}).status_code == 403
    assert client.post(f"{VIEWINGS}{mine.pk}/delete/", {"post": "yes"}).status_code == 403
    mine.refresh_from_db()
    assert mine.status == "requested"


# --- viewings: actions ----------------------------------------------------------------------------

def test_confirm_reports_each_failure_and_counts_the_rest(client, agent_a):
    listing = ListingFactory(agent=agent_a, title="Loft")
    good, cancelled = book(listing, 10), book(listing, 11)
    services.booking_cancel(viewing_id=cancelled.pk, by=cancelled.customer)
    client.force_login(agent_a)

    response = client.post(VIEWINGS, {"action": "confirm", "_selected_action": [good.pk, cancelled.pk]},
                           follow=True)

    shown = messages_of(response)
    assert "1 viewing confirmed." in shown
    assert any("A cancelled viewing cannot be confirmed." in m for m in shown)
    good.refresh_from_db()
    cancelled.refresh_from_db()
    assert (good.status, cancelled.status) == ("confirmed", "cancelled")


def test_decline_and_cancel_actions(client, agent_a):
    listing = ListingFactory(agent=agent_a)
    request, confirmed = book(listing, 10), book(listing, 11)
    services.booking_confirm(viewing_id=confirmed.pk, by=agent_a)
    client.force_login(agent_a)

    client.post(VIEWINGS, {"action": "decline", "_selected_action": [request.pk]})
    client.post(VIEWINGS, {"action": "cancel", "_selected_action": [confirmed.pk]})

    request.refresh_from_db()
    confirmed.refresh_from_db()
    assert (request.status, confirmed.status) == ("declined", "cancelled")
    assert list(confirmed.history.values_list("new_status", flat=True)) == ["requested", "confirmed", "cancelled"]


def test_the_history_is_shown_read_only_on_the_viewing(client, agent_a):
    viewing = book(ListingFactory(agent=agent_a), 10)
    services.booking_confirm(viewing_id=viewing.pk, by=agent_a)
    client.force_login(agent_a)

    response = client.get(f"{VIEWINGS}{viewing.pk}/change/")

    assert response.status_code == 200
    (inline,) = response.context["inline_admin_formsets"]
    assert [form.original.new_status for form in inline] == ["requested", "confirmed"]
    assert not inline.has_add_permission and not inline.has_change_permission


def test_the_agenda_filters_today_and_this_week(client, agent_a):
    listing = ListingFactory(agent=agent_a)
    now = timezone.now()
    today = ViewingFactory(listing=listing, start=now + dt.timedelta(minutes=1))
    far = ViewingFactory(listing=listing, start=now + dt.timedelta(days=10))
    agent_a.time_zone = "UTC"
    agent_a.save()
    client.force_login(agent_a)

    def shown(query):
        return {v.pk for v in client.get(f"{VIEWINGS}?{query}").context["cl"].queryset}

    if timezone.localdate(now + dt.timedelta(minutes=1), dt.UTC) == timezone.localdate(now, dt.UTC):
        assert shown("agenda=today") == {today.pk}
    assert today.pk in shown("agenda=week")
    assert far.pk not in shown("agenda=week")
    assert shown("agenda=upcoming") == {today.pk, far.pk}
    assert shown("status__exact=requested") == {today.pk, far.pk}
    assert shown("status__exact=confirmed") == set()


def test_the_time_is_shown_in_the_homes_zone(client, agent_a):
    day = next_weekday()
    book(ListingFactory(agent=agent_a), 14, day=day)
    client.force_login(agent_a)

    html = client.get(VIEWINGS).content.decode()

    assert "14:00–14:30" in html


# --- availability -----------------------------------------------------------------------------------

def form_data(response):
    """What the browser would send back for an admin change page as rendered: the main form's
    values and every inline's management form and existing rows."""
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
            data[form.add_prefix(name)] = value
    return data


def add_row(data, prefix, **fields):
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    data.update({f"{prefix}-{index}-{name}": value for name, value in fields.items()})


def change_url(availability):
    return f"{AVAILABILITY}{availability.pk}/change/"


def test_an_agent_opens_their_own_availability_from_the_list(client, agent_a):
    client.force_login(agent_a)

    response = client.get(AVAILABILITY)

    availability = AgentAvailability.objects.get(agent=agent_a)  # created with the default week
    assert response.status_code == 302
    assert response["Location"] == f"{AVAILABILITY}{availability.pk}/change/"
    page = client.get(response["Location"]).content.decode()
    assert f"/bookings/feed/{availability.feed_token}.ics" in page
    assert availability.rules.count() == 5


def test_an_agent_cannot_see_or_change_another_agents_availability(client, agent_a, agent_b):
    mine = services.availability_get(agent=agent_a)
    theirs = services.availability_get(agent=agent_b)
    client.force_login(agent_a)
    crafted = {**form_data(client.get(change_url(mine))), "instant_booking": "on"}

    assert client.get(change_url(theirs)).status_code in (302, 403, 404)
    assert client.post(change_url(theirs), crafted).status_code in (302, 403, 404)
    client.post(AVAILABILITY, {"action": "reset_feed", "_selected_action": [theirs.pk]})

    fresh = AgentAvailability.objects.get(pk=theirs.pk)
    assert not fresh.instant_booking
    assert fresh.feed_token == theirs.feed_token
    assert fresh.rules.count() == 5


def test_saving_availability_goes_through_the_services(client, agent_a):
    availability = services.availability_get(agent=agent_a)
    client.force_login(agent_a)
    data = form_data(client.get(change_url(availability)))
    for index in range(int(data["rules-INITIAL_FORMS"])):
        data[f"rules-{index}-DELETE"] = "on"
    add_row(data, "rules", weekday="5", start="10:00", end="12:00")
    add_row(data, "exceptions", date=str(next_weekday()), kind="off", start="", end="", note="Holiday")
    data.update(instant_booking="on", buffer_minutes="30")

    response = client.post(change_url(availability), data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    availability.refresh_from_db()
    assert availability.instant_booking is True
    assert availability.buffer_minutes == 30
    assert [(r.weekday, r.start, r.end) for r in availability.rules.all()] == [(5, dt.time(10), dt.time(12))]
    assert availability.exceptions.get().note == "Holiday"
    assert OutboxEvent.objects.filter(type="availability.changed").exists()


def test_a_rule_ending_before_it_starts_is_refused_and_nothing_changes(client, agent_a):
    availability = services.availability_get(agent=agent_a)
    client.force_login(agent_a)
    data = form_data(client.get(change_url(availability)))
    add_row(data, "rules", weekday="5", start="12:00", end="10:00")

    response = client.post(change_url(availability), data)

    assert response.status_code == 200  # the form again, with the error
    assert "The end must be after the start." in response.content.decode()
    assert availability.rules.count() == 5


def test_an_extra_hours_exception_needs_its_times(client, agent_a):
    availability = services.availability_get(agent=agent_a)
    client.force_login(agent_a)
    data = form_data(client.get(change_url(availability)))
    add_row(data, "exceptions", date=str(next_weekday()), kind="extra", start="", end="", note="")

    response = client.post(change_url(availability), data)

    assert response.status_code == 200
    assert "or neither for a whole day off" in response.content.decode()
    assert not availability.exceptions.exists()


def test_reset_the_feed_address(client, agent_a):
    availability = services.availability_get(agent=agent_a)
    old = availability.feed_token
    client.force_login(agent_a)

    response = client.post(AVAILABILITY, {"action": "reset_feed", "_selected_action": [availability.pk]}, follow=True)

    availability.refresh_from_db()
    assert availability.feed_token != old
    assert any("no longer works" in m for m in messages_of(response))
    assert client.get(f"/bookings/feed/{old}.ics").status_code == 404
    assert client.get(f"/bookings/feed/{availability.feed_token}.ics").status_code == 200


def test_staff_list_everyones_availability(client, agent_a, agent_b):
    services.availability_get(agent=agent_a)
    services.availability_get(agent=agent_b)
    client.force_login(StaffFactory())

    response = client.get(AVAILABILITY)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 2


# --- a listing's instant booking or review ---------------------------------------------------------

def test_an_agent_sets_instant_booking_for_their_listing_only(client, agent_a, agent_b):
    mine = ListingFactory(agent=agent_a)
    theirs = ListingFactory(agent=agent_b)
    ListingBookingOption.objects.create(listing=theirs, instant_booking=True)
    client.force_login(agent_a)

    form = client.get(f"{OPTIONS}add/").context["adminform"].form
    assert list(form.fields["listing"].queryset) == [mine]
    response = client.post(f"{OPTIONS}add/", {"listing": theirs.pk, "instant_booking": "on"})
    assert response.status_code == 200  # not a choice
    response = client.post(f"{OPTIONS}add/", {"listing": mine.pk, "instant_booking": "on"})
    assert response.status_code == 302
    assert ListingBookingOption.objects.get(listing=mine).instant_booking is True
    assert [o.listing for o in client.get(OPTIONS).context["cl"].queryset] == [mine]

    # Booking that listing is now confirmed at once.
    viewing = book(mine, 10)
    assert viewing.status == Viewing.Status.CONFIRMED


def test_an_agent_cannot_change_or_delete_another_agents_listing_option(client, agent_a, agent_b):
    theirs = ListingBookingOption.objects.create(listing=ListingFactory(agent=agent_b), instant_booking=True)
    client.force_login(agent_a)

    assert client.get(f"{OPTIONS}{theirs.pk}/change/").status_code in (302, 403, 404)
    assert client.post(f"{OPTIONS}{theirs.pk}/change/", {"instant_booking": ""}).status_code in (302, 403, 404)
    assert client.post(f"{OPTIONS}{theirs.pk}/delete/", {"post": "yes"}).status_code in (302, 403, 404)
    theirs.refresh_from_db()
    assert theirs.instant_booking is True


def test_an_agent_switches_their_listing_back_to_review_and_to_the_default(client, agent_a):
    option = ListingBookingOption.objects.create(listing=ListingFactory(agent=agent_a), instant_booking=True)
    client.force_login(agent_a)

    assert client.post(f"{OPTIONS}{option.pk}/change/", {}).status_code == 302  # the box unticked
    option.refresh_from_db()
    assert option.instant_booking is False
    assert client.post(f"{OPTIONS}{option.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not ListingBookingOption.objects.exists()


def test_an_agent_answers_one_viewing_from_its_page_with_a_reason(client, agent_a):
    viewing = book(ListingFactory(agent=agent_a), 10)
    client.force_login(agent_a)

    page = client.get(f"{VIEWINGS}{viewing.pk}/change/").content.decode()
    assert 'value="confirm"' in page and 'value="decline"' in page

    response = client.post(f"{VIEWINGS}{viewing.pk}/act/", {"move": "decline", "reason": "On holiday"}, follow=True)

    viewing.refresh_from_db()
    assert (viewing.status, viewing.cancel_reason) == ("declined", "On holiday")
    assert "The viewing is now declined." in messages_of(response)
    assert 'value="confirm"' not in response.content.decode()  # nothing left to answer


def test_answering_a_cancelled_viewing_shows_the_409_message(client, agent_a):
    viewing = book(ListingFactory(agent=agent_a), 10)
    services.booking_cancel(viewing_id=viewing.pk, by=viewing.customer)
    client.force_login(agent_a)

    response = client.post(f"{VIEWINGS}{viewing.pk}/act/", {"move": "confirm"}, follow=True)

    assert "A cancelled viewing cannot be confirmed." in messages_of(response)


def test_an_agent_cannot_answer_another_agents_viewing_from_its_page(client, agent_a, viewings):
    theirs = viewings[1]
    client.force_login(agent_a)

    response = client.post(f"{VIEWINGS}{theirs.pk}/act/", {"move": "confirm"})

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "requested"


def test_reset_the_feed_address_from_the_availability_page(client, agent_a, agent_b):
    mine, theirs = services.availability_get(agent=agent_a), services.availability_get(agent=agent_b)
    client.force_login(agent_a)
    assert f"{change_url(mine)}reset-feed/".replace("/change/", "/") in client.get(change_url(mine)).content.decode()

    response = client.post(f"{AVAILABILITY}{mine.pk}/reset-feed/", follow=True)

    assert response.redirect_chain[-1][0] == change_url(mine)
    assert AgentAvailability.objects.get(pk=mine.pk).feed_token != mine.feed_token
    assert client.post(f"{AVAILABILITY}{theirs.pk}/reset-feed/").status_code == 404
    assert AgentAvailability.objects.get(pk=theirs.pk).feed_token == theirs.feed_token
