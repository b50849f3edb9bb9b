from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ListingsConfig(AppConfig):
    """Listings: properties, photos, price history, favorites, valuation estimate."""

    name = "listings"
    verbose_name = _("Listings")
