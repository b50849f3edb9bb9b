from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SearchConfig(AppConfig):
    """Search: one query model, two backends (PostgreSQL, Elasticsearch), saved searches."""

    name = "search"
    verbose_name = _("Search")
