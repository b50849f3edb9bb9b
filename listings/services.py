"""Writes on listings: create, change, status workflow, price history, photos, favorites, views.

Every write that changes what others see publishes its event in the same transaction
(DESIGN.md section 2): search indexing, alerts, notifications and recommendations follow them.
"""

import datetime
import hashlib
import io
import json
import logging
import secrets
import time
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageOps

from accounts import selectors as account_selectors
from listings import selectors
from listings.models import Favorite, Listing, ListingPhoto, PriceChange, RecentlyViewed
from realio import cache as versioned_cache
from realio import events
from realio.errors import ApplicationError, Conflict, Forbidden, NotFound
from realio.images import image_check
from realio.redis import get_redis
from realio.redis import key as redis_key

logger = logging.getLogger(__name__)
Status = Listing.Status

EDITABLE_FIELDS = (
    "title", "description", "listing_type", "rent_period", "property_type", "price", "bedrooms", "bathrooms",
    "area_sqm", "year_built", "street", "city", "region", "postal_code", "country", "time_zone", "features",
)
MAX_PHOTOS = 40
THUMBNAIL_SIZE = (480, 360)
LARGE_SIZE = (1600, 1200)

# Allowed status changes. Publishing needs an agent allowed to publish; closing (sold/rented)
# records the close price and date.
TRANSITIONS = {
    Status.DRAFT: {Status.ACTIVE, Status.WITHDRAWN},
    Status.ACTIVE: {Status.PENDING, Status.SOLD, Status.RENTED, Status.WITHDRAWN},
    Status.PENDING: {Status.ACTIVE, Status.SOLD, Status.RENTED, Status.WITHDRAWN},
    Status.WITHDRAWN: {Status.ACTIVE, Status.DRAFT},
    Status.SOLD: set(),
    # A rented home comes back on the market when the tenancy ends.
    Status.RENTED: {Status.ACTIVE},
}


@cache
def _time_zone_finder():
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


def time_zone_at(*, latitude, longitude):
    """The IANA time zone at a point, found offline; UTC at sea or when unknown."""
    return _time_zone_finder().timezone_at(lng=float(longitude), lat=float(latitude)) or "UTC"


def point(*, latitude, longitude):
    latitude, longitude = float(latitude), float(longitude)
    errors = {}
    if not -90 <= latitude <= 90:
        errors["latitude"] = [_("Latitude must be between -90 and 90.")]
    if not -180 <= longitude <= 180:
        errors["longitude"] = [_("Longitude must be between -180 and 180.")]
    if errors:
        field, messages = next(iter(errors.items()))
        raise ApplicationError(f"{field}: {messages[0]}", errors=errors)
    return Point(longitude, latitude, srid=4326)


# --- access -----------------------------------------------------------------------------------

def listing_cache_bump(listing_id):
    """After commit, drop what is cached about this listing and every cached search (the
    caller's transaction wrote the listing). Bumped by the writer itself: events arrive later."""
    versioned_cache.bump_on_commit("listings", versioned_cache.listing_namespace(listing_id))


def access_listing_for_change(*, listing_id, user, lock=True):
    """The listing `user` may change, locked for update when `lock`.

    NotFound when they may not see it, Forbidden when they may see it but do not own it.
    """
    queryset = selectors.listings_visible_to(user)
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    listing = queryset.filter(pk=listing_id).first()
    if listing is None:
        raise NotFound(_("No such listing."))
    if not (listing.agent_id == user.pk or getattr(user, "sees_everything", False)):
        raise Forbidden(_("Only the listing's agent can change it."))
    return listing


# --- create and change ------------------------------------------------------------------------

def _clean(listing):
    try:
        listing.full_clean(exclude=["agent"])
    except ValidationError as exc:
        raise ApplicationError.from_validation_error(exc) from exc


def _normalise(fields):
    fields = dict(fields)
    if "features" in fields:
        fields["features"] = sorted(set(fields["features"] or []))
    if fields.get("country"):
        fields["country"] = fields["country"].upper()
    if fields.get("listing_type") == Listing.ListingType.SALE:
        fields["rent_period"] = None
    return fields


def check_can_create(*, user):
    """Only agents (and staff) create listings: Forbidden (403) for anyone else."""
    if not getattr(user, "is_agent", False) and not getattr(user, "sees_everything", False):
        raise Forbidden(_("Only agents create listings."))


