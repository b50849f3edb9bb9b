"""Search: run a query on the configured backend and hydrate the page; the keyword vocabulary;
saved searches and their alerts."""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cached_property

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import GEOSGeometry
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from listings import selectors as listing_selectors
from listings.models import Listing
from realio import cache as versioned_cache
from realio import events, metrics
from realio.errors import ApplicationError, Conflict, NotFound
from search import selectors as search_selectors
from search.backends import get_backend
from search.backends.postgres import correct_keywords
from search.models import SavedSearch, SavedSearchMatch
from search.query import MAX_KEYWORDS_LENGTH, SearchQuery, SearchResult


@dataclass
class SearchPage:
    query: SearchQuery
    result: SearchResult

    @property
    def total(self):
        return self.result.total

    @cached_property
    def listings(self):
        """The page's listings in result order, with details prefetched (the API reads cached
        bodies by id instead: search/api.py)."""
        found = listing_selectors.with_details(listing_selectors.listings_listed_for(None)).in_bulk(self.result.ids)
        return [found[pk] for pk in self.result.ids if pk in found]


def search(query: SearchQuery, *, backend=None) -> SearchPage:
    """Run `query` and hydrate the page. Results of identical queries are cached for
    SEARCH_CACHE_SECONDS under the listings' cache version, which every listing write bumps
    after commit: a cached page is never older than the last change."""
    backend = backend or get_backend()
    if settings.SEARCH_CACHE_SECONDS > 0:
        params = json.dumps(query.to_params(), sort_keys=True)
        digest = hashlib.sha256(params.encode()).hexdigest()[:32]
        key = f"search:{backend.name}:{versioned_cache.version('listings')}:{digest}"
        # A popular query's page is recomputed by one process, shortly before it expires.
        result = versioned_cache.get_or_compute(key, lambda: metrics.search_timed(backend, query),
                                                settings.SEARCH_CACHE_SECONDS)
    else:
        result = metrics.search_timed(backend, query)
    return SearchPage(query=query, result=result)


VOCABULARY_SQL = """
    INSERT INTO search_searchterm (word)
    SELECT DISTINCT word FROM (
        SELECT regexp_split_to_table(lower(concat_ws(' ', title, city, region, street, description,
               replace(array_to_string(features, ' '), '-', ' '))), '[^[:alpha:]]+') AS word
          FROM listings_listing WHERE status = 'active' {only}
    ) words
    WHERE char_length(word) BETWEEN 3 AND 64
    ON CONFLICT (word) DO NOTHING
"""


def vocabulary_refresh(*, listing_ids=None):
    """Add the words of active listings (all, or these) to the keyword vocabulary.

    Words are only added: a word that left every listing costs nothing (it matches none).
    """
    only, params = ("AND id = ANY(%s)", [list(listing_ids)]) if listing_ids is not None else ("", [])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(VOCABULARY_SQL.format(only=only), params)
        return cursor.rowcount


# --- saved searches ---------------------------------------------------------------------------
# A saved search stores its canonical parameters and, extracted from them, the criteria columns
# that the reverse query (selectors.saved_searches_matching) compares a listing with.

MAX_SAVED_SEARCHES = 50
UNSUBSCRIBE_SALT = "saved-search-unsubscribe"
# Parameters a saved search may hold (those of `search/`); pagination is accepted and dropped.
QUERY_PARAMS = frozenset({
    "q", "listing_type", "property_type", "min_price", "max_price", "min_beds", "min_baths", "min_area",
    "max_area", "min_year", "max_year", "features", "lat", "lng", "radius_km", "bbox", "polygon", "sort",
    "page", "page_size",
})
# The circle is stored as a polygon around it, never inside it (the exact distance is tested
# again on the candidates): its vertices lie this much farther out than the radius.
CIRCLE_MARGIN = 1.02
CIRCLE_MARGIN_METRES = 10
# A box's edges are made to follow the parallels (a geography's edges are great circles) and
# pushed out by a hair, so the polygon holds the whole longitude/latitude rectangle.
BOX_SEGMENT_DEGREES = 0.1
BOX_MARGIN_DEGREES = 0.0001
# Beyond these the area is left NULL (no indexed pre-filter) and only the exact test applies:
# a geography polygon cannot describe a box wider than a hemisphere or one reaching a pole.
MAX_INDEXED_LATITUDE = 85
# One alert per (search, listing, reason); the same reason alerts again only after this long
# (a second price cut next month is news; a home re-listed twice in an hour is not).
ALERT_AGAIN_AFTER = timedelta(days=7)
DIGEST_PERIODS = {SavedSearch.Frequency.DAILY: timedelta(days=1), SavedSearch.Frequency.WEEKLY: timedelta(days=7)}
DIGEST_MAX_LISTINGS = 100
DIGEST_BATCH = 500


