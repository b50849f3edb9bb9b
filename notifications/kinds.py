"""The registry of notification kinds: what each is called, its default channels and how it is
delivered. Adding a kind is a `register(Kind(...))` here, a handler in handlers.py calling
`services.notify(...)`, and its templates under templates/notifications/kinds/<name>/:

- `title.txt`, `body.txt` (required): rendered once, in the recipient's language, with the
  context the handler passes (plus `user`), stored on the notification;
- `email.txt`, `email.html` (optional; the generic `notifications/email/default.*` otherwise);
- `sms.txt` (optional; the title and link otherwise).
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils.translation import gettext_lazy as _

from notifications.models import Channel

ALL_CHANNELS = tuple(Channel.values)
OPTIONAL_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH)


class Category:
    ACCOUNT = "account"
    SEARCH = "search"
    FAVORITES = "favorites"
    BOOKING = "booking"
    CHAT = "chat"
    MARKETING = "marketing"


# Defaults by category (DESIGN/issue #7): everything in the app; bookings by email too; chat by
# push and email only while the person is offline; marketing off.
CATEGORY_DEFAULTS = {
    Category.ACCOUNT: {Channel.EMAIL},
    Category.SEARCH: {Channel.EMAIL, Channel.PUSH},
    Category.FAVORITES: {Channel.EMAIL, Channel.PUSH},
    Category.BOOKING: {Channel.EMAIL, Channel.PUSH},
    Category.CHAT: {Channel.EMAIL, Channel.PUSH},
    Category.MARKETING: set(),
}


@dataclass(frozen=True)
class Kind:
    """How one kind of notification is delivered.

    - `defaults`: the optional channels (email, sms, push) on unless the person says otherwise;
      in-app is always on (it is the notification centre itself).
    - `offline_only`: channels used only while the person has no open page or app (chat).
    - `urgent`: delivered during quiet hours too (a viewing reminder).
    - `digest`: its emails wait NOTIFICATIONS_DIGEST_DELAY_SECONDS and go out together with the
      person's other digest emails, as one.
    - `collapse_window`: a burst (same collapse key, still unread, within the window) updates
      one notification instead of creating more (chat).
    - `delay`: its email, SMS and push wait this long (so a burst collapses into one).
    - `attachments(notification) -> [(filename, content, mimetype)]` for its email (.ics).
    - `unsubscribe(user, data)`: what the one-click unsubscribe link of its email does; by
      default it turns the kind's email off.
    """

    name: str
    label: object
    category: str
    defaults: frozenset = field(default=None)
    offline_only: frozenset = frozenset()
    urgent: bool = False
    digest: bool = False
    collapse_window: timedelta | None = None
    delay: timedelta | None = None
    attachments: object = None
    unsubscribe: object = None

    def __post_init__(self):
        if self.defaults is None:
            object.__setattr__(self, "defaults", frozenset(CATEGORY_DEFAULTS[self.category]))

    def template(self, name):
        return f"notifications/kinds/{self.name}/{name}"


KINDS: dict[str, Kind] = {}


def register(kind):
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise ValueError(f"notification kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


def get(name):
    return KINDS[name]


def _stop_saved_search(user, data):
    from search import services as search_services
    from search.models import SavedSearch

    saved = SavedSearch.objects.filter(pk=data.get("saved_search_id"), user=user).first()
    if saved is not None:
        search_services.saved_search_unsubscribe(token=search_services.saved_search_unsubscribe_token(saved))


WELCOME = register(Kind("account.welcome", _("Welcome to the site"), Category.ACCOUNT))
SAVED_SEARCH_MATCH = register(Kind("saved_search.match", _("A new home matches a saved search"), Category.SEARCH,
                                   unsubscribe=_stop_saved_search))
SAVED_SEARCH_DIGEST = register(Kind("saved_search.digest", _("Daily or weekly saved-search digest"),
                                    Category.SEARCH, defaults=frozenset({Channel.EMAIL}), digest=True))
FAVORITE_PRICE_DROP = register(Kind("favorite.price_drop", _("The price of a favorite drops"), Category.FAVORITES))
FAVORITE_STATUS = register(Kind("favorite.status_changed", _("A favorite is sold, rented, under offer or back"),
                                Category.FAVORITES))


def _viewing_ics(notification):
    """The viewing as it stands when the email goes out (a moved or cancelled one included)."""
    from bookings import ical
    from bookings.models import Viewing

    viewing = (Viewing.objects.select_related("listing", "agent", "customer")
               .filter(pk=notification.data.get("booking_id")).first())
    if viewing is None:
        return []
    return [(f"viewing-{viewing.pk}.ics", ical.viewing_ics(viewing).decode(), "text/calendar; charset=utf-8")]


# Bookings (bookings/): every change reaches the other party; reminders reach both, even in
# quiet hours, with the viewing's .ics.
BOOKING_REQUESTED = register(Kind("booking.requested", _("A viewing is requested or booked (agents)"),
                                  Category.BOOKING, attachments=_viewing_ics))
BOOKING_CONFIRMED = register(Kind("booking.confirmed", _("A viewing is confirmed"), Category.BOOKING,
                                  attachments=_viewing_ics))
BOOKING_DECLINED = register(Kind("booking.declined", _("A viewing request is declined"), Category.BOOKING))
BOOKING_CANCELLED = register(Kind("booking.cancelled", _("A viewing is cancelled"), Category.BOOKING,
                                  attachments=_viewing_ics))
BOOKING_RESCHEDULED = register(Kind("booking.rescheduled", _("A viewing is moved to another time"),
                                    Category.BOOKING, attachments=_viewing_ics))
BOOKING_EXPIRED = register(Kind("booking.expired", _("A viewing request expires unanswered"), Category.BOOKING))
BOOKING_REMINDER = register(Kind("booking.reminder", _("A viewing is coming up"), Category.BOOKING, urgent=True,
                                 attachments=_viewing_ics))
