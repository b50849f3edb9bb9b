"""The Elasticsearch backend without a server: each contract case's request body against a
committed golden file, the rules the bodies follow, and a hand-written response parsed into the
SearchResult every backend returns.

Regenerate the golden files after a deliberate change with `UPDATE_GOLDEN=1 pytest
search/tests/test_elasticsearch_bodies.py`, then read the diff.
"""

import json
import os
from pathlib import Path

import pytest

from search.backends.elasticsearch import MAX_RESULT_WINDOW, ElasticsearchBackend
from search.query import SearchQuery, SearchResult
from search.tests import FakeElasticsearch
from search.tests.test_contract import CASES

GOLDEN = Path(__file__).parent / "golden"


def body_for(params):
    return ElasticsearchBackend().build_body(SearchQuery.from_params(params))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_contract_case_translates_to_its_golden_body(case):
    body = json.loads(json.dumps(body_for(case.params)))  # as sent: tuples become lists
    path = GOLDEN / f"{case.name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")

    assert path.exists(), f"no golden body for {case.name}: run with UPDATE_GOLDEN=1 and review it"
    assert body == json.loads(path.read_text())


def test_every_golden_file_belongs_to_a_case():
    assert {path.stem for path in GOLDEN.glob("*.json")} == {case.name for case in CASES}


def test_filters_are_in_filter_context_with_status_and_geo_last():
    body = body_for({"q": "garden loft", "min_price": "100000", "max_price": "900000", "min_baths": "1",
                     "max_year": "2000", "min_area": "50", "lat": "48.85", "lng": "2.35", "radius_km": "5",
                     "bbox": "2.3,48.8,2.4,48.9", "polygon": "2.3,48.8;2.4,48.8;2.4,48.9"})

    query = body["query"]["bool"]
    assert set(query) == {"must", "filter"}
    assert [m["multi_match"]["query"] for m in query["must"]] == ["garden", "loft"]  # every word must match
    assert all(m["multi_match"]["fuzziness"] == "AUTO" for m in query["must"])
    assert query["must"][0]["multi_match"]["fields"][:2] == ["title^3", "city^2"]
    kinds = [next(iter(clause)) for clause in query["filter"]]
    assert kinds == ["term", "range", "range", "range", "range", "geo_distance", "geo_bounding_box", "geo_shape"]
    assert query["filter"][0] == {"term": {"status": "active"}}
    assert query["filter"][1] == {"range": {"price": {"gte": 100000, "lte": 900000}}}
    assert body["track_total_hits"] is True
    assert body["script_fields"]["distance_km"]["script"]["params"] == {"lat": 48.85, "lon": 2.35}


def test_each_facet_is_counted_with_every_faceted_filter_but_its_own():
    body = body_for({"property_type": "house", "listing_type": "sale", "min_beds": "4", "features": "garden,pool"})

    filters = {
        "property_type": {"terms": {"property_type": ["house"]}},
        "listing_type": {"terms": {"listing_type": ["sale"]}},
        "bedrooms": {"range": {"bedrooms": {"gte": 4}}},
        "features": {"bool": {"filter": [{"term": {"features": "garden"}}, {"term": {"features": "pool"}}]}},
    }
    # Hits get every filter, after the aggregations have counted.
    assert body["post_filter"] == {"bool": {"filter": list(filters.values())}}
    assert body["query"]["bool"]["filter"] == [{"term": {"status": "active"}}]
    for name, aggregation in body["aggs"].items():
        assert aggregation["filter"]["bool"]["filter"] == [f for other, f in filters.items() if other != name]
        assert aggregation["aggs"]["values"]["terms"]["field"] == name


def test_without_faceted_filters_there_is_no_post_filter():
    body = body_for({"min_price": "1"})

    assert "post_filter" not in body
    assert all(agg["filter"] == {"bool": {"filter": []}} for agg in body["aggs"].values())


@pytest.mark.parametrize(("params", "sort"), [
    ({}, [{"published_at": {"order": "desc"}}, {"id": {"order": "desc"}}]),
    ({"q": "loft"}, [{"_score": {"order": "desc"}}, {"published_at": {"order": "desc"}}, {"id": {"order": "desc"}}]),
    ({"q": "!!!"}, [{"published_at": {"order": "desc"}}, {"id": {"order": "desc"}}]),  # no word to rank by
    ({"sort": "price_asc"}, [{"price": {"order": "asc"}}, {"id": {"order": "asc"}}]),
    ({"sort": "price_desc"}, [{"price": {"order": "desc"}}, {"id": {"order": "desc"}}]),
    ({"sort": "distance", "lat": "1", "lng": "2", "radius_km": "3"},
     [{"_geo_distance": {"location": {"lat": 1.0, "lon": 2.0}, "order": "asc", "unit": "km", "distance_type": "arc"}},
      {"id": {"order": "asc"}}]),
])
def test_sorts_end_with_the_id_like_postgresql(params, sort):
    assert body_for(params)["sort"] == sort


