"""Listings as RESO Data Dictionary records (the field names MLS feeds use), both ways.

`record_to_listing` maps a record (CSV row or JSON object) to listing fields, `listing_to_record`
maps back, and `import_records` applies records through the listing services, one savepoint
per record, so rules, price history and events apply and a bad record changes nothing.
Records are matched by ListingKey (stored as `external_key`); a listing that came from no
feed is exported as `realio-<id>` and recognised again by that key.
"""

import csv
import datetime
import json
import re
import zoneinfo
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import DatabaseError, transaction
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import User
from listings import services
from listings.models import Feature, Listing
from realio.errors import ApplicationError

Status = Listing.Status
Type = Listing.PropertyType

# The columns written by export, in order; import reads the same names (and a few aliases).
FIELDS = (
    "ListingKey", "ListingTitle", "StandardStatus", "PropertyType", "PropertySubType", "ListPrice",
    "LeaseAmountFrequency", "ClosePrice", "CloseDate", "ListingContractDate", "BedroomsTotal",
    "BathroomsTotalInteger", "LivingArea", "LivingAreaUnits", "LotSizeArea", "LotSizeUnits", "YearBuilt",
    "UnparsedAddress", "City", "StateOrProvince", "PostalCode", "Country", "Latitude", "Longitude", "PublicRemarks",
    "ListAgentEmail", "GarageYN", "PoolPrivateYN", "FireplaceYN", "CoolingYN", "Furnished", "PetsAllowed",
    "Realio_Features",
)
# Realio_Features is a local field (RESO prefixes local fields with the organisation): the
# feature slugs that have no Data Dictionary field of their own, so that export → import
# gives the same listing back.
REQUIRED = ("ListingKey", "ListPrice", "StandardStatus", "PropertyType", "City", "Country", "Latitude", "Longitude")
OWN_KEY = re.compile(r"^realio-(\d+)$")

STATUS_FROM_RESO = {
    "active": Status.ACTIVE,
    "active under contract": Status.PENDING,
    "pending": Status.PENDING,
    "closed": "closed",  # sold or rented, by the listing type
    "withdrawn": Status.WITHDRAWN,
    "canceled": Status.WITHDRAWN,
    "cancelled": Status.WITHDRAWN,
    "expired": Status.WITHDRAWN,
    "hold": Status.WITHDRAWN,
    "coming soon": Status.DRAFT,
    "incomplete": Status.DRAFT,
}
STATUS_TO_RESO = {Status.ACTIVE: "Active", Status.PENDING: "Pending", Status.SOLD: "Closed",
                  Status.RENTED: "Closed", Status.WITHDRAWN: "Withdrawn", Status.DRAFT: "Coming Soon"}

RESIDENTIAL = (Type.HOUSE, Type.APARTMENT, Type.CONDO, Type.TOWNHOUSE)
# PropertyType → (listing type, property type); residential ones look at PropertySubType.
TYPE_FROM_RESO = {
    "residential": ("sale", None),
    "residential income": ("sale", None),
    "manufactured in park": ("sale", Type.HOUSE),
    "residential lease": ("rent", None),
    "land": ("sale", Type.LAND),
    "farm": ("sale", Type.LAND),
    "commercial sale": ("sale", Type.COMMERCIAL),
    "business opportunity": ("sale", Type.COMMERCIAL),
    "commercial lease": ("rent", Type.COMMERCIAL),
}
SUBTYPE_FROM_RESO = {"apartment": Type.APARTMENT, "stock cooperative": Type.APARTMENT,
                     "condominium": Type.CONDO, "townhouse": Type.TOWNHOUSE}
SUBTYPE_TO_RESO = {Type.HOUSE: "Single Family Residence", Type.APARTMENT: "Apartment",
                   Type.CONDO: "Condominium", Type.TOWNHOUSE: "Townhouse"}
