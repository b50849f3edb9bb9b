from django.urls import path

from recommendations import views

urlpatterns = [
    path("listings/<int:pk>/estimate-block/", views.estimate_block, name="listing_estimate_block"),
    path("listings/<int:pk>/similar-block/", views.similar_block, name="listing_similar_block"),
]
