from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ListingsConfig(AppConfig):
    """Listings: properties, photos, price history, favorites, valuation estimate."""

    name = "listings"
    verbose_name = _("Listings")

    def ready(self):
        from realio.errors import register_constraint_message

        for name, message in {
            "listing_price_not_negative": _("The price cannot be negative."),
            "listing_area_positive": _("The area must be more than zero."),
            "listing_rent_period_only_for_rent": _("Only a rental has a rent period."),
            "listing_sold_only_for_sale": _("Only a home for sale can be sold."),
            "listing_rented_only_for_rent": _("Only a rental can be rented."),
            "favorite_once_per_user": _("This home is already in your favorites."),
        }.items():
            register_constraint_message(name, message)