class NotSignedIn(ApplicationError):
    """Saved searches belong to a signed-in person (the API answers 401 before reaching here)."""

    status_code = 401
    default_detail = gettext_lazy("Sign in first.")


def _query_error(exc: ApplicationError) -> ApplicationError:
    """A SearchQuery error (naming `param`) as one naming `query.param`."""
    if not exc.errors:
        return ApplicationError(f"query: {exc.detail}", errors={"query": [exc.detail]})
    errors = {f"query.{name}": messages for name, messages in exc.errors.items()}
    name, messages = next(iter(errors.items()))
    return ApplicationError(f"{name}: {messages[0]}", errors=errors)


def _param_text(name, value):
    """A JSON value as the text of a request parameter: lists joined as `search/` expects them."""
    if value is None:
        return ""
    if isinstance(value, (bool, dict)):
        message = _("Give a text, a number or a list of them.")
        raise ApplicationError(f"{name}: {message}", errors={name: [message]})
    if isinstance(value, (list, tuple)):
        if name == "polygon" and all(isinstance(point, (list, tuple)) for point in value):
            return ";".join(",".join(_param_text(name, v) for v in point) for point in value)
        return ",".join(_param_text(name, v) for v in value)
    return str(value)


def saved_search_query(params) -> SearchQuery:
    """A saved search's parameters (a JSON object, values as `search/` takes them; lists allowed)
    as a validated SearchQuery. 400 naming the parameter as `query.<name>`."""
    if isinstance(params, SearchQuery):
        return params
    if not isinstance(params, Mapping):
        message = _("Give the search parameters as an object, e.g. {\"q\": \"garden\", \"max_price\": 400000}.")
        raise ApplicationError(f"query: {message}", errors={"query": [message]})
    try:
        unknown = sorted(set(params) - QUERY_PARAMS)
        if unknown:
            message = _("Unknown search parameter.")
            raise ApplicationError(f"{unknown[0]}: {message}", errors={unknown[0]: [message]})
        return SearchQuery.from_params({name: _param_text(name, value) for name, value in params.items()})
    except ApplicationError as exc:
        raise _query_error(exc) from None


def check_can_save_searches(*, user):
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        raise NotSignedIn(_("Sign in to save searches."))


def access_saved_search(*, saved_search_id, user, lock=False) -> SavedSearch:
    """`user`'s own saved search (locked for update when `lock`): NotFound for anyone else's."""
    queryset = search_selectors.saved_searches_of(user)
    if lock:
        queryset = queryset.select_for_update()
    try:
        saved = queryset.filter(pk=int(saved_search_id)).first()
    except (TypeError, ValueError):
        saved = None
    if saved is None:
        raise NotFound(_("No such saved search."))
    return saved


def _clean_name(name):
    name = " ".join(str(name or "").split())
    if not name:
        raise ApplicationError(_("name: Give the search a name."), errors={"name": [_("This field is required.")]})
    if len(name) > 100:
        message = _("At most %(n)d characters.") % {"n": 100}
        raise ApplicationError(f"name: {message}", errors={"name": [message]})
    return name


def _clean_frequency(frequency):
    if frequency not in SavedSearch.Frequency.values:
        message = _("Choose one of: %(v)s.") % {"v": ", ".join(SavedSearch.Frequency.values)}
        raise ApplicationError(f"alert_frequency: {message}", errors={"alert_frequency": [message]})
    return frequency


def _check_name_free(*, user, name, exclude_id=None):
    taken = SavedSearch.objects.filter(user=user, name__iexact=name).exclude(pk=exclude_id)
    if taken.exists():
        raise Conflict(_("You already have a saved search named “%(name)s”.") % {"name": name})


def _stored_keywords(q):
    """The keywords as the search runs them (typos corrected against the vocabulary), or "" when
    they hold no searchable word (the search then ignores them too)."""
    if not q:
        return ""
    corrected, searchable = correct_keywords(q)
    if not searchable:
        return ""
    return corrected if corrected and len(corrected) <= MAX_KEYWORDS_LENGTH else q


