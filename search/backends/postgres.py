"""The PostgreSQL search backend (the default): full text on a stored weighted tsvector with a
GIN index, typo tolerance by correcting keywords against a trigram-indexed vocabulary,
PostGIS geography for radius, box and polygon, facets by one grouping-sets aggregation.

Without the process's column snapshot (inside a transaction, or SEARCH_SNAPSHOT off), three
statements per search: keyword correction (only with keywords), the page, and the counts (total
and every facet in one pass). With it (search/snapshot.py), the counts and most pages come from
the snapshot, and PostgreSQL is asked only what it alone knows: keyword correction, a keyword's
match set and ranks (kept and shared between processes), the rows near a radius's edge, the
page's distances, a polygon. Every value is a bound parameter.
"""

import re

import numpy as np
from django.conf import settings
from django.db import connection

from search.query import SearchQuery, SearchResult
from search.snapshot import SPHERE_ERROR

# Relevance ranks the most recent matches only (the full-text score of every match of a
# common word would cost more than the page is worth); results beyond this window follow in
# newest order, so pagination still visits every match exactly once.
RANK_WINDOW = 1000
MIN_WORD_FOR_CORRECTION = 4
SNAPSHOT_SORTS = ("newest", "price_asc", "price_desc")
TSCONFIG = "english"


class Scored:
    """What a statement read per listing id (a rank or a distance), looked up by id."""

    def __init__(self, ids, values):
        ids, values = np.asarray(ids, dtype=np.int64), np.asarray(values, dtype=np.float64)
        order = np.argsort(ids, kind="stable")
        self.ids, self.values = ids[order], values[order]

    def of(self, ids):
        """The values of these ids (each one read by the statement)."""
        return self.values[np.searchsorted(self.ids, ids)]


class Conditions:
    """SQL fragments with their parameters, joined with AND."""

    def __init__(self):
        self.parts, self.params = [], []

    def add(self, sql, *params):
        self.parts.append(sql)
        self.params.extend(params)

    def sql(self):
        return " AND ".join(self.parts) if self.parts else "TRUE"