PERIOD_FROM_RESO = {"monthly": Listing.RentPeriod.MONTH, "weekly": Listing.RentPeriod.WEEK}
PERIOD_TO_RESO = {Listing.RentPeriod.MONTH: "Monthly", Listing.RentPeriod.WEEK: "Weekly"}
AREA_UNITS = {"square meters": Decimal(1), "square metres": Decimal(1), "square feet": Decimal("0.09290304"),
              "acres": Decimal("4046.8564224")}
FLAG_FEATURES = {"GarageYN": "garage", "PoolPrivateYN": "pool", "FireplaceYN": "fireplace",
                 "CoolingYN": "air-conditioning"}
# How the services' field names read in a report about RESO records.
RESO_NAMES = {"price": "ListPrice", "title": "ListingTitle", "description": "PublicRemarks",
              "bedrooms": "BedroomsTotal", "bathrooms": "BathroomsTotalInteger", "area_sqm": "LivingArea",
              "year_built": "YearBuilt", "street": "UnparsedAddress", "city": "City", "region": "StateOrProvince",
              "postal_code": "PostalCode", "country": "Country", "latitude": "Latitude", "longitude": "Longitude",
              "close_price": "ClosePrice", "features": "Realio_Features", "status": "StandardStatus"}


class RecordError(Exception):
    """A record that cannot become a listing; the message says why, naming the RESO field."""


class UnreadableFile(Exception):
    """The file cannot be read as RESO records at all."""


# --- reading values ---------------------------------------------------------------------------

def _present(record, name):
    return name in record


def _text(record, name):
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, list):  # a multi-valued field of the RESO Web API, e.g. PetsAllowed
        return ", ".join(str(item).strip() for item in value)
    return str(value).strip()


def _required(record, name):
    value = _text(record, name)
    if not value:
        raise RecordError(f"{name} is required.")
    return value


def _decimal(record, name):
    value = _text(record, name)
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise RecordError(f"{name}: not a number ({value!r}).") from None
    if not number.is_finite():
        raise RecordError(f"{name}: not a number ({value!r}).")
    return number


def _integer(record, name):
    number = _decimal(record, name)
    if number is None:
        return None
    if number != number.to_integral_value() or number < 0:
        raise RecordError(f"{name}: a whole number of at least 0, not {_text(record, name)!r}.")
    return int(number)


def _coordinate(record, name, limit):
    _required(record, name)
    number = _decimal(record, name)
    if not -limit <= number <= limit:
        raise RecordError(f"{name} must be between -{limit} and {limit}, not {_text(record, name)}.")
    return float(number)


def _flag(record, name):
    value = record.get(name)
    if isinstance(value, bool):
        return value
    text = _text(record, name).lower()
    if text in ("", "false", "no", "n", "0"):
        return False
    if text in ("true", "yes", "y", "1"):
        return True
    raise RecordError(f"{name}: true or false, not {text!r}.")


def _date(record, name):
    value = _text(record, name)
    if not value:
        return None
    try:
        moment = parse_datetime(value)
        day = moment.date() if moment else parse_date(value)
    except ValueError:
        day = None
    if day is None:
        raise RecordError(f"{name}: a date as YYYY-MM-DD, not {value!r}.")
    return day


def _local_noon(day, time_zone):
    """A date of the feed as a moment: noon where the home is, so the date reads the same there."""
    return datetime.datetime.combine(day, datetime.time(12), tzinfo=zoneinfo.ZoneInfo(time_zone))


def _local_date(moment, time_zone):
    return moment.astimezone(zoneinfo.ZoneInfo(time_zone)).date() if moment else None


# --- record → listing -------------------------------------------------------------------------

@dataclass
class Incoming:
    """A record read as listing data. `fields` holds only what the record speaks about."""

    key: str
    status: str
    agent_email: str
    latitude: float
    longitude: float
    fields: dict
    close_price: Decimal | None = None
    close_date: datetime.date | None = None
    contract_date: datetime.date | None = None
    title_given: bool = False