def listing_create(*, agent, latitude, longitude, status=Status.DRAFT, external_key=None, **fields):
    """A new listing of `agent`, a draft unless `status` asks to publish it at once.

    `external_key` is the listing's key in an MLS feed (imports find it again by that key).
    """
    check_can_create(user=agent)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(_("Unknown fields: %(f)s") % {"f": ", ".join(sorted(unknown))})
    fields = _normalise(fields)
    if fields.get("listing_type") == Listing.ListingType.RENT and not fields.get("rent_period"):
        fields["rent_period"] = Listing.RentPeriod.MONTH
    location = point(latitude=latitude, longitude=longitude)
    if not fields.get("time_zone"):
        fields["time_zone"] = time_zone_at(latitude=latitude, longitude=longitude)
    listing = Listing(agent=agent, location=location, currency=settings.CURRENCY, external_key=external_key or None,
                      **fields)
    _clean(listing)
    with transaction.atomic():
        listing.save()
        PriceChange.objects.create(listing=listing, price=listing.price)
        listing_cache_bump(listing.pk)
        if status != Status.DRAFT:
            listing_set_status(listing=listing, by=agent, status=status)
    return listing


def listing_update(*, listing, by, latitude=None, longitude=None, status=None, close_price=None,
                   closed_at=None, **fields):
    """Change a listing's fields (and status, through the workflow). Price changes are kept in
    the price history and published as `listing.price_changed`."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(_("Unknown fields: %(f)s") % {"f": ", ".join(sorted(unknown))})
    fields = _normalise(fields)
    with transaction.atomic():
        listing = access_listing_for_change(listing_id=listing.pk, user=by)
        old_price = listing.price
        changed = []
        for name, value in fields.items():
            if getattr(listing, name) != value:
                setattr(listing, name, value)
                changed.append(name)
        if listing.listing_type == Listing.ListingType.RENT and not listing.rent_period:
            listing.rent_period = Listing.RentPeriod.MONTH
            changed.append("rent_period")
        if latitude is not None or longitude is not None:
            new_location = point(latitude=listing.latitude if latitude is None else latitude,
                                 longitude=listing.longitude if longitude is None else longitude)
            if not new_location.equals_exact(listing.location, tolerance=1e-9):
                listing.location = new_location
                changed.append("location")
                if "time_zone" not in fields:
                    listing.time_zone = time_zone_at(latitude=new_location.y, longitude=new_location.x)
                    changed.append("time_zone")
        _clean(listing)
        if changed:
            listing.save()
        if listing.price != old_price:
            PriceChange.objects.create(listing=listing, price=listing.price)
            events.publish("listing.price_changed", listing_id=listing.pk, old=str(old_price),
                           new=str(listing.price))
        if status is not None and status != listing.status:
            listing = listing_set_status(listing=listing, by=by, status=status, close_price=close_price,
                                         closed_at=closed_at)
        elif changed:
            events.publish("listing.updated", listing_id=listing.pk, fields=sorted(set(changed)))
        listing_cache_bump(listing.pk)
    return listing


def listing_set_status(*, listing, by, status, close_price=None, closed_at=None):
    """Move a listing through draft → active → pending → sold/rented, or withdrawn.

    Conflict (409) for a change the workflow does not allow. Publishing sets `published_at`
    the first time; closing sets `close_price` (default: the asking price) and `closed_at`.
    """
    with transaction.atomic():
        listing = access_listing_for_change(listing_id=listing.pk, user=by)
        old = listing.status
        if status not in Status.values:
            raise ApplicationError(_("status: unknown status."), errors={"status": [_("Unknown status.")]})
        if status == old:
            return listing
        if status not in TRANSITIONS[old]:
            raise Conflict(_("A listing cannot go from %(old)s to %(new)s.")
                           % {"old": Status(old).label, "new": Status(status).label})
        if status == Status.SOLD and listing.listing_type != Listing.ListingType.SALE:
            raise Conflict(_("Only a home for sale can be sold; mark a rental as rented."))
        if status == Status.RENTED and listing.listing_type != Listing.ListingType.RENT:
            raise Conflict(_("Only a rental can be rented; mark a sale as sold."))
        now = timezone.now()
        first_publication = status == Status.ACTIVE and listing.published_at is None
        if status == Status.ACTIVE:
            if not account_selectors.agent_can_publish(listing.agent) and not getattr(by, "sees_everything", False):
                raise Forbidden(_("Your agent account must be verified by staff before you publish."))
            listing.published_at = listing.published_at or now
            listing.close_price = None
            listing.closed_at = None
        if status in (Status.SOLD, Status.RENTED):
            close_price = Decimal(close_price) if close_price is not None else listing.price
            if close_price < 0:
                raise ApplicationError(_("close_price: must not be negative."))
            listing.close_price = close_price
            listing.closed_at = closed_at or now
        listing.status = status
        listing.save(update_fields=["status", "published_at", "close_price", "closed_at", "updated_at"])
        events.publish("listing.status_changed", listing_id=listing.pk, old=old, new=status)
        listing_cache_bump(listing.pk)
        if first_publication:
            events.publish("listing.published", listing_id=listing.pk)
    return listing


def listing_delete(*, listing, by):
    with transaction.atomic():
        listing = access_listing_for_change(listing_id=listing.pk, user=by)
        files = _photo_files(ListingPhoto.objects.filter(listing=listing))
        listing_id = listing.pk
        try:
            with transaction.atomic():
                listing.delete()
        except IntegrityError as exc:  # records of other apps that must outlive the listing
            raise Conflict(_("This listing has records that must be kept; withdraw it instead.")) from exc
        events.publish("listing.deleted", listing_id=listing_id)
        listing_cache_bump(listing_id)
        _delete_files_on_commit(files)


# --- photos -----------------------------------------------------------------------------------

def _photo_files(photos):
    return [(f.storage, f.name) for photo in photos for f in (photo.image, photo.thumbnail, photo.large) if f]


def _delete_files_on_commit(files):
    def delete():
        for storage, name in files:
            try:
                storage.delete(name)
            except OSError:
                logger.warning("could not delete %s", name, exc_info=True)

    transaction.on_commit(delete)


def photo_add(*, listing, by, upload, caption=""):
    """Add a photo (checked by content, metadata stripped) at the end; renditions follow."""
    checked = image_check(upload)
    with transaction.atomic():
        listing = access_listing_for_change(listing_id=listing.pk, user=by)
        count = listing.photos.count()
        if count >= MAX_PHOTOS:
            raise ApplicationError(_("A listing has at most %(n)d photos.") % {"n": MAX_PHOTOS})
        photo = ListingPhoto(listing=listing, caption=caption[:200], position=count)
        photo.image.save(checked.file.name, checked.file, save=False)
        try:
            photo.save()
            events.publish("listing.updated", listing_id=listing.pk, fields=["photos"])
            listing_cache_bump(listing.pk)
        except Exception:
            photo.image.storage.delete(photo.image.name)  # not orphaned by the rollback
            raise
        from listings.tasks import make_photo_renditions

        make_photo_renditions.delay_on_commit(photo.pk)
    return photo


def _renumber(listing, ordered):
    for position, photo in enumerate(ordered):
        photo.position = position
    ListingPhoto.objects.bulk_update(ordered, ["position"])


def photo_update(*, photo_id, listing_id, by, caption=None, position=None):
    """Change a photo's caption and/or move it to `position` (0 = first); others shift."""
    with transaction.atomic():
        listing = access_listing_for_change(listing_id=listing_id, user=by)
        photos = list(listing.photos.select_for_update().order_by("position", "id"))
        photo = next((p for p in photos if p.pk == int(photo_id)), None)
        if photo is None:
            raise NotFound(_("No such photo."))
        if caption is not None:
            photo.caption = caption[:200]
            photo.save(update_fields=["caption"])
        if position is not None:
            photos.remove(photo)
            photos.insert(max(0, min(int(position), len(photos))), photo)
            _renumber(listing, photos)
        events.publish("listing.updated", listing_id=listing.pk, fields=["photos"])
        listing_cache_bump(listing.pk)
    photo.refresh_from_db()
    return photo


