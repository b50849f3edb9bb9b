"""The API's listing representation built directly (for the caches of listing bodies that search
and recommendations serve from), and made absolute for a request's host."""

from urllib.parse import urljoin

from django.core.files.storage import FileSystemStorage
from django.db.models import FloatField, Func
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import filepath_to_uri
from rest_framework import serializers

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
    """{id: listing_body} of the published listings among `ids`, read as plain rows (three
    queries, no listing or photo instances: about half the time of loading the listings with
    their details)."""
    from accounts.models import User
    from listings import selectors
    from listings.models import ListingPhoto, PriceChange

    # Coordinates as numbers (ST_Y, ST_X): no geometry object per row.
    rows = list(selectors.published_listings().filter(pk__in=ids).annotate(
        latitude=Func("location", template="ST_Y(%(expressions)s::geometry)", output_field=FloatField()),
        longitude=Func("location", template="ST_X(%(expressions)s::geometry)", output_field=FloatField())).values(
        "id", "latitude", "longitude", *COLUMNS, "agent_id", "agent__first_name", "agent__last_name", "agent__email",
        "agent__deleted_at"))
    found = [row["id"] for row in rows]
    photos, prices = {}, {}
    url = _url_of(ListingPhoto._meta.get_field("image").storage)
    for listing_id, pk, image, large, thumbnail, caption, position in ListingPhoto.objects.filter(
            listing_id__in=found).order_by("position", "id").values_list(
            "listing_id", "id", "image", "large", "thumbnail", "caption", "position"):
        photos.setdefault(listing_id, []).append((pk, url(large or image), url(thumbnail or image), caption, position))
    for listing_id, price, changed_at in PriceChange.objects.filter(listing_id__in=found).order_by(
            "changed_at", "id").values_list("listing_id", "price", "changed_at"):
        prices.setdefault(listing_id, []).append((price, changed_at))
    names = {}  # by agent: a page's homes have few agents between them
    for row in rows:
        if row["agent_id"] not in names:
            names[row["agent_id"]] = User(first_name=row["agent__first_name"], last_name=row["agent__last_name"],
                                          email=row["agent__email"], deleted_at=row["agent__deleted_at"]).name
    formats = _Formats()
    return {row["id"]: _body(row["id"], row, (row["latitude"], row["longitude"]), photos.get(row["id"], []),
                             prices.get(row["id"], []), (row["agent_id"], names[row["agent_id"]]), formats)
            for row in rows}


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
