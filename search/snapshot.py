"""Facet counts from an in-process column snapshot of the active listings.

Counting every facet with every filter but its own is a full pass over the matching rows; in
SQL, over tens of thousands of active listings, it costs far more than the page. Each process
therefore keeps the columns that search filters and counts by (price, bedrooms, bathrooms,
area, year, types, features as a bit mask, longitude and latitude) of every active listing in
numpy arrays, and counts there: the non-spatial filters, the box and the radius in numpy (a
sphere's distance, with PostGIS deciding the rows too near the circle's edge for the sphere to
tell), keywords by kept match sets (read once, shared between processes through Redis), a
polygon by one SQL statement returning the matching ids.

The snapshot is never stale: before each use it asks PostgreSQL, in one indexed statement, for
the listings changed since the database snapshot it last read at (search_listing_change,
written by triggers with the writing transaction's id; search/migrations/0003), and re-reads
just those rows. Writes that bypass the services (imports, the admin, SQL) are seen the same way.
A snapshot is process state built from committed data only: inside a transaction the backend
counts in SQL instead (the transaction may see rows that will never be committed).
"""

import contextlib
import hashlib
import threading
import time
from collections import OrderedDict
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
from django.core.cache import cache
from django.db import connection
from redis.exceptions import RedisError

from search.query import SearchQuery

# Change rows are kept this long (search.prune_listing_changes); a snapshot not refreshed for
# half of it reloads in full rather than trust a log that may have lost its rows.
CHANGE_RETENTION_SECONDS = 24 * 3600
FULL_RELOAD_AFTER_SECONDS = CHANGE_RETENTION_SECONDS / 2
MAX_FEATURES = 63  # bits of the feature mask
KEYWORD_SETS = 32  # the ids matching the most recently used keyword queries, kept current too
TSCONFIG = "english"
NULL = np.iinfo(np.int64).min  # a NULL area or year: fails every comparison, as in SQL
EARTH_RADIUS_M = 6371008.8  # the mean radius
# Mapped onto the WGS84 spheroid (same latitude and longitude), lengths on that sphere scale by
# between 0.99441 and 1.00447 (the spheroid's radii of curvature span 6,335.4 to 6,399.6 km), so a
# sphere distance is within 0.56% of the geodesic PostGIS measures. Rows whose sphere distance is
# within this fraction of a radius's edge are decided by PostGIS.
SPHERE_ERROR = 0.006

ROW_SQL = """
    SELECT l.id, (l.price * 100)::bigint, l.bedrooms, l.bathrooms, (l.area_sqm * 100)::bigint, l.year_built,
           l.property_type, l.listing_type, l.features, ST_X(l.location::geometry), ST_Y(l.location::geometry),
           (extract(epoch FROM l.published_at) * 1000000)::bigint
      FROM listings_listing l
"""
CHANGES_SQL = """
    SELECT pg_current_snapshot()::text,
           ARRAY(SELECT DISTINCT c.listing_id FROM search_listing_change c
                  WHERE c.xid >= pg_snapshot_xmin(%(seen)s::pg_snapshot)
                    AND NOT pg_visible_in_snapshot(c.xid, %(seen)s::pg_snapshot)),
           EXISTS (SELECT 1 FROM search_listing_change c
                    WHERE c.listing_id IS NULL AND c.xid >= pg_snapshot_xmin(%(seen)s::pg_snapshot)
                      AND NOT pg_visible_in_snapshot(c.xid, %(seen)s::pg_snapshot))
"""


class KeywordSet:
    """The ids (ascending) of the listings matching a keyword query as of the database snapshot
    `at`, with their ranks for it where known (NaN until a search ranks them)."""

    __slots__ = ("at", "ids", "ranks")

    def __init__(self, ids, ranks, at):
        order = np.argsort(ids, kind="stable")
        self.ids, self.ranks, self.at = ids[order], ranks[order], at

    def _positions(self, ids):
        """(positions in the set, whether each id is in it) of these ids."""
        positions = np.minimum(np.searchsorted(self.ids, ids), max(len(self.ids) - 1, 0))
        return positions, (self.ids[positions] == ids) if len(self.ids) else np.zeros(len(ids), dtype=bool)

    def ranks_of(self, ids):
        """The known ranks of these ids (NaN where not known or not in the set)."""
        positions, ours = self._positions(ids)
        return np.where(ours, self.ranks[positions] if len(self.ids) else np.nan, np.nan).astype(np.float32)

    def remember(self, ids, ranks):
        positions, ours = self._positions(ids)
        self.ranks[positions[ours]] = ranks[ours]