def test_a_clockwise_polygon_is_sent_counter_clockwise():
    clockwise = body_for({"polygon": "0,0;0,1;1,1;1,0"})
    counter = body_for({"polygon": "0,0;1,0;1,1;0,1"})

    ring = clockwise["query"]["bool"]["filter"][-1]["geo_shape"]["location"]["shape"]["coordinates"][0]
    assert ring == [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    assert clockwise == counter


@pytest.mark.parametrize(("page", "page_size", "start", "size"), [
    (1, 20, 0, 20), (3, 20, 40, 20), (100, 100, 9900, 100), (201, 50, 0, 0), (10_000, 100, 0, 0), (134, 75, 9975, 25),
])
def test_pages_stay_inside_the_result_window(page, page_size, start, size):
    body = body_for({"page": str(page), "page_size": str(page_size)})

    assert (body["from"], body["size"]) == (start, size)
    assert body["from"] + body["size"] <= MAX_RESULT_WINDOW


def test_building_a_body_is_pure():
    backend = ElasticsearchBackend(client=object())  # any use of the client would fail
    query = SearchQuery.from_params({"q": "loft", "lat": "48.85", "lng": "2.35", "radius_km": "5"})

    assert backend.build_body(query) == backend.build_body(query)
    json.dumps(backend.build_body(query))


# A response as Elasticsearch 9 answers body_for(RESPONSE_PARAMS) (written by hand, in its shape).
RESPONSE_PARAMS = {"lat": "48.853", "lng": "2.3499", "radius_km": "5", "sort": "distance", "property_type": "condo",
                   "page_size": "2"}
RESPONSE = {
    "took": 7, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
    "hits": {
        "total": {"value": 3, "relation": "eq"}, "max_score": None,
        "hits": [
            {"_index": "realio-listings", "_id": "363", "_score": None, "sort": [1.986012, 363],
             "fields": {"distance_km": [1.9860117323]}},
            {"_index": "realio-listings", "_id": "365", "_score": None, "sort": [4.9036, 365],
             "fields": {"distance_km": [4.90364521]}},
        ],
    },
    "aggregations": {
        "property_type": {"doc_count": 5, "values": {
            "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
            "buckets": [{"key": "apartment", "doc_count": 2}, {"key": "condo", "doc_count": 2},
                        {"key": "house", "doc_count": 1}]}},
        "listing_type": {"doc_count": 2, "values": {
            "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
            "buckets": [{"key": "rent", "doc_count": 1}, {"key": "sale", "doc_count": 1}]}},
        "bedrooms": {"doc_count": 2, "values": {
            "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
            "buckets": [{"key": 2, "doc_count": 2}]}},
        "features": {"doc_count": 2, "values": {
            "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
            "buckets": [{"key": "balcony", "doc_count": 1}, {"key": "elevator", "doc_count": 1},
                        {"key": "parking", "doc_count": 1}, {"key": "garden", "doc_count": 0}]}},
    },
}


def test_a_response_becomes_the_search_result_every_backend_returns():
    result = ElasticsearchBackend.parse(RESPONSE)

    assert result == SearchResult(
        ids=[363, 365], total=3,
        facets={"property_type": {"apartment": 2, "condo": 2, "house": 1}, "listing_type": {"rent": 1, "sale": 1},
                "bedrooms": {"2": 2}, "features": {"balcony": 1, "elevator": 1, "parking": 1}},
        distances_km={363: 1.986, 365: 4.904})


def test_a_response_without_hits_or_aggregations():
    result = ElasticsearchBackend.parse({"hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}})

    assert result == SearchResult(ids=[], total=0, facets={"property_type": {}, "listing_type": {}, "bedrooms": {},
                                                           "features": {}})


def test_search_sends_the_body_to_the_index_and_parses_the_answer():
    server = FakeElasticsearch(search_answer=RESPONSE)
    backend = ElasticsearchBackend(index="realio-listings", client=server.client)
    query = SearchQuery.from_params(RESPONSE_PARAMS)

    result = backend.search(query)

    (method, path, body), = server.requests
    assert (method, path) == ("POST", "/realio-listings/_search")
    assert body == json.loads(json.dumps(backend.build_body(query)))
    assert result.ids == [363, 365] and result.total == 3


@pytest.mark.django_db
def test_the_api_serves_elasticsearch_results_when_configured(settings, monkeypatch, api_client):
    from listings.tests.factories import ListingFactory
    from search.backends import elasticsearch as elasticsearch_backend

    first, second = ListingFactory(title="First"), ListingFactory(title="Second")
    answer = json.loads(json.dumps(RESPONSE))
    answer["hits"]["hits"][0]["_id"], answer["hits"]["hits"][1]["_id"] = str(second.pk), str(first.pk)
    server = FakeElasticsearch(search_answer=answer)
    settings.SEARCH_BACKEND = "elasticsearch"
    monkeypatch.setattr(elasticsearch_backend, "default_client", lambda: server.client)
    response = api_client.get("/api/v1/search/", RESPONSE_PARAMS)

    assert response.status_code == 200
    body = response.json()
    assert [(r["id"], r["distance_km"]) for r in body["results"]] == [(second.pk, 1.986), (first.pk, 4.904)]
    assert body["count"] == 3
    assert body["facets"]["property_type"] == {"apartment": 2, "condo": 2, "house": 1}
    assert server.searches() == [json.loads(json.dumps(body_for(RESPONSE_PARAMS)))]


def test_long_keywords_stay_within_the_servers_clause_limit():
    words = [f"w{n}" for n in range(40)]  # 199 characters: within the limit on q

    must = body_for({"q": " ".join(words[:5] + words)})["query"]["bool"]["must"]

    assert [m["multi_match"]["query"] for m in must] == words  # each word once, every one required
    assert [m["multi_match"]["fuzziness"] for m in must] == ["AUTO"] * 10 + [0] * 30