def _types(record):
    reso_type = _required(record, "PropertyType")
    mapped = TYPE_FROM_RESO.get(reso_type.lower())
    if mapped is None:
        raise RecordError(f"PropertyType: {reso_type!r} is not one Realio lists.")
    listing_type, property_type = mapped
    if property_type is None:
        subtype = _text(record, "PropertySubType").lower()
        property_type = SUBTYPE_FROM_RESO.get(subtype, Type.HOUSE)
    frequency = _text(record, "LeaseAmountFrequency")
    if property_type == Type.LAND and frequency:
        listing_type = "rent"  # land has no lease type of its own: a lease frequency says it is let
    rent_period = None
    if listing_type == "rent":
        rent_period = PERIOD_FROM_RESO.get(frequency.lower() or "monthly")
        if rent_period is None:
            raise RecordError(f"LeaseAmountFrequency: Monthly or Weekly, not {frequency!r}.")
    return listing_type, property_type, rent_period


def _area(record, property_type):
    for value_name, units_name in (("LotSizeArea", "LotSizeUnits"), ("LivingArea", "LivingAreaUnits")):
        if property_type != Type.LAND and value_name == "LotSizeArea":
            continue
        value = _decimal(record, value_name)
        if value is None:
            continue
        units = _text(record, units_name).lower() or "square meters"
        if units not in AREA_UNITS:
            raise RecordError(f"{units_name}: Square Meters, Square Feet or Acres, not {units!r}.")
        return (value * AREA_UNITS[units]).quantize(Decimal("0.01"))
    return None


def _features(record):
    """The features a record states, or None when it says nothing about them."""
    names = [*FLAG_FEATURES, "Furnished", "PetsAllowed", "Realio_Features"]
    if not any(_present(record, name) for name in names):
        return None
    features = set()
    raw = _text(record, "Realio_Features")
    if raw:
        slugs = {slug.strip() for slug in re.split(r"[,;]", raw) if slug.strip()}
        unknown = slugs - set(Feature.values)
        if unknown:
            raise RecordError(f"Realio_Features: unknown features {', '.join(sorted(unknown))}.")
        features |= slugs
    features |= {feature for name, feature in FLAG_FEATURES.items() if _flag(record, name)}
    if _text(record, "Furnished").lower() in ("furnished", "partially"):
        features.add("furnished")
    pets = _text(record, "PetsAllowed").lower()
    if pets and not pets.startswith(("no", "false")):
        features.add("pets-allowed")
    return sorted(features)


def built_title(*, listing_type, property_type, bedrooms, city):
    """A title for a record without one (RESO has no title field)."""
    noun = "commercial premises" if property_type == Type.COMMERCIAL else str(Type(property_type).label).lower()
    if property_type in RESIDENTIAL and bedrooms:
        noun = f"{bedrooms}-bedroom {noun}"
    verb = "for rent" if listing_type == "rent" else "for sale"
    return f"{noun[0].upper()}{noun[1:]} {verb} in {city}"[:200]


