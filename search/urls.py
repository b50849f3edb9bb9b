"""Search pages: /search/ and the management of saved searches."""

from django.urls import path

from search import views

urlpatterns = [
    path("search/", views.search_page, name="search"),
    path("saved-searches/", views.saved_searches, name="saved_searches"),
    path("saved-searches/<int:pk>/", views.saved_search_update, name="saved_search_update"),
    path("saved-searches/<int:pk>/delete/", views.saved_search_delete, name="saved_search_delete"),
    path("saved-searches/unsubscribe/<str:token>/", views.saved_search_unsubscribe,
         name="saved_search_unsubscribe"),
]
