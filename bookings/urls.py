"""Booking pages and the agents' private calendar feed."""

from django.urls import path

from bookings import feeds

urlpatterns = [
    path("bookings/feed/<str:token>.ics", feeds.agent_feed, name="bookings_agent_feed"),
]