def record_to_listing(record):
    """Read one RESO record (a dict); RecordError names the first field that is wrong."""
    if not isinstance(record, dict):
        raise RecordError("not a record (an object with RESO fields).")
    key = _required(record, "ListingKey")
    if len(key) > 64:
        raise RecordError("ListingKey: at most 64 characters.")
    _required(record, "ListPrice")
    price = _decimal(record, "ListPrice")
    if price < 0:
        raise RecordError("ListPrice must not be negative.")
    listing_type, property_type, rent_period = _types(record)
    reso_status = _required(record, "StandardStatus")
    status = STATUS_FROM_RESO.get(reso_status.lower())
    if status is None:
        raise RecordError(f"StandardStatus: {reso_status!r} is not a status Realio can import.")
    if status == "closed":
        status = Status.RENTED if listing_type == "rent" else Status.SOLD
    country = _required(record, "Country")
    if not re.fullmatch(r"[A-Za-z]{2}", country):
        raise RecordError(f"Country: the two-letter ISO code, e.g. FR, not {country!r}.")
    country = country.upper()
    fields = {
        "listing_type": listing_type, "rent_period": rent_period, "property_type": property_type,
        "price": price, "city": _required(record, "City"), "country": country,
    }
    optional = {
        "bedrooms": ("BedroomsTotal", lambda: _integer(record, "BedroomsTotal") or 0),
        "bathrooms": ("BathroomsTotalInteger", lambda: _integer(record, "BathroomsTotalInteger") or 0),
        "year_built": ("YearBuilt", lambda: _integer(record, "YearBuilt")),
        "street": ("UnparsedAddress", lambda: _text(record, "UnparsedAddress")),
        "region": ("StateOrProvince", lambda: _text(record, "StateOrProvince")),
        "postal_code": ("PostalCode", lambda: _text(record, "PostalCode")),
        "description": ("PublicRemarks", lambda: _text(record, "PublicRemarks")),
    }
    for name, (reso_name, read) in optional.items():
        if _present(record, reso_name):
            fields[name] = read()
    year = fields.get("year_built")
    if year is not None and not 1500 <= year <= 2100:
        raise RecordError(f"YearBuilt: between 1500 and 2100, not {year}.")
    if any(_present(record, name) for name in ("LivingArea", "LotSizeArea")):
        fields["area_sqm"] = _area(record, property_type)
    features = _features(record)
    if features is not None:
        fields["features"] = features
    title = _text(record, "ListingTitle") or _text(record, "Title")
    if title:
        fields["title"] = title
    return Incoming(
        key=key, status=status, agent_email=_text(record, "ListAgentEmail").lower(),
        latitude=_coordinate(record, "Latitude", 90), longitude=_coordinate(record, "Longitude", 180),
        fields=fields, close_price=_decimal(record, "ClosePrice"), close_date=_date(record, "CloseDate"),
        contract_date=_date(record, "ListingContractDate"), title_given=bool(title),
    )


# --- listing → record -------------------------------------------------------------------------

def _number(value):
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def listing_to_record(listing):
    """The RESO record of a listing (JSON-ready values; CSV writes them as text)."""
    features = set(listing.features or [])
    land = listing.property_type == Type.LAND
    if listing.property_type in RESIDENTIAL:
        reso_type = "Residential Lease" if listing.listing_type == "rent" else "Residential"
    elif listing.property_type == Type.COMMERCIAL:
        reso_type = "Commercial Lease" if listing.listing_type == "rent" else "Commercial Sale"
    else:
        reso_type = "Land"
    return {
        "ListingKey": listing.external_key or f"realio-{listing.pk}",
        "ListingTitle": listing.title,
        "StandardStatus": STATUS_TO_RESO[listing.status],
        "PropertyType": reso_type,
        "PropertySubType": SUBTYPE_TO_RESO.get(listing.property_type),
        "ListPrice": _number(listing.price),
        "LeaseAmountFrequency": PERIOD_TO_RESO.get(listing.rent_period) if listing.listing_type == "rent" else None,
        "ClosePrice": _number(listing.close_price),
        "CloseDate": _iso(_local_date(listing.closed_at, listing.time_zone)),
        "ListingContractDate": _iso(_local_date(listing.published_at, listing.time_zone)),
        "BedroomsTotal": listing.bedrooms,
        "BathroomsTotalInteger": listing.bathrooms,
        "LivingArea": None if land else _number(listing.area_sqm),
        "LivingAreaUnits": "Square Meters" if listing.area_sqm is not None and not land else None,
        "LotSizeArea": _number(listing.area_sqm) if land else None,
        "LotSizeUnits": "Square Meters" if listing.area_sqm is not None and land else None,
        "YearBuilt": listing.year_built,
        "UnparsedAddress": listing.street,
        "City": listing.city,
        "StateOrProvince": listing.region,
        "PostalCode": listing.postal_code,
        "Country": listing.country,
        "Latitude": listing.latitude,
        "Longitude": listing.longitude,
        "PublicRemarks": listing.description,
        "ListAgentEmail": listing.agent.email,
        **{name: feature in features for name, feature in FLAG_FEATURES.items()},
        "Furnished": "Furnished" if "furnished" in features else "Unfurnished",
        "PetsAllowed": "Yes" if "pets-allowed" in features else "No",
        "Realio_Features": ",".join(sorted(features)),
    }


