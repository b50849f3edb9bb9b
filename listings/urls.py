from django.urls import path

from listings import views

urlpatterns = [
    path("listings/<int:pk>/", views.listing_detail, name="listing_page"),
    path("favorites/", views.favorites, name="favorites"),
]