def photo_delete(*, photo_id, listing_id, by):
    with transaction.atomic():
        listing = access_listing_for_change(listing_id=listing_id, user=by)
        photos = list(listing.photos.select_for_update().order_by("position", "id"))
        photo = next((p for p in photos if p.pk == int(photo_id)), None)
        if photo is None:
            raise NotFound(_("No such photo."))
        files = _photo_files([photo])
        photo.delete()
        photos.remove(photo)
        _renumber(listing, photos)
        events.publish("listing.updated", listing_id=listing.pk, fields=["photos"])
        listing_cache_bump(listing.pk)
        _delete_files_on_commit(files)


def photo_make_renditions(*, photo_id):
    """Make the thumbnail and the large rendition of a photo. Safe to run again."""
    photo = ListingPhoto.objects.filter(pk=photo_id).first()
    if photo is None or (photo.thumbnail and photo.large):
        return photo
    with photo.image.open("rb") as source:
        image = ImageOps.exif_transpose(Image.open(source))
        image.load()
    renditions = {}
    for name, size in (("thumbnail", THUMBNAIL_SIZE), ("large", LARGE_SIZE)):
        copy = image.copy()
        if name == "thumbnail":
            copy = ImageOps.fit(copy, size, method=Image.Resampling.LANCZOS)
        else:
            copy.thumbnail(size, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        copy.convert("RGB").save(out, "WEBP", quality=82, method=4)
        renditions[name] = ContentFile(out.getvalue(), name=f"{photo.pk}-{name}.webp")
    with transaction.atomic():
        locked = ListingPhoto.objects.select_for_update().filter(pk=photo_id).first()
        if locked is None or (locked.thumbnail and locked.large):
            return locked
        for name, content in renditions.items():
            getattr(locked, name).save(content.name, content, save=False)
        locked.save(update_fields=["thumbnail", "large"])
        listing_cache_bump(locked.listing_id)
    return locked


# --- favorites --------------------------------------------------------------------------------

def favorite_add(*, user, listing_id):
    """Save a home to `user`'s favorites. Returns (favorite, created); saving twice is a no-op."""
    with transaction.atomic():
        listing = selectors.listings_visible_to(user).filter(pk=listing_id).first()
        if listing is None:
            raise NotFound(_("No such listing."))
        favorite, created = Favorite.objects.get_or_create(user=user, listing=listing)
        if created:
            events.publish("listing.favorited", listing_id=listing.pk, user_id=user.pk)
    return favorite, created


def favorite_remove(*, user, listing_id):
    with transaction.atomic():
        deleted, _rows = Favorite.objects.filter(user=user, listing_id=listing_id).delete()
        if not deleted:
            raise NotFound(_("This home is not in your favorites."))
        events.publish("listing.unfavorited", listing_id=int(listing_id), user_id=user.pk)


# --- views ------------------------------------------------------------------------------------
# Recording a view writes nothing to the database on the request path: it goes to a Redis list
# that a beat task drains in batches (view counts, recently viewed, `listing.viewed` events).

VIEWS_QUEUE = redis_key("listings", "views")
VIEW_DEDUP_SECONDS = 30 * 60


def session_digest(session_key):
    """A stable, non-secret stand-in for a session key (the key itself signs a person in)."""
    if not session_key:
        return None
    return hashlib.sha256(f"{settings.SECRET_KEY}:{session_key}".encode()).hexdigest()[:24]


def view_record(*, listing_id, user_id=None, session_key=None, pipeline=None):
    """Queue a view of a listing by a person, an anonymous session or an unknown caller.

    One RPUSH, added to `pipeline` when given (a redis-py pipeline the caller executes, with
    its other commands: one round trip for both). Repeated views by one viewer are dropped by
    the flush, so a request pays for nothing else."""
    item = json.dumps({"l": int(listing_id), "u": user_id, "s": session_key, "t": time.time(),
                       "i": secrets.token_hex(8)})
    if pipeline is not None:
        pipeline.rpush(VIEWS_QUEUE, item)
        return True
    try:
        get_redis().rpush(VIEWS_QUEUE, item)
    except Exception:  # a view is not worth failing a page for
        logger.warning("could not record a view of listing %s", listing_id, exc_info=True)
        return False
    return True


def views_flush(*, batch_size=5000):
    """Write queued views to the database in batches; returns how many were counted.

    A viewer (a person or an anonymous session) counts once per listing per half hour from
    their view: reloads do not inflate counts. Items are taken off the list only when their
    batch has committed, so a crash re-processes a batch rather than losing it (its views are
    recognised by their token, not taken for repeats).
    """
    client = get_redis()
    written = 0
    while True:
        raw = client.lrange(VIEWS_QUEUE, 0, batch_size - 1)
        if not raw:
            return written
        views = _views_first_per_viewer(client, [json.loads(item) for item in raw])
        _views_write(views)
        client.ltrim(VIEWS_QUEUE, len(raw), -1)
        written += len(views)
        if len(raw) < batch_size:
            return written


def _views_first_per_viewer(client, views):
    """The views that are their viewer's first of the listing in VIEW_DEDUP_SECONDS (all the
    views of callers with neither account nor session): one SET NX GET per view, pipelined,
    marking the viewer until that long after the view."""
    pipe = client.pipeline(transaction=False)
    marked = []
    for view in views:
        viewer = f"u{view['u']}" if view["u"] else (f"s{view['s']}" if view["s"] else None)
        if viewer is None:
            continue
        token = view.get("i") or f"{view['t']}"
        pipe.set(redis_key("listings", "seen", view["l"], viewer), token, nx=True, get=True,
                 exat=max(int(time.time()) + 1, int(view["t"] + VIEW_DEDUP_SECONDS)))
        marked.append((view, token))
    replies = pipe.execute() if marked else []
    previous = {id(view): (old, token) for (view, token), old in zip(marked, replies, strict=True)}
    fresh = []
    for view in views:
        if id(view) in previous:
            old, token = previous[id(view)]
            if old is not None and old.decode() != token:  # a repeat (not this view re-processed)
                continue
        fresh.append(view)
    return fresh


def view_count_key(listing_id):
    return f"views:{versioned_cache.listing_namespace(listing_id)}"


def view_counts_publish(counts):
    """Publish listings' view counts as written, for `view_counts_overlay`. They outlive any body
    cached before they were written (LISTING_CACHE_SECONDS), and bodies built later hold counts
    at least as high."""
    versioned_cache.cache.set_many({view_count_key(pk): count for pk, count in counts.items()},
                                   max(60, 2 * settings.LISTING_CACHE_SECONDS))


def view_counts_overlay(bodies, counts):
    """Cached API bodies with the latest published view counts (`counts`: view_count_key ->
    count, read with the bodies); counts only grow, so the higher one is the newer one."""
    for body in bodies:
        published = counts.get(view_count_key(body["id"]))
        if published is not None and published > body["view_count"]:
            body["view_count"] = published
    return bodies


def _views_write(views):

    counts = {}
    for view in views:
        counts[view["l"]] = counts.get(view["l"], 0) + 1
    # Views of published listings (a draft's agent looking at it, or a 404, is not a view).
    existing = set(selectors.published_listings().filter(pk__in=counts).values_list("pk", flat=True))
    with transaction.atomic():
        if existing:
            Listing.objects.filter(pk__in=existing).update(view_count=F("view_count") + Case(
                *[When(pk=pk, then=Value(n)) for pk, n in counts.items() if pk in existing],
                default=Value(0), output_field=IntegerField()))
            # The cached bodies stay (a busy listing's would otherwise be rebuilt at every flush):
            # the new counts are published beside them and laid over them when read.
            written = dict(Listing.objects.filter(pk__in=existing).values_list("pk", "view_count"))
            transaction.on_commit(lambda: view_counts_publish(written))
        latest = {}
        for view in views:
            if view["u"] and view["l"] in existing:
                at = datetime.datetime.fromtimestamp(view["t"], tz=datetime.UTC)
                latest[(view["u"], view["l"])] = max(latest.get((view["u"], view["l"]), at), at)
        if latest:
            RecentlyViewed.objects.bulk_create(
                [RecentlyViewed(user_id=user_id, listing_id=listing_id, viewed_at=at)
                 for (user_id, listing_id), at in latest.items()],
                update_conflicts=True, unique_fields=["user", "listing"], update_fields=["viewed_at"])
        # A view by a caller with neither account nor session (an API client without cookies)
        # is counted, but names nobody an event could be about: publishing it would only make
        # work for the handlers (one per view, at the rate of the busiest endpoint).
        events.publish_many("listing.viewed", [
            {"listing_id": view["l"], "user_id": view["u"], "session": session_digest(view["s"])}
            for view in views if view["l"] in existing and (view["u"] or view["s"])
        ])
