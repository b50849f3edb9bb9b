"""The Elasticsearch search backend: the one SearchQuery as a bool query, facets as filter
aggregations, the same SearchResult as the PostgreSQL backend (the reference behaviour).

`build_body` is pure (no network) so each query's translation is tested against committed
golden JSON; `search` sends it. The body follows the PostgreSQL backend's semantics:

- every filter is in filter context (no scoring); `status: active` always; geo filters last
  (the most expensive); keyword words are each a `multi_match` in `must` (all words must
  match, each in any field, typos tolerated), as PostgreSQL ANDs the corrected words;
- the four faceted filters (property type, listing type, bedrooms, features) go to
  `post_filter`, so hits get every filter, while each facet is a `filter` aggregation holding
  every faceted filter but its own: a facet counted with every filter but its own;
- sorts end with the id so pages are stable, as in PostgreSQL; distances are in km.

`index`/`remove` keep the index in step with the database (search/indexing.py calls them
from the listing events and the reconcile job).
"""

import re
from itertools import pairwise

from django.conf import settings
from elasticsearch.helpers import bulk

from listings.models import Feature, Listing
from search.query import SearchQuery, SearchResult

# Elasticsearch refuses from + size beyond index.max_result_window (default 10,000).
MAX_RESULT_WINDOW = 10_000
KEYWORD_FIELDS = ["title^3", "city^2", "region^2", "street^2", "features.text", "description"]
FACET_SIZES = {
    "property_type": len(Listing.PropertyType.values),
    "listing_type": len(Listing.ListingType.values),
    "bedrooms": 100,  # min_beds goes up to 100
    "features": len(Feature.values),
}
MAX_FUZZY_WORDS = 10
DISTANCE_SCRIPT = "doc['location'].arcDistance(params.lat, params.lon) / 1000.0"


def default_client():
    """The client configured from ELASTICSEARCH_DSL (shared with django-elasticsearch-dsl's
    `search_index` command). Creating it connects to nothing."""
    from elasticsearch.dsl import connections

    try:
        return connections.get_connection()
    except KeyError:  # django_elasticsearch_dsl is not in INSTALLED_APPS: configure it here
        connections.configure(**settings.ELASTICSEARCH_DSL)
        return connections.get_connection()


def keyword_words(text):
    """The distinct words of the keywords, split as the PostgreSQL backend splits them."""
    return list(dict.fromkeys(re.findall(r"[^\W_]+", text.lower())))