def _area(query: SearchQuery):
    """The smallest of the query's shapes as a geography polygon holding it, or None (no shape,
    or none a geography polygon can hold: the exact test alone then applies)."""
    shapes = []
    if query.has_point and abs(query.lat) + query.radius_km / 111 < MAX_INDEXED_LATITUDE:
        shapes.append(("ST_Buffer(ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s, 'quad_segs=16')",
                       [query.lng, query.lat, query.radius_km * 1000 * CIRCLE_MARGIN + CIRCLE_MARGIN_METRES]))
    if query.bbox:
        west, south, east, north = query.bbox
        m = BOX_MARGIN_DEGREES
        if east - west < 180 and max(abs(south), abs(north)) + m < MAX_INDEXED_LATITUDE:
            shapes.append(("ST_Segmentize(ST_MakeEnvelope(%s, %s, %s, %s, 4326), %s)::geography",
                           [max(west - m, -180), south - m, min(east + m, 180), north + m, BOX_SEGMENT_DEGREES]))
    if query.polygon:
        shapes.append(("ST_GeomFromText(%s, 4326)::geography", [query.polygon_geometry().wkt]))
    if not shapes:
        return None
    # The shapes are the fragments above; every value is a bound parameter.
    sql = " UNION ALL ".join(f"SELECT ST_AsEWKB(g::geometry), ST_Area(g) FROM (SELECT {shape} AS g) s"  # noqa: S608
                             for shape, _params in shapes)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) shapes ORDER BY 2 LIMIT 1",  # noqa: S608
                       [p for _shape, params in shapes for p in params])
        wkb, _size = cursor.fetchone()
    geometry = GEOSGeometry(memoryview(bytes(wkb)))
    return geometry if geometry.geom_type == "Polygon" else None


def _apply_query(saved: SavedSearch, query: SearchQuery):
    """Store the query's canonical parameters and the criteria extracted from them."""
    params = query.without_pagination().to_params()
    if not set(params) - {"sort"}:
        message = _("Give at least one filter, a place or keywords: a search for everything would alert "
                    "on every new home.")
        raise ApplicationError(f"query: {message}", errors={"query": [message]})
    try:
        # What replaying the stored parameters gives (to_params rounds a box's and a polygon's
        # coordinates): the criteria must describe that search.
        canonical = SearchQuery.from_params(params)
    except ApplicationError as exc:
        raise _query_error(exc) from None
    cent = Decimal("0.01")
    saved.query = params
    saved.listing_types = list(canonical.listing_types)
    saved.property_types = list(canonical.property_types)
    saved.features = list(canonical.features)
    # Prices and areas are stored with cents: a minimum rounds up, a maximum down (same matches).
    saved.min_price = canonical.min_price.quantize(cent, ROUND_CEILING) if canonical.min_price is not None else None
    saved.max_price = canonical.max_price.quantize(cent, ROUND_FLOOR) if canonical.max_price is not None else None
    saved.min_area = canonical.min_area.quantize(cent, ROUND_CEILING) if canonical.min_area is not None else None
    saved.max_area = canonical.max_area.quantize(cent, ROUND_FLOOR) if canonical.max_area is not None else None
    saved.min_beds, saved.min_baths = canonical.min_beds, canonical.min_baths
    saved.min_year, saved.max_year = canonical.min_year, canonical.max_year
    saved.keywords = _stored_keywords(canonical.q)
    saved.area = _area(canonical)


def _save(saved: SavedSearch):
    try:
        saved.full_clean(exclude=["user"], validate_constraints=False)
    except ValidationError as exc:
        raise ApplicationError.from_validation_error(exc) from exc
    try:
        with transaction.atomic():
            saved.save()
    except IntegrityError as exc:  # the same name saved by a concurrent request
        raise Conflict(_("You already have a saved search named “%(name)s”.") % {"name": saved.name}) from exc


def _drop_pending_matches(saved: SavedSearch):
    """Matches no alert has covered yet no longer apply (changed criteria, alerts turned off)."""
    SavedSearchMatch.objects.filter(saved_search=saved, alerted_at__isnull=True).delete()


def saved_search_create(*, user, name, query: SearchQuery, alert_frequency=SavedSearch.Frequency.DAILY) -> SavedSearch:
    """Save a search for `user` (signed in), alerting at `alert_frequency`.

    400 for an invalid name, frequency or query, or beyond MAX_SAVED_SEARCHES; 409 when the user
    already has a search of that name (case-insensitive). Publishes `saved_search.created`.
    Locks the user's row so that concurrent creations respect the limit.
    """
    check_can_save_searches(user=user)
    name = _clean_name(name)
    alert_frequency = _clean_frequency(alert_frequency)
    query = saved_search_query(query)
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
        if SavedSearch.objects.filter(user=user).count() >= MAX_SAVED_SEARCHES:
            raise ApplicationError(_("You can keep at most %(n)d saved searches; delete one first.")
                                   % {"n": MAX_SAVED_SEARCHES})
        _check_name_free(user=user, name=name)
        saved = SavedSearch(user=user, name=name, alert_frequency=alert_frequency)
        _apply_query(saved, query)
        _save(saved)
        events.publish("saved_search.created", saved_search_id=saved.pk)
    return saved


