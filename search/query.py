"""The one search query (DESIGN.md section 4): parsed and validated from request parameters,
turned back into canonical parameters (URLs, saved searches), and the one result shape that
every backend returns."""

from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation

from django.contrib.gis.geos import Polygon
from django.utils.translation import gettext as _

from listings.models import Feature, Listing
from realio.errors import ApplicationError

SORTS = ("relevance", "newest", "price_asc", "price_desc", "distance")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_RADIUS_KM = 500
MAX_POLYGON_POINTS = 200
MAX_KEYWORDS_LENGTH = 200
FACETS = ("property_type", "listing_type", "bedrooms", "features")


def bad(param, message):
    """A 400 naming the parameter."""
    return ApplicationError(f"{param}: {message}", errors={param: [message]})


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    listing_types: tuple[str, ...] = ()
    property_types: tuple[str, ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_beds: int | None = None
    min_baths: int | None = None
    min_area: Decimal | None = None
    max_area: Decimal | None = None
    min_year: int | None = None
    max_year: int | None = None
    features: tuple[str, ...] = ()
    # location: a point with a radius, a bounding box, a polygon (any combination narrows)
    lat: float | None = None
    lng: float | None = None
    radius_km: float | None = None
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north
    polygon: tuple[tuple[float, float], ...] | None = None  # (lng, lat) ring, closed
    sort: str = ""
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    # --- parsing ------------------------------------------------------------------------------

    @classmethod
    def from_params(cls, params):
        """Build and validate a query from request parameters (a QueryDict or a dict).

        Raises ApplicationError (400) naming the first bad parameter.
        """
        get = _getter(params)
        values = {
            "q": "".join(ch for ch in get("q") if ch.isprintable()).strip(),
            "listing_types": _slugs(get("listing_type"), "listing_type", Listing.ListingType.values),
            "property_types": _slugs(get("property_type"), "property_type", Listing.PropertyType.values),
            "features": _slugs(get("features"), "features", Feature.values),
            "min_price": _decimal(get("min_price"), "min_price"),
            "max_price": _decimal(get("max_price"), "max_price"),
            "min_beds": _integer(get("min_beds"), "min_beds", 0, 100),
            "min_baths": _integer(get("min_baths"), "min_baths", 0, 100),
            "min_area": _decimal(get("min_area"), "min_area"),
            "max_area": _decimal(get("max_area"), "max_area"),
            "min_year": _integer(get("min_year"), "min_year", 1000, 2200),
            "max_year": _integer(get("max_year"), "max_year", 1000, 2200),
            "lat": _float(get("lat"), "lat", -90, 90),
            "lng": _float(get("lng"), "lng", -180, 180),
            "radius_km": _float(get("radius_km"), "radius_km", 0, MAX_RADIUS_KM, open_low=True),
            "bbox": _bbox(get("bbox")),
            "polygon": _polygon(get("polygon")),
            "sort": get("sort").strip(),
            "page": _integer(get("page"), "page", 1, 10_000) or 1,
            "page_size": _integer(get("page_size"), "page_size", 1, MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE,
        }
        if len(values["q"]) > MAX_KEYWORDS_LENGTH:
            raise bad("q", _("At most %(n)d characters.") % {"n": MAX_KEYWORDS_LENGTH})
        for low, high in (("min_price", "max_price"), ("min_area", "max_area"), ("min_year", "max_year")):
            if values[low] is not None and values[high] is not None and values[low] > values[high]:
                raise bad(low, _("Must not be more than %(other)s.") % {"other": high})
        if (values["lat"] is None) != (values["lng"] is None):
            missing = "lng" if values["lng"] is None else "lat"
            raise bad(missing, _("Give both lat and lng."))
        if values["lat"] is not None and values["radius_km"] is None:
            raise bad("radius_km", _("A point needs a radius (radius_km)."))
        if values["radius_km"] is not None and values["lat"] is None:
            raise bad("lat", _("A radius needs a point (lat and lng)."))
        sort = values["sort"]
        if sort and sort not in SORTS:
            raise bad("sort", _("Choose one of: %(v)s.") % {"v": ", ".join(SORTS)})
        if sort == "distance" and values["lat"] is None:
            raise bad("sort", _("Sorting by distance needs a point (lat, lng, radius_km)."))
        return cls(**values)

    # --- derived ------------------------------------------------------------------------------

    @property
    def has_point(self):
        return self.lat is not None and self.lng is not None

    @property
    def effective_sort(self):
        """The sort in force: relevance by default with keywords, newest without."""
        if self.sort == "relevance" and not self.q:
            return "newest"
        return self.sort or ("relevance" if self.q else "newest")

    @property
    def offset(self):
        return (self.page - 1) * self.page_size

    def polygon_geometry(self):
        return Polygon(self.polygon, srid=4326) if self.polygon else None

    def bbox_geometry(self):
        return Polygon.from_bbox(self.bbox) if self.bbox else None

    def without_pagination(self):
        return replace(self, page=1, page_size=DEFAULT_PAGE_SIZE)

    def to_params(self):
        """Canonical request parameters (only what is set), for URLs and saved searches."""
        params = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in (None, "", ()) or (f.name == "page" and value == 1) or (
                    f.name == "page_size" and value == DEFAULT_PAGE_SIZE):
                continue
            name = {"listing_types": "listing_type", "property_types": "property_type"}.get(f.name, f.name)
            if f.name == "polygon":
                params[name] = ";".join(f"{_coordinate(lng)},{_coordinate(lat)}" for lng, lat in value)
            elif f.name == "bbox":
                params[name] = ",".join(_coordinate(v) for v in value)
            elif isinstance(value, tuple):
                params[name] = ",".join(value)
            else:
                params[name] = str(value)
        return params


@dataclass
class SearchResult:
    """What a backend returns: ids in order for the page, the total, facet counts (each facet
    counted with every filter but its own) and, when a point is given, distances in km."""

    ids: list[int]
    total: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    distances_km: dict[int, float] = field(default_factory=dict)


def _coordinate(value):
    """The shortest text that reads back as the same float (no precision lost, no noise)."""
    return repr(float(value)).removesuffix(".0")


# --- parameter parsing ----------------------------------------------------------------------------

def _getter(params):
    def get(name):
        value = params.get(name, "")
        if isinstance(value, (list, tuple)):
            value = value[-1] if value else ""
        return "" if value is None else str(value)

    return get


def _slugs(raw, param, allowed):
    if not raw.strip():
        return ()
    values = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise bad(param, _("Unknown value %(v)s; choose from: %(all)s.") % {"v": unknown[0], "all": ", ".join(allowed)})
    return tuple(sorted(values))


def _decimal(raw, param):
    if not raw.strip():
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise bad(param, _("Must be a number.")) from None
    if not value.is_finite() or value < 0 or value > Decimal("1e12"):
        raise bad(param, _("Must be a number between 0 and 10^12."))
    return value


def _integer(raw, param, low, high):
    if not raw.strip():
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise bad(param, _("Must be a whole number.")) from None
    if not low <= value <= high:
        raise bad(param, _("Must be between %(low)d and %(high)d.") % {"low": low, "high": high})
    return value


def _float(raw, param, low, high, open_low=False):
    if not raw.strip():
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        raise bad(param, _("Must be a number.")) from None
    if value != value or not (low < value if open_low else low <= value) or value > high:  # NaN fails too
        raise bad(param, _("Must be between %(low)s and %(high)s.") % {"low": low, "high": high})
    return value


def _numbers(raw, param, count=None):
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError:
        raise bad(param, _("Must be numbers separated by commas.")) from None
    if count is not None and len(values) != count:
        raise bad(param, _("Must be %(n)d numbers.") % {"n": count})
    if any(v != v for v in values):
        raise bad(param, _("Must be numbers."))
    return values


def _bbox(raw):
    if not raw.strip():
        return None
    west, south, east, north = _numbers(raw, "bbox", 4)
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        raise bad("bbox", _("Give west,south,east,north in degrees (longitudes ±180, latitudes ±90)."))
    if west >= east or south >= north:
        raise bad("bbox", _("West must be less than east and south less than north."))
    return (west, south, east, north)


def _polygon(raw):
    if not raw.strip():
        return None
    points = []
    for pair in raw.strip().strip(";").split(";"):
        lng, lat = _numbers(pair, "polygon", 2)
        if not (-180 <= lng <= 180 and -90 <= lat <= 90):
            raise bad("polygon", _("Each point is lng,lat in degrees."))
        points.append((lng, lat))
    if len(points) > MAX_POLYGON_POINTS:
        raise bad("polygon", _("At most %(n)d points.") % {"n": MAX_POLYGON_POINTS})
    if points and points[0] != points[-1]:
        points.append(points[0])
    if len(set(points)) < 3:
        raise bad("polygon", _("A polygon needs at least three distinct points."))
    if not Polygon(points, srid=4326).valid:
        raise bad("polygon", _("The polygon's edges cross: draw a simple ring."))
    return tuple(points)