def _iso(day):
    return day.isoformat() if day else None


# --- import -----------------------------------------------------------------------------------

@dataclass
class RowResult:
    number: int  # 1 for the first record of the file
    key: str
    outcome: str  # created, updated, unchanged or rejected
    reason: str = ""


@dataclass
class ImportReport:
    rows: list[RowResult] = field(default_factory=list)

    @property
    def counts(self):
        return Counter(row.outcome for row in self.rows)

    @property
    def rejected(self):
        return [row for row in self.rows if row.outcome == "rejected"]


class _Rollback(Exception):
    pass


def _reason(exc):
    """An ApplicationError's message with the services' field name replaced by the RESO one."""
    message = str(exc.detail if isinstance(exc, ApplicationError) else exc)
    name, sep, rest = message.partition(": ")
    if sep and name in RESO_NAMES:
        return f"{RESO_NAMES[name]}: {rest}"
    return message


class AgentDirectory:
    """Agents by email, looked up once each."""

    def __init__(self, default_email=None):
        self._cache = {}
        self.default = self.get(default_email) if default_email else None

    def get(self, email):
        email = email.lower()
        if email not in self._cache:
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                raise RecordError(f"ListAgentEmail: no account {email}.")
            if not user.is_agent or not user.is_active:
                raise RecordError(f"ListAgentEmail: {email} is not an active agent.")
            self._cache[email] = user
        return self._cache[email]


def _find(key):
    listing = Listing.objects.select_related("agent").filter(external_key=key).first()
    own = OWN_KEY.match(key)
    if listing is None and own:
        listing = Listing.objects.select_related("agent").filter(pk=int(own.group(1)), external_key=None).first()
    return listing


def _status_path(current, target):
    """The shortest way through the listing workflow from `current` to `target`, or None."""
    seen, queue = {current: None}, deque([current])
    while queue:
        status = queue.popleft()
        if status == target:
            path = []
            while status != current:
                path.append(status)
                status = seen[status]
            return path[::-1]
        for following in services.TRANSITIONS[status]:
            if following not in seen:
                seen[following] = status
                queue.append(following)
    return None


def _move(listing, *, by, incoming):
    """Walk the workflow to the record's status; the last step closes with its price and date."""
    path = _status_path(listing.status, incoming.status)
    if path is None:
        raise RecordError(f"StandardStatus: a listing that is {Status(listing.status).label.lower()} cannot become "
                          f"{Status(incoming.status).label.lower()}.")
    for status in path:
        closing = status in (Status.SOLD, Status.RENTED)
        listing = services.listing_set_status(
            listing=listing, by=by, status=status,
            close_price=incoming.close_price if closing else None,
            closed_at=_local_noon(incoming.close_date, listing.time_zone) if closing and incoming.close_date else None)
    return listing


def _create(incoming, agents):
    agent = agents.get(incoming.agent_email) if incoming.agent_email else agents.default
    if agent is None:
        raise RecordError("ListAgentEmail is required (or give the import a default agent).")
    fields = dict(incoming.fields)
    if not incoming.title_given:
        fields["title"] = built_title(listing_type=fields["listing_type"], property_type=fields["property_type"],
                                      bedrooms=fields.get("bedrooms"), city=fields["city"])
    listing = services.listing_create(agent=agent, latitude=incoming.latitude, longitude=incoming.longitude,
                                      external_key=incoming.key, **fields)
    listing = _move(listing, by=agent, incoming=incoming)
    if incoming.contract_date and listing.published_at:
        # The feed knows when the listing went on the market; the workflow stamped "now".
        listing.published_at = min(listing.published_at, _local_noon(incoming.contract_date, listing.time_zone))
        Listing.objects.filter(pk=listing.pk).update(published_at=listing.published_at)
        services.listing_cache_bump(listing.pk)
    return "created"