def saved_search_update(*, saved_search_id, user, name=None, query=None, alert_frequency=None) -> SavedSearch:
    """Rename a saved search, change its query or alert frequency (None = keep).

    404 for a search that is not `user`'s; 409 for a name they already use. Matches not yet
    alerted are dropped when the query changes or alerts stop being batched.
    """
    check_can_save_searches(user=user)
    name = _clean_name(name) if name is not None else None
    alert_frequency = _clean_frequency(alert_frequency) if alert_frequency is not None else None
    query = saved_search_query(query) if query is not None else None
    with transaction.atomic():
        saved = access_saved_search(saved_search_id=saved_search_id, user=user, lock=True)
        drop_pending = False
        if name is not None and name != saved.name:
            if name.upper() != saved.name.upper():
                _check_name_free(user=user, name=name, exclude_id=saved.pk)
            saved.name = name
        if alert_frequency is not None and alert_frequency != saved.alert_frequency:
            saved.alert_frequency = alert_frequency
            drop_pending = alert_frequency not in DIGEST_PERIODS
        if query is not None:
            old = saved.query
            _apply_query(saved, query)
            drop_pending = drop_pending or saved.query != old
        _save(saved)
        if drop_pending:
            _drop_pending_matches(saved)
    return saved


def saved_search_delete(*, saved_search_id, user):
    """Delete one of `user`'s saved searches (404 for anyone else's); its matches go with it."""
    check_can_save_searches(user=user)
    with transaction.atomic():
        access_saved_search(saved_search_id=saved_search_id, user=user, lock=True).delete()


def saved_search_unsubscribe_token(saved_search: SavedSearch) -> str:
    """The token of the unsubscribe link in every alert of this search (it does not expire)."""
    return signing.dumps([saved_search.pk, saved_search.user_id], salt=UNSUBSCRIBE_SALT)


def saved_search_unsubscribe(*, token) -> SavedSearch:
    """Stop a saved search's alerts (alert_frequency "never") from the link in an alert, without
    signing in. 400 for a token that is not ours; 404 when the search was deleted since.
    Unsubscribing twice is harmless."""
    try:
        saved_search_id, user_id = signing.loads(str(token or ""), salt=UNSUBSCRIBE_SALT)
        saved_search_id, user_id = int(saved_search_id), int(user_id)
    except (signing.BadSignature, TypeError, ValueError):
        message = _("This unsubscribe link is not valid.")
        raise ApplicationError(message, errors={"token": [message]}) from None
    with transaction.atomic():
        saved = SavedSearch.objects.select_for_update().filter(pk=saved_search_id, user_id=user_id).first()
        if saved is None:
            raise NotFound(_("This saved search no longer exists."))
        if saved.alert_frequency != SavedSearch.Frequency.NEVER:
            saved.alert_frequency = SavedSearch.Frequency.NEVER
            saved.save(update_fields=["alert_frequency", "updated_at"])
            _drop_pending_matches(saved)
    return saved


def saved_searches_erase(user):
    """Delete a person's saved searches (account deletion)."""
    SavedSearch.objects.filter(user=user).delete()


# --- alerts -----------------------------------------------------------------------------------

RECORD_MATCHES_SQL = """
    INSERT INTO search_savedsearchmatch AS m (saved_search_id, listing_id, reason, matched_at, alerted_at)
    SELECT s.id, %s, %s, %s, CASE WHEN s.frequency = 'instant' THEN %s::timestamptz END
      FROM unnest(%s::bigint[], %s::text[]) AS s(id, frequency)
    ON CONFLICT (saved_search_id, listing_id, reason) DO UPDATE
       SET matched_at = EXCLUDED.matched_at, alerted_at = EXCLUDED.alerted_at
     WHERE m.matched_at < %s
    RETURNING m.saved_search_id
"""