def correct_keywords(text):
    """The keywords with each unknown word replaced by the most similar known one.

    Returns (corrected text, whether it holds any searchable lexeme).
    """
    words = re.findall(r"[^\W_]+", text.lower())
    if not words:
        return "", False
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT w.word, k.known,
                   -- Known words are not looked up in the trigram index (most of a search's words).
                   CASE WHEN k.known OR char_length(w.word) < %s THEN NULL ELSE
                       (SELECT t.word FROM search_searchterm t WHERE t.word %% w.word
                         ORDER BY similarity(t.word, w.word) DESC, t.word LIMIT 1) END AS suggestion,
                   numnode(websearch_to_tsquery(%s::regconfig, %s)) > 0 AS searchable
              FROM unnest(%s::text[]) WITH ORDINALITY AS w(word, n)
             CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM search_searchterm t WHERE t.word = w.word) AS known) k
             ORDER BY w.n
            """,
            # The words, not the raw text: it is what gets searched, and the raw text may hold
            # characters PostgreSQL refuses in a string (NUL).
            [MIN_WORD_FOR_CORRECTION, TSCONFIG, " ".join(words), words],
        )
        rows = cursor.fetchall()
    corrected = [word if known or not suggestion else suggestion for word, known, suggestion, _ in rows]
    return " ".join(corrected), bool(rows and rows[0][3])


def _point_sql():
    return "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography"


def _base_conditions(query: SearchQuery, tsquery_text):
    """Every filter except the four that have facets."""
    where = Conditions()
    where.add("l.status = 'active'")
    if query.min_price is not None:
        where.add("l.price >= %s", query.min_price)
    if query.max_price is not None:
        where.add("l.price <= %s", query.max_price)
    if query.min_baths is not None:
        where.add("l.bathrooms >= %s", query.min_baths)
    if query.min_area is not None:
        where.add("l.area_sqm >= %s", query.min_area)
    if query.max_area is not None:
        where.add("l.area_sqm <= %s", query.max_area)
    if query.min_year is not None:
        where.add("l.year_built >= %s", query.min_year)
    if query.max_year is not None:
        where.add("l.year_built <= %s", query.max_year)
    if tsquery_text:
        where.add("l.search_vector @@ websearch_to_tsquery(%s::regconfig, %s)", TSCONFIG, tsquery_text)
    if query.has_point:
        # ST_DWithin on the geography column: the GiST index, distances in metres.
        where.add(f"ST_DWithin(l.location, {_point_sql()}, %s)", query.lng, query.lat, query.radius_km * 1000)
    # Boxes and polygons are drawn on a map: their edges are straight in longitude/latitude (as
    # in Elasticsearch), not geodesics, which bow away from the parallels (by ~1 km on a box six
    # degrees wide: homes near its edge went missing) and cannot span 180 degrees (an error).
    # The exact test is planar; `&&` against the points bounding the shape uses the index.
    if query.bbox:
        west, south, east, north = query.bbox
        where.add("l.location && ST_GeomFromText(%s, 4326)::geography", _bounding_points(west, south, east, north))
        where.add("ST_X(l.location::geometry) BETWEEN %s AND %s AND ST_Y(l.location::geometry) BETWEEN %s AND %s",
                  west, east, south, north)
    if query.polygon:
        lngs, lats = [lng for lng, _ in query.polygon], [lat for _, lat in query.polygon]
        where.add("l.location && ST_GeomFromText(%s, 4326)::geography",
                  _bounding_points(min(lngs), min(lats), max(lngs), max(lats)))
        where.add("ST_Intersects(l.location::geometry, ST_GeomFromText(%s, 4326))", query.polygon_geometry().wkt)
    return where


def _bounding_points(west, south, east, north):
    """A MULTIPOINT (WKT) whose geocentric box (what geography `&&` compares) is exactly that of
    the longitude/latitude rectangle: its corners, plus where the rectangle reaches furthest
    along an axis inside it (longitudes 0, ±90, ±180; the equator)."""
    lngs = sorted({west, east, *(v for v in (-180, -90, 0, 90, 180) if west < v < east)})
    lats = sorted({south, north, *((0,) if south < 0 < north else ())})
    return "MULTIPOINT(" + ", ".join(f"{lng:.9f} {lat:.9f}" for lng in lngs for lat in lats) + ")"


def _facet_conditions(query: SearchQuery):
    """(name → (sql, params)) of the filters that have facets; TRUE when unset."""
    facets = {"property_type": ("TRUE", []), "listing_type": ("TRUE", []), "bedrooms": ("TRUE", []),
              "features": ("TRUE", [])}
    if query.property_types:
        facets["property_type"] = ("l.property_type = ANY(%s)", [list(query.property_types)])
    if query.listing_types:
        facets["listing_type"] = ("l.listing_type = ANY(%s)", [list(query.listing_types)])
    if query.min_beds is not None:
        facets["bedrooms"] = ("l.bedrooms >= %s", [query.min_beds])
    if query.features:
        facets["features"] = ("l.features @> %s::varchar[]", [list(query.features)])
    return facets


def _all_but(facets, *excluded):
    parts = [(sql, params) for name, (sql, params) in facets.items() if name not in excluded]
    return " AND ".join(sql for sql, _ in parts), [p for _, params in parts for p in params]


class PostgresBackend:
    name = "postgres"

    def __init__(self, snapshot=None):
        # Counts come from the process's column snapshot (search/snapshot.py) outside
        # transactions; `snapshot` (a callable returning one, or None) replaces it in tests.
        self.snapshot = snapshot

    def search(self, query: SearchQuery) -> SearchResult:
        tsquery_text = ""
        if query.q:
            corrected, searchable = correct_keywords(query.q)
            tsquery_text = corrected if searchable else ""
        base = _base_conditions(query, tsquery_text)
        facets = _facet_conditions(query)
        every_sql, every_params = _all_but(facets)
        snapshot = self._snapshot()
        if snapshot is None:
            ids, distances = self._page(query, base, every_sql, every_params, tsquery_text)
            selective = bool(tsquery_text or query.has_point or query.bbox or query.polygon)
            total, facet_counts = self._counts(base, facets, selective)
            return SearchResult(ids=ids, total=total, facets=facet_counts, distances_km=distances)

        sort = self._sort(query, tsquery_text)
        total, facet_counts, matching, scored = self._counts_from_snapshot(snapshot, query, base, tsquery_text, sort)
        if sort in SNAPSHOT_SORTS:
            ids = snapshot.page(matching, sort, query.page_size, query.offset)
        elif sort == "relevance":
            ids = self._ranked_page(snapshot, matching, query, tsquery_text, scored)
        elif sort == "distance" and query.has_point:
            ids, distances = self._nearest_page(snapshot, matching, query, scored)
            return SearchResult(ids=ids, total=total, facets=facet_counts, distances_km=distances)
        else:
            ids, distances = self._page(query, base, every_sql, every_params, tsquery_text)
            return SearchResult(ids=ids, total=total, facets=facet_counts, distances_km=distances)
        return SearchResult(ids=ids, total=total, facets=facet_counts, distances_km=self._distances(query, ids))

    def _ranked_page(self, snapshot, matching, query, tsquery_text, scored):
        """`_page`'s relevance order: the window of the most recent matches, taken from the
        snapshot, ranked by `ts_rank_cd` (from `scored` when the matching statement read the
        ranks, else from the snapshot's kept keyword set), then the rest in newest order."""
        limit, offset = query.page_size, query.offset
        newest = snapshot.ordered(matching, "newest", count=max(RANK_WINDOW, offset + limit))
        ids = []
        if offset < RANK_WINDOW:
            window = newest[:RANK_WINDOW]
            ranks = scored.of(window) if scored is not None else snapshot.keyword_ranks(tsquery_text, window)
            order = np.lexsort((-window, -snapshot.published_of(window), -ranks.astype(np.float64)))
            ids = window[order][offset:offset + min(limit, RANK_WINDOW - offset)].tolist()
        if offset + limit > RANK_WINDOW:
            start = RANK_WINDOW + max(0, offset - RANK_WINDOW)
            ids += newest[start:start + limit - len(ids)].tolist()
        return ids

    def _within_radius(self, snapshot, rows, query):
        """The rows of the mask `rows` within the radius, as `ST_DWithin` on the geography decides:
        by the snapshot's coordinates, and by PostGIS for the rows near the circle's edge."""
        inside, edge = snapshot.near(rows, query.lng, query.lat, query.radius_km * 1000)
        within = np.zeros(snapshot.size, dtype=bool)
        within[inside] = True
        if len(edge):
            # The same ST_DWithin, on rows fetched by id: the planner would otherwise intersect
            # with the location index over the whole circle's box.
            ((ids,),) = self._fetch(
                "WITH edge AS MATERIALIZED (SELECT l.id, l.location FROM listings_listing l WHERE l.id = ANY(%s)) "
                f"SELECT array_agg(edge.id) FROM edge WHERE ST_DWithin(edge.location, {_point_sql()}, %s)",
                [snapshot.ids[edge].tolist(), query.lng, query.lat, query.radius_km * 1000])
            within |= snapshot.rows_for_ids(ids or [])
        return within

    def _nearest_page(self, snapshot, matching, query, scored):
        """`_page`'s distance order (`ST_Distance`, then id) over the matching rows. Without the
        distances read already (`scored`), the page's candidates are found by their distances on
        the sphere: every row among the nearest by the spheroid is within the sphere's error of
        the k-th nearest by the sphere (k = the rows up to the page's end); PostGIS measures those."""
        rows = np.flatnonzero(matching)
        if scored is None:
            if not len(rows):
                return [], {}
            k = query.offset + query.page_size
            if len(rows) > k:
                sphere = snapshot.sphere_distances(rows, query.lng, query.lat)
                kth = np.partition(sphere, k - 1)[k - 1]
                rows = rows[sphere <= kth * (1 + SPHERE_ERROR) / (1 - SPHERE_ERROR) + 1e-6]
            ((ids, metres),) = self._fetch(
                f"SELECT array_agg(l.id), array_agg(ST_Distance(l.location, {_point_sql()})) "
                "FROM listings_listing l WHERE l.id = ANY(%s)", [query.lng, query.lat, snapshot.ids[rows].tolist()])
            scored = Scored(ids or [], metres or [])
            rows = rows[np.isin(snapshot.ids[rows], scored.ids)]  # gone meanwhile: not on this page
        ids = snapshot.ids[rows]
        metres = scored.of(ids)
        order = np.lexsort((ids, metres))[query.offset:query.offset + query.page_size]
        return ids[order].tolist(), {int(pk): round(float(m) / 1000, 3) for pk, m in zip(ids[order], metres[order],
                                                                                          strict=True)}

    def _distances(self, query, ids):
        """The page's distances from the point in km (by the same `ST_Distance` as `_page`)."""
        if not query.has_point or not ids:
            return {}
        rows = self._fetch(f"SELECT l.id, ST_Distance(l.location, {_point_sql()}) FROM listings_listing l "
                           "WHERE l.id = ANY(%s)", [query.lng, query.lat, ids])
        return {pk: round(metres / 1000, 3) for pk, metres in rows if metres is not None}

    @staticmethod
    def _sort(query, tsquery_text):
        """Relevance needs keywords to rank by; without (none, or none searchable), newest."""
        return query.effective_sort if tsquery_text or query.effective_sort != "relevance" else "newest"

    def _snapshot(self):
        if self.snapshot is not None:
            return self.snapshot()
        if not settings.SEARCH_SNAPSHOT:
            return None
        from search import snapshot

        return snapshot.current()

    def _counts_from_snapshot(self, snapshot, query, base, tsquery_text, sort):
        """The non-spatial filters and the box are applied to the snapshot's columns; a radius
        too (`_within_radius`: PostGIS decides only the rows near its edge); keywords by the
        snapshot's kept keyword sets. A polygon (PostGIS's own test) is applied by one statement
        returning the matching ids, with every other non-facet filter (keywords too: the indexes
        intersect), and what the page is ordered by when the snapshot does not hold it (the rank
        or the distance): the page then needs no statement of its own.

        Returns (total, facets, matching rows, Scored or None)."""
        rows = snapshot.base_mask(query)
        scored = None
        if query.polygon:
            value, params = "NULL", []
            if sort == "relevance":
                value, params = "ts_rank_cd(l.search_vector, websearch_to_tsquery(%s::regconfig, %s))", [
                    TSCONFIG, tsquery_text]
            elif sort == "distance" and query.has_point:
                value, params = f"ST_Distance(l.location, {_point_sql()})", [query.lng, query.lat]
            ((ids, values),) = self._fetch(
                f"SELECT array_agg(l.id), {f'array_agg({value})' if params else 'NULL'} "
                f"FROM listings_listing l WHERE {base.sql()}", [*params, *base.params])
            rows &= snapshot.rows_for_ids(ids or [])
            if params:
                scored = Scored(ids or [], values or [])
        else:
            if query.has_point:
                rows = self._within_radius(snapshot, rows, query)
            if tsquery_text:
                rows &= snapshot.rows_for_ids(snapshot.keyword_ids(tsquery_text))
        return *snapshot.counts(query, rows), scored

    # --- the page -----------------------------------------------------------------------------

    def _page(self, query, base, filter_sql, filter_params, tsquery_text):
        where = f"{base.sql()} AND {filter_sql}"
        params = [*base.params, *filter_params]
        distance_sql, distance_params = "NULL::float8", []
        if query.has_point:
            distance_sql, distance_params = f"ST_Distance(l.location, {_point_sql()})", [query.lng, query.lat]
        sort = self._sort(query, tsquery_text)
        limit, offset = query.page_size, query.offset
        order = {
            "newest": "l.published_at DESC, l.id DESC",
            "price_asc": "l.price ASC, l.id ASC",
            "price_desc": "l.price DESC, l.id DESC",
            "distance": "distance ASC, l.id ASC",
        }
        rows = []
        if sort == "relevance":
            if offset < RANK_WINDOW:
                rows += self._fetch(
                    f"""
                    SELECT id, distance FROM (
                        SELECT l.id, l.published_at, {distance_sql} AS distance,
                               ts_rank_cd(l.search_vector, websearch_to_tsquery(%s::regconfig, %s)) AS rank
                          FROM listings_listing l WHERE {where}
                         ORDER BY l.published_at DESC, l.id DESC LIMIT %s
                    ) window_ ORDER BY rank DESC, published_at DESC, id DESC LIMIT %s OFFSET %s
                    """,
                    [*distance_params, TSCONFIG, tsquery_text, *params, RANK_WINDOW,
                     min(limit, RANK_WINDOW - offset), offset],
                )
            if offset + limit > RANK_WINDOW:
                rest_offset = max(0, offset - RANK_WINDOW)
                rows += self._fetch(
                    f"""SELECT l.id, {distance_sql} AS distance FROM listings_listing l WHERE {where}
                        ORDER BY {order['newest']} LIMIT %s OFFSET %s""",
                    [*distance_params, *params, limit - len(rows), RANK_WINDOW + rest_offset],
                )
        else:
            rows = self._fetch(
                f"""SELECT l.id, {distance_sql} AS distance FROM listings_listing l WHERE {where}
                    ORDER BY {order[sort]} LIMIT %s OFFSET %s""",
                [*distance_params, *params, limit, offset],
            )
        ids = [row[0] for row in rows]
        distances = {row[0]: round(row[1] / 1000, 3) for row in rows if row[1] is not None}
        return ids, distances

    @staticmethod
    def _fetch(sql, params):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    # --- total and facets ---------------------------------------------------------------------

    def _counts(self, base, facets, selective):
        """Each facet counted with every filter but its own, the total with all of them, in one
        statement over the rows matching the non-facet filters.

        With keywords or a location those rows come from the heap (bitmap scans): they are
        read once and materialised. Without, two index-only scans of the narrow facet index
        (listing_search_facets_idx) cost less than materialising every active listing.
        """
        flags = {name: sql for name, (sql, _) in facets.items()}
        flag_params = [p for _, params in facets.values() for p in params]
        select_flags = ", ".join(f"({sql}) AS f_{name}" for name, sql in flags.items())

        def others(name):
            return " AND ".join(f"f_{other}" for other in flags if other != name) or "TRUE"

        every = " AND ".join(f"f_{name}" for name in flags)
        rows = self._fetch(
            f"""
            WITH base AS {"MATERIALIZED" if selective else "NOT MATERIALIZED"} (
                SELECT l.property_type, l.listing_type, l.bedrooms, l.features, {select_flags}
                  FROM listings_listing l WHERE {base.sql()}
            )
            SELECT 'grouped', property_type, listing_type, bedrooms, NULL,
                   GROUPING(property_type), GROUPING(listing_type), GROUPING(bedrooms),
                   count(*) FILTER (WHERE {others('property_type')}),
                   count(*) FILTER (WHERE {others('listing_type')}),
                   count(*) FILTER (WHERE {others('bedrooms')}),
                   count(*) FILTER (WHERE {every})
              FROM base
             GROUP BY GROUPING SETS ((property_type), (listing_type), (bedrooms))
            UNION ALL
            SELECT 'feature', NULL, NULL, NULL, f, 1, 1, 1, 0, 0, 0, count(*)
              FROM base, unnest(base.features) AS f
             WHERE {others('features')}
             GROUP BY f
            """,
            [*flag_params, *base.params],
        )
        result = {"property_type": {}, "listing_type": {}, "bedrooms": {}, "features": {}}
        total = 0
        for kind, ptype, ltype, beds, feature, g_pt, g_lt, g_beds, c_pt, c_lt, c_beds, c_all in rows:
            if kind == "feature":
                result["features"][feature] = c_all
            elif not g_pt:
                total += c_all  # each row is in exactly one property type
                if c_pt:
                    result["property_type"][ptype] = c_pt
            elif not g_lt:
                if c_lt:
                    result["listing_type"][ltype] = c_lt
            elif not g_beds and c_beds:
                result["bedrooms"][str(beds)] = c_beds
        return total, result
