"""The site's URLs plus `/bench/hello/`, the floor bench/load.py measures beside them: a Django
view answering a constant JSON body through the same middleware, workers and proxy."""

from django.http import JsonResponse
from django.urls import path

from realio.urls import handler404, handler500  # noqa: F401
from realio.urls import urlpatterns as site_urlpatterns


def hello(request):
    return JsonResponse({"hello": "world"})


urlpatterns = [path("bench/hello/", hello), *site_urlpatterns]
