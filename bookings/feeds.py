"""An agent's private iCalendar feed: a secret address to subscribe to from a calendar app."""

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET

from bookings import ical, selectors
from bookings.models import AgentAvailability


@require_GET
def agent_feed(request, token):
    availability = AgentAvailability.objects.select_related("agent").filter(feed_token=token).first()
    if availability is None or not availability.agent.is_active:
        raise Http404
    agent = availability.agent
    response = HttpResponse(ical.agent_feed_ics(agent, selectors.agent_feed_viewings(agent)),
                            content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response