def cents(value, rounding):
    return int((Decimal(value) * 100).to_integral_value(rounding=rounding))


class Codes:
    """Strings ↔ small integers, assigned on first sight."""

    def __init__(self):
        self.by_value, self.values = {}, []

    def code(self, value):
        code = self.by_value.get(value)
        if code is None:
            code = self.by_value[value] = len(self.values)
            self.values.append(value)
        return code


class ListingSnapshot:
    """The active listings' search columns, kept current from the change log."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen = None  # the pg_snapshot (text) the arrays reflect every change before
        self._refreshed = 0.0
        self.usable = True  # False when the data do not fit (too many distinct features)
        self._clear()

    # --- keyword sets ---------------------------------------------------------------------------

    def keyword_ids(self, tsquery_text):
        """The ids (ascending) of the active listings matching these (corrected) keywords. The
        sets of recent keyword queries are kept and brought up to date with the columns."""
        with self._lock:
            kept = self.keywords.get(tsquery_text)
            if kept is not None:
                self.keywords.move_to_end(tsquery_text)
                return kept.ids
            seen = self._seen
        found = shared_keyword_set(tsquery_text)
        if found is None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_current_snapshot()::text, array_agg(l.id ORDER BY l.id) FROM listings_listing l "
                    "WHERE l.status = 'active' AND l.search_vector @@ websearch_to_tsquery(%s::regconfig, %s)",
                    [TSCONFIG, tsquery_text])
                read_at, ids = cursor.fetchone()
            ids = np.array(ids or [], dtype=np.int64)
            found = KeywordSet(ids, np.full(len(ids), np.nan, dtype=np.float32), read_at)
            share_keyword_set(tsquery_text, found)
        with self._lock:
            # Read after `seen`: changes since are applied by the next refresh. Had a refresh
            # run meanwhile, it may have skipped changes this read missed: use it, don't keep it.
            if self._seen == seen:
                self.keywords[tsquery_text] = found
                while len(self.keywords) > KEYWORD_SETS:
                    self.keywords.popitem(last=False)
        return found.ids

    def keyword_ranks(self, tsquery_text, ids):
        """`ts_rank_cd` of these listings (matching ids, as an array) for the keywords, as the SQL
        backend ranks them. A kept set remembers the ranks it was asked for, so a window ranked
        before costs no statement; the others are read in one."""
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            kept = self.keywords.get(tsquery_text)
            ranks = kept.ranks_of(ids) if kept is not None else np.full(len(ids), np.nan, dtype=np.float32)
        missing = np.isnan(ranks)
        if not missing.any():
            return ranks
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT array_agg(l.id), array_agg(ts_rank_cd(l.search_vector, q)) "
                "FROM listings_listing l, websearch_to_tsquery(%s::regconfig, %s) q WHERE l.id = ANY(%s)",
                [TSCONFIG, tsquery_text, ids[missing].tolist()])
            read_ids, read_ranks = cursor.fetchone()
        read = dict(zip(read_ids or (), read_ranks or (), strict=True))
        ranks[missing] = [read.get(pk, 0.0) for pk in ids[missing].tolist()]
        with self._lock:
            if kept is not None and self.keywords.get(tsquery_text) is kept:  # not replaced by a refresh
                kept.remember(ids[missing], ranks[missing])
                kept = KeywordSet(kept.ids.copy(), kept.ranks.copy(), kept.at)
            else:
                kept = None
        if kept is not None:  # the ranks learnt, for the other processes (a write of ~1 ms after a read of more)
            share_keyword_set(tsquery_text, kept)
        return ranks

    def _update_keyword_sets(self, cursor, changed, seen):
        texts = list(self.keywords)
        cursor.execute(
            """SELECT q.n, l.id, ts_rank_cd(l.search_vector, websearch_to_tsquery(%s::regconfig, q.text))
                 FROM unnest(%s::text[]) WITH ORDINALITY AS q(text, n)
                 JOIN listings_listing l ON l.id = ANY(%s) AND l.status = 'active'
                  AND l.search_vector @@ websearch_to_tsquery(%s::regconfig, q.text)""",
            [TSCONFIG, texts, changed, TSCONFIG])
        matched = {}
        for n, listing_id, rank in cursor.fetchall():
            matched.setdefault(texts[n - 1], []).append((listing_id, rank))
        changed = np.array([pk for pk in changed if pk is not None], dtype=np.int64)
        for text in texts:
            kept = self.keywords[text]
            stays = ~np.isin(kept.ids, changed)
            added = matched.get(text, [])
            self.keywords[text] = KeywordSet(
                np.concatenate([kept.ids[stays], np.array([pk for pk, _ in added], dtype=np.int64)]),
                np.concatenate([kept.ranks[stays], np.array([rank for _, rank in added], dtype=np.float32)]), seen)

    def _clear(self):
        self.keywords = OrderedDict()  # keyword text → KeywordSet of the active listings matching it
        self.size = 0
        self.property_types, self.listing_types, self.feature_names = Codes(), Codes(), Codes()
        self.position = np.full(1024, -1, dtype=np.int64)  # listing id → row
        capacity = 1024
        self.ids = np.zeros(capacity, dtype=np.int64)
        self.alive = np.zeros(capacity, dtype=bool)
        self.price = np.zeros(capacity, dtype=np.int64)
        self.bedrooms = np.zeros(capacity, dtype=np.int64)
        self.bathrooms = np.zeros(capacity, dtype=np.int64)
        self.area = np.zeros(capacity, dtype=np.int64)
        self.year = np.zeros(capacity, dtype=np.int64)
        self.property_type = np.zeros(capacity, dtype=np.int64)
        self.listing_type = np.zeros(capacity, dtype=np.int64)
        self.features = np.zeros(capacity, dtype=np.uint64)
        self.lng = np.zeros(capacity, dtype=np.float64)
        self.lat = np.zeros(capacity, dtype=np.float64)
        self.published = np.zeros(capacity, dtype=np.int64)  # microseconds since the epoch

    _COLUMNS = ("ids", "alive", "price", "bedrooms", "bathrooms", "area", "year", "property_type", "listing_type",
                "features", "lng", "lat", "published")

    # --- keeping it current ---------------------------------------------------------------------

    def refresh(self):
        """Bring the arrays up to the database's latest committed state (one small statement
        when nothing changed). Must not run inside a transaction."""
        with self._lock:
            stale = time.monotonic() - self._refreshed > FULL_RELOAD_AFTER_SECONDS
            if self._seen is None or stale:
                self._reload()
                return
            with connection.cursor() as cursor:
                cursor.execute(CHANGES_SQL, {"seen": self._seen})
                seen, changed, truncated = cursor.fetchone()
                if truncated:
                    self._reload()
                    return
                if changed:
                    cursor.execute(f"{ROW_SQL} WHERE l.id = ANY(%s) AND l.status = 'active'", [changed])
                    rows = cursor.fetchall()
                    for listing_id in changed:
                        self._remove(listing_id)
                    self._add(rows)
                    if self.keywords:
                        self._update_keyword_sets(cursor, changed, seen)
            self._seen, self._refreshed = seen, time.monotonic()

    def _reload(self):
        with connection.cursor() as cursor:
            # The snapshot first, the rows after (a later snapshot): a change committed in
            # between is in the rows and is also re-read next time, which is harmless.
            cursor.execute("SELECT pg_current_snapshot()::text")
            seen = cursor.fetchone()[0]
            cursor.execute(f"{ROW_SQL} WHERE l.status = 'active' ORDER BY l.id")
            rows = cursor.fetchall()
        self._clear()
        self.usable = True
        self._add(rows)
        self._seen, self._refreshed = seen, time.monotonic()

    def _remove(self, listing_id):
        if listing_id is not None and listing_id < len(self.position):
            row = self.position[listing_id]
            if row >= 0:
                self.alive[row] = False
                self.position[listing_id] = -1

    def _grow(self, rows_needed, max_id):
        if max_id >= len(self.position):
            position = np.full(max(max_id + 1, 2 * len(self.position)), -1, dtype=np.int64)
            position[: len(self.position)] = self.position
            self.position = position
        if self.size + rows_needed > len(self.ids):
            capacity = max(self.size + rows_needed, 2 * len(self.ids))
            for name in self._COLUMNS:
                old = getattr(self, name)
                new = np.zeros(capacity, dtype=old.dtype)
                new[: self.size] = old[: self.size]
                setattr(self, name, new)

    def _add(self, rows):
        if not rows:
            return
        if self.size and (self.size - int(self.alive[: self.size].sum())) > self.size // 2:
            self._compact()
        self._grow(len(rows), max(row[0] for row in rows))
        start, end = self.size, self.size + len(rows)
        ids, price, beds, baths, area, year, ptype, ltype, features, lng, lat, published = zip(*rows, strict=True)
        self.ids[start:end] = ids
        self.alive[start:end] = True
        self.price[start:end] = price
        self.bedrooms[start:end] = beds
        self.bathrooms[start:end] = baths
        self.area[start:end] = [NULL if value is None else value for value in area]
        self.year[start:end] = [NULL if value is None else value for value in year]
        self.property_type[start:end] = [self.property_types.code(value) for value in ptype]
        self.listing_type[start:end] = [self.listing_types.code(value) for value in ltype]
        masks = []
        for names in features:
            mask = 0
            for name in names or ():
                mask |= 1 << self.feature_names.code(name)
            masks.append(mask)
        if len(self.feature_names.values) > MAX_FEATURES:
            self.usable = False
            masks = [0] * len(masks)
        self.features[start:end] = np.array(masks, dtype=np.uint64)
        self.lng[start:end] = lng
        self.lat[start:end] = lat
        self.published[start:end] = published
        self.position[np.asarray(ids, dtype=np.int64)] = np.arange(start, end)
        self.size = end

    def _compact(self):
        keep = np.flatnonzero(self.alive[: self.size])
        for name in self._COLUMNS:
            column = getattr(self, name)
            column[: len(keep)] = column[keep]
        self.size = len(keep)
        self.alive[self.size:] = False
        self.position[:] = -1
        self.position[self.ids[: self.size]] = np.arange(self.size)

    # --- counting -------------------------------------------------------------------------------

    def rows_for_ids(self, ids):
        """A mask of the rows of these listing ids (ids the snapshot does not hold are left out)."""
        mask = np.zeros(self.size, dtype=bool)
        ids = np.asarray(ids, dtype=np.int64)
        ids = ids[(ids >= 0) & (ids < len(self.position))]
        rows = self.position[ids]
        mask[rows[rows >= 0]] = True
        return mask

    def base_mask(self, query: SearchQuery):
        """Rows passing every filter except the four that have facets, keywords, radius and polygon."""
        n = self.size
        mask = self.alive[:n].copy()
        if query.min_price is not None:
            mask &= self.price[:n] >= cents(query.min_price, ROUND_CEILING)
        if query.max_price is not None:
            mask &= self.price[:n] <= cents(query.max_price, ROUND_FLOOR)
        if query.min_baths is not None:
            mask &= self.bathrooms[:n] >= query.min_baths
        if query.min_area is not None:
            mask &= (self.area[:n] != NULL) & (self.area[:n] >= cents(query.min_area, ROUND_CEILING))
        if query.max_area is not None:
            mask &= (self.area[:n] != NULL) & (self.area[:n] <= cents(query.max_area, ROUND_FLOOR))
        if query.min_year is not None:
            mask &= (self.year[:n] != NULL) & (self.year[:n] >= query.min_year)
        if query.max_year is not None:
            mask &= (self.year[:n] != NULL) & (self.year[:n] <= query.max_year)
        if query.bbox:
            # The same planar test as the SQL backend's, on the same doubles.
            west, south, east, north = query.bbox
            lng, lat = self.lng[:n], self.lat[:n]
            mask &= (lng >= west) & (lng <= east) & (lat >= south) & (lat <= north)
        return mask

    def near(self, rows, lng, lat, metres):
        """(inside, edge): of the rows of the mask `rows`, the indexes of those surely within
        `metres` of the point, and of those too near the circle's edge for a sphere's distance to
        tell (PostGIS decides them)."""
        reach = np.degrees(metres * (1 + SPHERE_ERROR) / EARTH_RADIUS_M)
        n = self.size
        candidates = np.flatnonzero(rows & (np.abs(self.lat[:n] - lat) <= reach))
        haversine = self._haversine(candidates, lng, lat)

        def bound(distance):  # the haversine of a distance (d = 2R asin(sqrt(h)))
            return np.sin(min(distance / (2 * EARTH_RADIUS_M), np.pi / 2)) ** 2

        inner, outer = bound(metres * (1 - SPHERE_ERROR)), bound(metres * (1 + SPHERE_ERROR))
        return candidates[haversine <= inner], candidates[(haversine > inner) & (haversine <= outer)]

    def sphere_distances(self, rows, lng, lat):
        """Distances in metres on the sphere from the point to these rows (indexes)."""
        return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(self._haversine(rows, lng, lat), 1.0)))

    def _haversine(self, rows, lng, lat):
        phi, phi0 = np.radians(self.lat[rows]), np.radians(lat)
        return (np.sin((phi - phi0) / 2) ** 2
                + np.cos(phi0) * np.cos(phi) * np.sin(np.radians(self.lng[rows] - lng) / 2) ** 2)

    def counts(self, query: SearchQuery, base):
        """(total, facets, matching rows) over the rows of `base`, each facet counted with every
        filter but its own."""
        n = self.size
        flags = {}
        if query.property_types:
            codes = [self.property_types.by_value[value] for value in query.property_types
                     if value in self.property_types.by_value]
            flags["property_type"] = np.isin(self.property_type[:n], codes)
        if query.listing_types:
            codes = [self.listing_types.by_value[value] for value in query.listing_types
                     if value in self.listing_types.by_value]
            flags["listing_type"] = np.isin(self.listing_type[:n], codes)
        if query.min_beds is not None:
            flags["bedrooms"] = self.bedrooms[:n] >= query.min_beds
        if query.features:
            if all(name in self.feature_names.by_value for name in query.features):
                wanted = np.uint64(sum(1 << self.feature_names.by_value[name] for name in query.features))
                flags["features"] = (self.features[:n] & wanted) == wanted
            else:
                flags["features"] = np.zeros(n, dtype=bool)

        def rows_but(name):
            mask = base.copy()
            for other, flag in flags.items():
                if other != name:
                    mask &= flag
            return mask

        facets = {}
        for name, column, codes in (("property_type", self.property_type, self.property_types),
                                    ("listing_type", self.listing_type, self.listing_types)):
            counted = np.bincount(column[:n][rows_but(name)], minlength=len(codes.values))
            facets[name] = {codes.values[code]: int(count) for code, count in enumerate(counted) if count}
        counted = np.bincount(self.bedrooms[:n][rows_but("bedrooms")])
        facets["bedrooms"] = {str(beds): int(count) for beds, count in enumerate(counted) if count}
        masks = self.features[:n][rows_but("features")]
        facets["features"] = {}
        for code, name in enumerate(self.feature_names.values):
            count = int(np.count_nonzero(masks & np.uint64(1 << code)))
            if count:
                facets["features"][name] = count
        matching = rows_but(None)
        return int(np.count_nonzero(matching)), facets, matching

    def page(self, matching, sort, limit, offset):
        """The ids of one page of the `matching` rows, in the SQL backend's order for `sort`
        (newest, price_asc, price_desc; ties broken by id the same way)."""
        return self.ordered(matching, sort, count=offset + limit)[offset:].tolist()

    def published_of(self, ids):
        """The publication times (microseconds) of these listing ids (held by the snapshot)."""
        return self.published[self.position[np.asarray(ids, dtype=np.int64)]]

    def ordered(self, matching, sort, count=None):
        """The ids of the `matching` rows in the SQL backend's order for `sort` (the first
        `count` of them: only the rows that can be among those are sorted)."""
        rows = np.flatnonzero(matching)
        if sort not in ("newest", "price_asc", "price_desc"):
            raise ValueError(f"the snapshot cannot order by {sort}")
        if count is not None and count < len(rows):
            if count <= 0:
                return rows[:0]
            # Keep the rows whose first key is at least as good as the count-th best (ties
            # included; the id breaks them below).
            if sort == "newest":
                key = self.published[rows]
                rows = rows[key >= np.partition(key, len(key) - count)[len(key) - count]]
            elif sort == "price_asc":
                key = self.price[rows]
                rows = rows[key <= np.partition(key, count - 1)[count - 1]]
            else:
                key = self.price[rows]
                rows = rows[key >= np.partition(key, len(key) - count)[len(key) - count]]
        ids, price, published = self.ids[rows], self.price[rows], self.published[rows]
        if sort == "newest":
            order = np.lexsort((-ids, -published))
        elif sort == "price_asc":
            order = np.lexsort((ids, price))
        else:
            order = np.lexsort((-ids, -price))
        return ids[order][:count]


_snapshot = ListingSnapshot()


# --- keyword sets shared between processes -----------------------------------------------------
# A common word's match set costs tens of milliseconds to read (every matching row's page). The
# first process to read one leaves it in Redis with the database snapshot it was read at; the
# others take it from there and bring it up to date from the change log (the listings changed
# since, tested again), so each set is read once for all processes rather than once by each.

SHARED_KEYWORD_PREFIX = "search:keyword-set:v1"
SHARE_AGAIN_AFTER_CHANGES = 500  # a copy this far behind is replaced by the brought-up-to-date one

SHARED_CHANGES_SQL = """
    WITH changed AS (
        SELECT DISTINCT c.listing_id FROM search_listing_change c
         WHERE c.xid >= pg_snapshot_xmin(%(at)s::pg_snapshot) AND NOT pg_visible_in_snapshot(c.xid, %(at)s::pg_snapshot)
    )
    SELECT pg_current_snapshot()::text,
           EXISTS (SELECT 1 FROM changed WHERE listing_id IS NULL),
           ARRAY(SELECT listing_id FROM changed WHERE listing_id IS NOT NULL),
           ARRAY(SELECT l.id FROM changed JOIN listings_listing l ON l.id = changed.listing_id
                  WHERE l.status = 'active'
                    AND l.search_vector @@ websearch_to_tsquery(%(config)s::regconfig, %(text)s))
