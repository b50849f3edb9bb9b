"""The API's listing representation built directly (for the caches of listing bodies that search
and recommendations serve from), and made absolute for a request's host."""

import functools
from datetime import datetime
from decimal import Decimal
from urllib.parse import urljoin

from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import filepath_to_uri
from rest_framework import serializers

from listings.models import Listing, ListingPhoto, PriceChange
from listings.selectors import PUBLIC_STATUSES

_money = None
_area = None


class _Formats:
    """DRF's DateTimeField representation (current time zone, ISO 8601, "Z" for UTC) with the
    time zone looked up once for all the bodies of a call (a page's carry about a hundred)."""

    def __init__(self):
        self.zone = timezone.get_current_timezone()

    def moment(self, value):
        if value is None:
            return None
        value = value.astimezone(self.zone).isoformat()
        return value[:-6] + "Z" if value.endswith("+00:00") else value


def _url_of(storage):
    """`storage.url`, and for files on this machine the same URL without urljoin's parsing
    (a page's photos need a hundred or so): its base URL and the name's URI, when the name is a
    plain relative path."""
    if not isinstance(storage, FileSystemStorage) or not storage.base_url.endswith("/"):
        return storage.url
    base = storage.base_url

    def url(name):
        path = filepath_to_uri(name).lstrip("/")
        if ":" in path or ".." in path or "//" in path:  # urljoin would read these differently
            return urljoin(base, path)
        return base + path

    return url


# The listing's own columns in the body, by name.
COLUMNS = ("title", "description", "listing_type", "rent_period", "property_type", "status", "price", "currency",
           "bedrooms", "bathrooms", "area_sqm", "year_built", "street", "city", "region", "postal_code", "country",
           "time_zone", "features", "close_price", "closed_at", "published_at", "view_count", "created_at",
           "updated_at")


def listing_body(listing):
    """The ListingSerializer representation of `listing` (with details, no request), built
    directly: the same fields and the same conversions (DRF's own field objects), without the
    serializer machinery, which costs about 1.5 ms per listing. A test keeps the two equal."""
    row = {name: getattr(listing, name) for name in COLUMNS}
    photos = [(photo.pk, photo.large_url, photo.thumbnail_url, photo.caption, photo.position)
              for photo in listing.photos.all()]
    prices = [(change.price, change.changed_at) for change in listing.price_changes.all()]
    return _body(listing.pk, row, (listing.location.y, listing.location.x), photos, prices,
                 (listing.agent.pk, listing.agent.name), _Formats())


def published_bodies(ids):
    """{id: listing_body} of the published listings among `ids`, read by one statement as plain
    rows (photos and price history aggregated per listing as JSON): no model instances and no ORM
    query to build, about a third of the time of loading the listings with their details."""
    from accounts.models import User

    with connection.cursor() as cursor:
        cursor.execute(_published_sql(), [list(ids), list(PUBLIC_STATUSES)])
        rows = cursor.fetchall()
    url = _url_of(ListingPhoto._meta.get_field("image").storage)
    formats = _Formats()
    names = {}  # by agent: a page's homes have few agents between them
    bodies = {}
    for pk, latitude, longitude, *values, agent_id, first_name, last_name, email, deleted_at, photos, prices in rows:
        row = dict(zip(COLUMNS, values, strict=True))
        if agent_id not in names:
            names[agent_id] = User(first_name=first_name, last_name=last_name, email=email, deleted_at=deleted_at).name
        photos = [(photo_id, url(large or image), url(thumbnail or image), caption, position)
                  for photo_id, image, large, thumbnail, caption, position in photos or ()]
        prices = [(Decimal(price), datetime.fromisoformat(changed_at)) for price, changed_at in prices or ()]
        bodies[pk] = _body(pk, row, (latitude, longitude), photos, prices, (agent_id, names[agent_id]), formats)
    return bodies


@functools.cache
def _published_sql():
    from accounts.models import User

    quote = connection.ops.quote_name
    columns = ", ".join(f"l.{quote(Listing._meta.get_field(name).column)}" for name in COLUMNS)
    # Only the models' own (quoted) table and column names are formatted in; values are parameters.
    return f"""
        SELECT l.id, ST_Y(l.location::geometry), ST_X(l.location::geometry), {columns},
               u.id, u.first_name, u.last_name, u.email, u.deleted_at,
               (SELECT json_agg(json_build_array(p.id, p.image, p.large, p.thumbnail, p.caption, p.position)
                                ORDER BY p.position, p.id)
                  FROM {quote(ListingPhoto._meta.db_table)} p WHERE p.listing_id = l.id),
               (SELECT json_agg(json_build_array(c.price::text, c.changed_at) ORDER BY c.changed_at, c.id)
                  FROM {quote(PriceChange._meta.db_table)} c WHERE c.listing_id = l.id)
          FROM {quote(Listing._meta.db_table)} l JOIN {quote(User._meta.db_table)} u ON u.id = l.agent_id
         WHERE l.id = ANY(%s) AND l.status = ANY(%s)
    """  # noqa: S608


def _body(pk, row, coordinates, photos, prices, agent, formats):
    global _money, _area
    if _money is None:
        _money = serializers.DecimalField(max_digits=14, decimal_places=2)
        _area = serializers.DecimalField(max_digits=10, decimal_places=2)
    moment = formats.moment

    def money(value):
        return None if value is None else _money.to_representation(value)

    return {
        "id": pk, "url": reverse("listing_page", args=[pk]), "title": row["title"],
        "description": row["description"], "listing_type": row["listing_type"],
        "rent_period": row["rent_period"], "property_type": row["property_type"], "status": row["status"],
        "price": money(row["price"]), "currency": row["currency"], "bedrooms": row["bedrooms"],
        "bathrooms": row["bathrooms"],
        "area_sqm": None if row["area_sqm"] is None else _area.to_representation(row["area_sqm"]),
        "year_built": row["year_built"], "street": row["street"], "city": row["city"], "region": row["region"],
        "postal_code": row["postal_code"], "country": row["country"],
        "latitude": float(coordinates[0]), "longitude": float(coordinates[1]), "time_zone": row["time_zone"],
        "features": list(row["features"]),
        "photos": [{"id": photo_id, "url": large, "thumbnail_url": thumbnail, "caption": caption, "position": position}
                   for photo_id, large, thumbnail, caption, position in photos],
        "agent": {"id": agent[0], "name": agent[1]},
        "price_history": [{"price": money(price), "changed_at": moment(changed_at)} for price, changed_at in prices],
        "close_price": money(row["close_price"]), "closed_at": moment(row["closed_at"]),
        "published_at": moment(row["published_at"]), "view_count": row["view_count"],
        "created_at": moment(row["created_at"]), "updated_at": moment(row["updated_at"]),
    }


def absolute(body, request):
    """A cached listing body with its URLs made absolute for this request's host."""
    body = dict(body)
    body["url"] = request.build_absolute_uri(body["url"])
    body["photos"] = [{**photo, "url": request.build_absolute_uri(photo["url"]),
                       "thumbnail_url": request.build_absolute_uri(photo["thumbnail_url"])}
                      for photo in body["photos"]]
    return body
