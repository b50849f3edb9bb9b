"""Chat pages: the inbox and a conversation."""

from django.urls import path

from chat import views

urlpatterns = [
    path("messages/", views.inbox, name="messages_inbox"),
    path("messages/<int:pk>/", views.conversation_page, name="conversation_page"),
]