"""


def _shared_key(tsquery_text):
    # The database's own oid in the key: a database recreated under the same name (tests, the
    # benchmark) does not inherit the sets of its predecessor.
    global _database_oid
    if _database_oid is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
            _database_oid = cursor.fetchone()[0]
    digest = hashlib.sha256(tsquery_text.encode()).hexdigest()[:32]
    return f"{SHARED_KEYWORD_PREFIX}:{_database_oid}:{digest}"


_database_oid = None


def share_keyword_set(tsquery_text, found):
    """Leave a match set (with the ranks known) for the other processes."""
    packed = found.ids.astype("<i4" if not len(found.ids) or found.ids.max() < 2**31 else "<i8")
    entry = (found.at, time.time(), packed.dtype.str, packed.tobytes(), found.ranks.astype("<f4").tobytes())
    with contextlib.suppress(RedisError):  # sharing is an optimisation: without Redis, each reads its own
        cache.set(_shared_key(tsquery_text), entry, int(FULL_RELOAD_AFTER_SECONDS))


def shared_keyword_set(tsquery_text):
    """The match set another process left, brought up to the database's latest committed state
    (the ranks of the listings changed since forgotten), or None (none left, too old for the
    change log, or Redis unavailable)."""
    try:
        entry = cache.get(_shared_key(tsquery_text))
    except RedisError:
        return None
    if entry is None or time.time() - entry[1] > FULL_RELOAD_AFTER_SECONDS:
        return None
    at, _, dtype, packed_ids, packed_ranks = entry
    with connection.cursor() as cursor:
        cursor.execute(SHARED_CHANGES_SQL, {"at": at, "config": TSCONFIG, "text": tsquery_text})
        now, truncated, changed, matched = cursor.fetchone()
    if truncated:
        return None
    ids = np.frombuffer(packed_ids, dtype=dtype).astype(np.int64)
    ranks = np.frombuffer(packed_ranks, dtype="<f4").astype(np.float32)
    if changed:
        stays = ~np.isin(ids, np.array(changed, dtype=np.int64))
        matched = np.array(matched, dtype=np.int64)
        found = KeywordSet(np.concatenate([ids[stays], matched]),
                           np.concatenate([ranks[stays], np.full(len(matched), np.nan, dtype=np.float32)]), now)
        if len(changed) >= SHARE_AGAIN_AFTER_CHANGES:
            share_keyword_set(tsquery_text, found)
        return found
    return KeywordSet(ids, ranks, now)


def current():
    """The process's snapshot, brought up to date; None inside a transaction or when unusable."""
    if connection.in_atomic_block:
        return None
    _snapshot.refresh()
    return _snapshot if _snapshot.usable else None


def prune_changes(*, older_than_seconds=CHANGE_RETENTION_SECONDS):
    """Delete change rows nobody needs any more (every snapshot older than half the retention
    reloads in full)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM search_listing_change WHERE changed_at < now() - make_interval(secs => %s)",
                       [older_than_seconds])
        return cursor.rowcount