def saved_search_alerts_for_listing(*, listing_id, reason, now=None) -> list[int]:
    """Find the saved searches an active listing matches and alert each once for `reason`.

    Records a SavedSearchMatch per search (the unique key makes this idempotent: a search
    already matched for the same reason within ALERT_AGAIN_AFTER is skipped) and publishes one
    `saved_search.matched` {saved_search_id, user_id, listing_id, reason, frequency} per new
    match. Instant matches count as alerted at once; daily and weekly ones wait for the digest.
    Searches with alerts off, of inactive accounts or of the listing's agent are left out.
    Returns the ids of the searches alerted.
    """
    reason = SavedSearchMatch.Reason(reason)
    now = now or timezone.now()
    with transaction.atomic():
        listing = Listing.objects.filter(pk=listing_id, status=Listing.Status.ACTIVE).first()
        if listing is None:
            return []
        with connection.cursor() as cursor:
            # PostGIS functions declare high costs, so the planner would JIT-compile this query:
            # measured on 200,000 saved searches, 0.5 s of compiling for 20-40 ms of work.
            cursor.execute("SET LOCAL jit = off")
        candidates = {
            pk: (user_id, frequency) for pk, user_id, frequency in
            search_selectors.saved_searches_matching(listing)
            .exclude(alert_frequency=SavedSearch.Frequency.NEVER).filter(user__is_active=True)
            .order_by("pk").values_list("pk", "user_id", "alert_frequency")
        }
        if not candidates:
            return []
        ids = list(candidates)  # in id order: concurrent runs lock the match rows in one order
        with connection.cursor() as cursor:
            cursor.execute(RECORD_MATCHES_SQL, [listing.pk, reason.value, now, now, ids,
                                                [candidates[pk][1] for pk in ids], now - ALERT_AGAIN_AFTER])
            alerted = sorted(row[0] for row in cursor.fetchall())
        if alerted:
            events.publish_many("saved_search.matched", [
                {"saved_search_id": pk, "user_id": candidates[pk][0], "listing_id": listing.pk,
                 "reason": reason.value, "frequency": candidates[pk][1]}
                for pk in alerted
            ])
    return alerted


def alerts_digest(*, now=None) -> int:
    """Publish `saved_search.digest_due` {saved_search_id, user_id, listing_ids, total, frequency}
    for each daily or weekly search that is due and has matches no alert has covered yet.

    Due: a day (daily) or a week (weekly) after its last digest, or after it was created. The
    digest lists the still-active homes among the matches, newest first (at most
    DIGEST_MAX_LISTINGS; `total` counts them all); the matches are then marked alerted and
    `last_alerted_at` set, so running it again, or often, or twice at once, sends nothing twice.
    Works in batches of searches, each in its own transaction. Returns the digests published.
    """
    now = now or timezone.now()
    due = Q()
    for frequency, period in DIGEST_PERIODS.items():
        due |= Q(alert_frequency=frequency, anchor__lte=now - period)
    pending = SavedSearchMatch.objects.filter(saved_search=OuterRef("pk"), alerted_at__isnull=True)
    published, last_pk = 0, 0
    while True:
        with transaction.atomic():
            searches = list(
                SavedSearch.objects.annotate(anchor=Coalesce("last_alerted_at", "created_at"))
                .filter(due, Exists(pending), pk__gt=last_pk)
                .order_by("pk").select_for_update(skip_locked=True, of=("self",))[:DIGEST_BATCH]
            )
            if not searches:
                return published
            last_pk = searches[-1].pk
            matches = {}
            for match_id, saved_id, listing_id, status in (
                    SavedSearchMatch.objects.filter(saved_search__in=searches, alerted_at__isnull=True)
                    .order_by("-matched_at", "-id")
                    .values_list("pk", "saved_search_id", "listing_id", "listing__status")):
                match_ids, listing_ids = matches.setdefault(saved_id, ([], {}))
                match_ids.append(match_id)
                if status == Listing.Status.ACTIVE:
                    listing_ids.setdefault(listing_id, None)
            payloads = []
            for saved in searches:
                listing_ids = list(matches.get(saved.pk, ([], {}))[1])
                if listing_ids:
                    payloads.append({"saved_search_id": saved.pk, "user_id": saved.user_id,
                                     "listing_ids": listing_ids[:DIGEST_MAX_LISTINGS], "total": len(listing_ids),
                                     "frequency": saved.alert_frequency})
            # Every match looked at is covered: listed, or no longer on the market.
            SavedSearchMatch.objects.filter(pk__in=[pk for ids, _ in matches.values() for pk in ids]).update(
                alerted_at=now)
            SavedSearch.objects.filter(pk__in=[p["saved_search_id"] for p in payloads]).update(last_alerted_at=now)
            if payloads:
                events.publish_many("saved_search.digest_due", payloads)
            published += len(payloads)