def _number(value):
    """A Decimal as the JSON number it stands for (an int when whole: readable bodies)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _km(value):
    """A distance as Elasticsearch reads it ("5km", "0.25km"; never exponent notation)."""
    return f"{value:.6f}".rstrip("0").rstrip(".") + "km"


def _range(field, low=None, high=None):
    bounds = {}
    if low is not None:
        bounds["gte"] = _number(low) if hasattr(low, "to_integral_value") else low
    if high is not None:
        bounds["lte"] = _number(high) if hasattr(high, "to_integral_value") else high
    return {"range": {field: bounds}} if bounds else None


def _counter_clockwise(ring):
    """The ring in counter-clockwise order (the right-hand rule): Elasticsearch reads a
    clockwise ring wider than 180° as crossing the antimeridian; PostgreSQL never does."""
    area2 = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairwise(ring))
    return list(ring) if area2 >= 0 else list(reversed(ring))


class ElasticsearchBackend:
    name = "elasticsearch"

    def __init__(self, *, index=None, client=None):
        from search.documents import INDEX_NAME

        self.index_name = index or INDEX_NAME
        self._client = client

    @property
    def client(self):
        return self._client or default_client()

    # --- the request body ---------------------------------------------------------------------

    @staticmethod
    def base_filters(query: SearchQuery):
        """The filters without facets, in filter context, geo last."""
        filters = [{"term": {"status": Listing.Status.ACTIVE.value}}]
        for clause in (
            _range("price", query.min_price, query.max_price),
            _range("bathrooms", query.min_baths),
            _range("area_sqm", query.min_area, query.max_area),
            _range("year_built", query.min_year, query.max_year),
        ):
            if clause:
                filters.append(clause)
        if query.has_point:
            filters.append({"geo_distance": {"distance": _km(query.radius_km), "distance_type": "arc",
                                             "location": {"lat": query.lat, "lon": query.lng}}})
        if query.bbox:
            west, south, east, north = query.bbox
            filters.append({"geo_bounding_box": {"location": {"top_left": {"lat": north, "lon": west},
                                                              "bottom_right": {"lat": south, "lon": east}}}})
        if query.polygon:
            ring = [[lng, lat] for lng, lat in _counter_clockwise(query.polygon)]
            filters.append({"geo_shape": {"location": {"shape": {"type": "polygon", "coordinates": [ring]},
                                                       "relation": "intersects"}}})
        return filters

    @staticmethod
    def facet_filters(query: SearchQuery):
        """{facet: its filter clause} for the faceted filters that are set."""
        facets = {}
        if query.property_types:
            facets["property_type"] = {"terms": {"property_type": list(query.property_types)}}
        if query.listing_types:
            facets["listing_type"] = {"terms": {"listing_type": list(query.listing_types)}}
        if query.min_beds is not None:
            facets["bedrooms"] = {"range": {"bedrooms": {"gte": query.min_beds}}}
        if query.features:  # all of them
            facets["features"] = {"bool": {"filter": [{"term": {"features": f}} for f in query.features]}}
        return facets

    @staticmethod
    def sort(query: SearchQuery, words):
        sort = query.effective_sort
        if sort == "relevance" and not words:
            sort = "newest"  # as PostgreSQL: nothing to rank by
        newest = [{"published_at": {"order": "desc"}}, {"id": {"order": "desc"}}]
        return {
            "relevance": [{"_score": {"order": "desc"}}, *newest],
            "newest": newest,
            "price_asc": [{"price": {"order": "asc"}}, {"id": {"order": "asc"}}],
            "price_desc": [{"price": {"order": "desc"}}, {"id": {"order": "desc"}}],
            "distance": [{"_geo_distance": {"location": {"lat": query.lat, "lon": query.lng}, "order": "asc",
                                            "unit": "km", "distance_type": "arc"}},
                         {"id": {"order": "asc"}}],
        }[sort]

    def build_body(self, query: SearchQuery) -> dict:
        """The search request body for `query` (pure: no network)."""
        words = keyword_words(query.q)
        must = [
            {"multi_match": {"query": word, "fields": KEYWORD_FIELDS,
                             # Each fuzzy word expands to many terms: past a few, a long query would
                             # exceed the server's clause limit (an error), so the rest match exactly.
                             "fuzziness": "AUTO" if n < MAX_FUZZY_WORDS else 0,
                             "zero_terms_query": "all"}}
            for n, word in enumerate(words)
        ]
        bool_query = {"filter": self.base_filters(query)}
        if must:
            bool_query = {"must": must, **bool_query}
        facets = self.facet_filters(query)
        offset, size = query.offset, query.page_size
        if offset >= MAX_RESULT_WINDOW:  # beyond the window: the total and facets, no hits
            offset, size = 0, 0
        elif offset + size > MAX_RESULT_WINDOW:
            size = MAX_RESULT_WINDOW - offset
        body = {
            "query": {"bool": bool_query},
            "sort": self.sort(query, words),
            "from": offset,
            "size": size,
            "track_total_hits": True,
            "_source": False,
            "aggs": {
                name: {
                    "filter": {"bool": {"filter": [clause for other, clause in facets.items() if other != name]}},
                    "aggs": {"values": {"terms": {"field": name, "size": FACET_SIZES[name]}}},
                }
                for name in FACET_SIZES
            },
        }
        if facets:
            body["post_filter"] = {"bool": {"filter": list(facets.values())}}
        if query.has_point:
            body["script_fields"] = {"distance_km": {"script": {
                "source": DISTANCE_SCRIPT, "params": {"lat": query.lat, "lon": query.lng}}}}
        return body

    # --- searching ----------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> SearchResult:
        response = self.client.search(index=self.index_name, body=self.build_body(query))
        return self.parse(response)

    @staticmethod
    def parse(response) -> SearchResult:
        """A search response as the SearchResult every backend returns: facet values as
        strings (bedrooms too), zero counts left out, distances in km to the metre."""
        hits = response["hits"]
        ids, distances = [], {}
        for hit in hits["hits"]:
            pk = int(hit["_id"])
            ids.append(pk)
            distance = (hit.get("fields") or {}).get("distance_km")
            if distance:
                distances[pk] = round(float(distance[0]), 3)
        aggregations = response.get("aggregations") or {}
        facets = {
            name: {str(bucket["key"]): bucket["doc_count"]
                   for bucket in aggregations.get(name, {}).get("values", {}).get("buckets", [])
                   if bucket["doc_count"]}
            for name in FACET_SIZES
        }
        return SearchResult(ids=ids, total=hits["total"]["value"], facets=facets, distances_km=distances)

    # --- keeping the index current --------------------------------------------------------------

    def actions(self, listing_ids):
        """Bulk actions putting these listings' documents in their current state: an active
        listing is (re)indexed, anything else (deleted, draft, sold…) removed."""
        from search.documents import ListingDocument

        document = ListingDocument()
        found = Listing.objects.in_bulk(sorted(set(listing_ids)))
        for pk in sorted(set(listing_ids)):
            listing = found.get(pk)
            if listing is not None and document.should_index_object(listing):
                yield {"_op_type": "index", "_index": self.index_name, "_id": pk,
                       "_source": document.prepare(listing)}
            else:
                yield {"_op_type": "delete", "_index": self.index_name, "_id": pk}

    def index(self, listing_ids, *, refresh=False):
        """Bring these listings' documents up to date; returns the number of actions sent.

        Raises on a failed action or an unreachable server (callers retry).
        """
        return self._bulk(self.actions(listing_ids), refresh=refresh)

    def remove(self, listing_ids, *, refresh=False):
        """Delete these listings' documents (a missing one is not an error)."""
        return self._bulk(({"_op_type": "delete", "_index": self.index_name, "_id": pk}
                           for pk in sorted(set(listing_ids))), refresh=refresh)

    def _bulk(self, actions, *, refresh):
        actions = list(actions)
        if not actions:
            return 0
        # A delete of a document that is not there answers 404: nothing to do, not a failure.
        bulk(self.client, actions, ignore_status=(404,), refresh="wait_for" if refresh else False)
        return len(actions)

    def indexed_versions(self, *, after_pk, upto_pk=None, batch_size=1000):
        """(id, updated_at) of the indexed documents with after_pk < id <= upto_pk (no upper
        bound when None), in id order, read in keyset pages (`search_after`)."""
        bounds = {"gt": after_pk} if upto_pk is None else {"gt": after_pk, "lte": upto_pk}
        search_after = None
        while True:
            body = {"query": {"range": {"id": bounds}}, "sort": [{"id": {"order": "asc"}}],
                    "size": batch_size, "_source": ["updated_at"], "track_total_hits": False}
            if search_after is not None:
                body["search_after"] = search_after
            hits = self.client.search(index=self.index_name, body=body)["hits"]["hits"]
            for hit in hits:
                yield int(hit["_id"]), (hit.get("_source") or {}).get("updated_at")
            if len(hits) < batch_size:
                return
            search_after = hits[-1]["sort"]

    # --- the index itself (rebuilds and tests) ------------------------------------------------

    def create_index(self, **settings_):
        from search.documents import ListingDocument

        index = ListingDocument._index.clone(self.index_name)
        if settings_:
            index.settings(**settings_)
        index.create(using=self.client)

    def delete_index(self):
        self.client.options(ignore_status=404).indices.delete(index=self.index_name)

    def refresh(self):
        self.client.indices.refresh(index=self.index_name)
