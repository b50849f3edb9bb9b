from django.urls import path

from listings import views

urlpatterns = [
    path("listings/<int:pk>/", views.listing_detail, name="listing_page"),
    path("listings/<int:pk>/favorite/", views.favorite_toggle, name="listing_favorite"),
    path("favorites/", views.favorites, name="favorites"),
]
