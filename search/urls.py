"""Search pages (filled in by the search page work)."""

urlpatterns = []