def _current(listing, name):
    value = getattr(listing, name)
    return sorted(value) if name == "features" else value  # the services keep them sorted; older rows may not be


def _update(listing, incoming, agents):
    if incoming.agent_email and agents.get(incoming.agent_email).pk != listing.agent_id:
        raise RecordError("ListAgentEmail: the listing belongs to another agent; reassigning is not supported.")
    by = listing.agent
    changed = {name: value for name, value in incoming.fields.items() if _current(listing, name) != value}
    moved = (abs(listing.latitude - incoming.latitude) > 1e-7 or abs(listing.longitude - incoming.longitude) > 1e-7)
    if changed or moved:
        location = {"latitude": incoming.latitude, "longitude": incoming.longitude} if moved else {}
        listing = services.listing_update(listing=listing, by=by, **location, **changed)
    if incoming.status != listing.status:
        _move(listing, by=by, incoming=incoming)
        return "updated"
    return "updated" if changed or moved else "unchanged"


def import_record(incoming, agents):
    """Create or update the listing of one record: "created", "updated" or "unchanged"."""
    listing = _find(incoming.key)
    if listing is None:
        return _create(incoming, agents)
    return _update(listing, incoming, agents)


def import_records(records, *, default_agent_email=None, dry_run=False):
    """Import records, each in its own transaction; a rejected record writes nothing.

    Returns an ImportReport. With `dry_run` every record is rolled back after it is applied.
    """
    agents = AgentDirectory(default_agent_email)
    report = ImportReport()
    for number, record in enumerate(records, start=1):
        key = _text(record, "ListingKey") if isinstance(record, dict) else ""
        try:
            with transaction.atomic():
                outcome = import_record(record_to_listing(record), agents)
                if dry_run:
                    raise _Rollback
        except _Rollback:
            pass
        except (RecordError, ApplicationError) as exc:
            report.rows.append(RowResult(number, key, "rejected", _reason(exc)))
            continue
        except DatabaseError as exc:  # a constraint the services did not foresee: still only this record
            report.rows.append(RowResult(number, key, "rejected", f"database: {str(exc).splitlines()[0]}"))
            continue
        report.rows.append(RowResult(number, key, outcome))
    return report


# --- files ------------------------------------------------------------------------------------

def file_format(path):
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise UnreadableFile(f"{path}: use a .csv or .json file.")
    return suffix[1:]


def read_records(path):
    """The records of a .csv file (a header row of RESO names) or a .json file (a list of objects,
    or {"value": [...]} as the RESO Web API sends)."""
    kind = file_format(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            if kind == "csv":
                reader = csv.DictReader(file)
                if not reader.fieldnames:
                    raise UnreadableFile(f"{path}: no header row.")
                return [{name: value for name, value in row.items() if name is not None} for row in reader]
            data = json.load(file)
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise UnreadableFile(f"{path}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        data = data["value"]
    if not isinstance(data, list):
        raise UnreadableFile(f'{path}: expected a list of records or {{"value": [...]}}.')
    return data


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_records(path, records):
    """Write records to a .csv or .json file; returns how many."""
    kind = file_format(path)
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as file:
        if kind == "csv":
            writer = csv.DictWriter(file, fieldnames=FIELDS)
            writer.writeheader()
            for record in records:
                writer.writerow({name: _csv_value(value) for name, value in record.items()})
                count += 1
        else:
            file.write('{"value": [')
            for record in records:
                file.write(("," if count else "") + "\n" + json.dumps(record, ensure_ascii=False))
                count += 1
            file.write("\n]}\n")
    return count
