"""Booking pages and the agents' private calendar feed."""

from django.urls import path

from bookings import feeds, views

urlpatterns = [
    path("bookings/feed/<str:token>.ics", feeds.agent_feed, name="bookings_agent_feed"),
    path("listings/<int:pk>/book/", views.listing_book, name="listing_book"),
    path("bookings/", views.viewing_list, name="bookings"),
    path("bookings/<int:pk>/cancel/", views.viewing_cancel, name="booking_cancel"),
    path("bookings/<int:pk>/confirm/", views.viewing_confirm, name="booking_confirm"),
    path("bookings/<int:pk>/decline/", views.viewing_decline, name="booking_decline"),
    path("bookings/<int:pk>/reschedule/", views.viewing_reschedule, name="booking_reschedule"),
    path("bookings/<int:pk>/calendar.ics", views.viewing_calendar, name="booking_calendar_page"),
]
