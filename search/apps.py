from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SearchConfig(AppConfig):
    """Search: one query model, two backends (PostgreSQL, Elasticsearch), saved searches."""

    name = "search"
    verbose_name = _("Search")

    def ready(self):
        from accounts.services import register_eraser, register_exporter
        from search import selectors, services

        register_exporter("saved_searches", selectors.saved_searches_export)
        register_eraser(services.saved_searches_erase)
