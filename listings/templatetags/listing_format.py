"""Template filters that show listing figures the same way on every page: money, asking prices."""

from decimal import Decimal, InvalidOperation

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def money(amount, currency=""):
    """`350000.00` → "350,000 EUR" (grouped for the active language; cents only when there are some)."""
    if amount is None or amount == "":
        return ""
    try:
        amount = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        return ""
    amount = amount.quantize(Decimal("1") if amount == amount.to_integral_value() else Decimal("0.01"))
    text = intcomma(amount)
    return f"{text} {currency}" if currency else text


@register.filter
def asking_price(listing):
    """The price with its currency, and the rent period for a rental: "1,200 EUR per month"."""
    text = money(listing.price, listing.currency)
    if listing.listing_type == listing.ListingType.RENT and listing.rent_period:
        return _("%(price)s %(period)s") % {"price": text, "period": listing.get_rent_period_display()}
    return text
