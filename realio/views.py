"""Site-wide pages: the home page and the error pages (JSON under /api/, HTML elsewhere)."""

from django.shortcuts import render
from django.views import defaults

from listings import selectors as listing_selectors
from realio import api


def home(request):
    return render(request, "home.html", {"newest": list(listing_selectors.newest_listings())})


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return api.handler404(request, exception)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return api.handler500(request)
    return defaults.server_error(request)
