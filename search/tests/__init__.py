"""Search tests. `FakeElasticsearch` stands in for an Elasticsearch server (none can run on
these machines) at the HTTP boundary: the real client, bulk helper and serialisers run, and the
requests they would send are recorded for the tests to assert on."""

import json
from collections import namedtuple

from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elasticsearch import Elasticsearch

# What a node answers the transport (elastic_transport's NodeApiResponse, which it does not export).
NodeResponse = namedtuple("NodeResponse", ["meta", "body"])


class _FakeNode(BaseNode):
    server = None  # set on the subclass each FakeElasticsearch makes

    def perform_request(self, method, target, body=None, headers=None, request_timeout=None):
        status, answer = self.server.handle(method, target, body)
        meta = ApiResponseMeta(status=status, http_version="1.1", duration=0.0, node=self.config,
                               headers=HttpHeaders({"content-type": "application/json",
                                                    "x-elastic-product": "Elasticsearch"}))
        return NodeResponse(meta, json.dumps(answer).encode())


class FakeElasticsearch:
    """An in-memory stand-in for one Elasticsearch server.

    Keeps documents per index (`docs[index][id] = source`) through `_bulk`; answers the
    reconcile job's id-range searches from them; answers any other search with `search_answer`
    (a dict, or a callable taking the request body). `requests` holds (method, path, body) of
    every request, bulk bodies as lists of lines.
    """

    def __init__(self, search_answer=None):
        self.requests = []
        self.docs = {}
        self.search_answer = search_answer
        node_class = type("FakeNode", (_FakeNode,), {"server": self})
        self.client = Elasticsearch("http://elasticsearch.test:9200", node_class=node_class, max_retries=0)

    # --- what was sent ----------------------------------------------------------------------------

    def bulk_actions(self):
        """Every bulk action sent, in order, as (op, index, id, source or None)."""
        actions = []
        for _method, path, body in self.requests:
            if path.split("?")[0].endswith("/_bulk"):
                lines = iter(body)
                for line in lines:
                    (op, meta), = line.items()
                    source = next(lines) if op in ("index", "create") else None
                    actions.append((op, meta["_index"], int(meta["_id"]), source))
        return actions

    def searches(self):
        return [body for method, path, body in self.requests if path.split("?")[0].endswith("/_search")]

    # --- the server -------------------------------------------------------------------------------

    def handle(self, method, target, body):
        path = target.split("?")[0]
        if path.endswith("/_bulk"):
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            self.requests.append((method, target, lines))
            return 200, self._bulk(lines)
        parsed = json.loads(body) if body else None
        self.requests.append((method, target, parsed))
        if path.endswith("/_search"):
            return 200, self._search(path.strip("/").split("/")[0], parsed)
        if path in ("/", "/_alias") or path.endswith("/_refresh"):
            return 200, {} if path == "/_alias" else {"acknowledged": True}
        if method == "PUT":
            self.docs.setdefault(path.strip("/"), {})
            return 200, {"acknowledged": True, "index": path.strip("/")}
        if method == "DELETE":
            found = self.docs.pop(path.strip("/"), None) is not None
            return (200, {"acknowledged": True}) if found else (404, {"error": {"type": "index_not_found_exception"},
                                                                      "status": 404})
        return 200, {}

    def _bulk(self, lines):
        items, lines = [], iter(lines)
        for line in lines:
            (op, meta), = line.items()
            index, pk = meta["_index"], str(meta["_id"])
            docs = self.docs.setdefault(index, {})
            if op == "delete":
                found = docs.pop(pk, None) is not None
                items.append({op: {"_index": index, "_id": pk, "status": 200 if found else 404,
                                   "result": "deleted" if found else "not_found"}})
            else:
                docs[pk] = next(lines)
                items.append({op: {"_index": index, "_id": pk, "status": 201, "result": "created"}})
        return {"took": 1, "errors": False, "items": items}

    def _search(self, index, body):
        id_range = (body or {}).get("query", {}).get("range", {}).get("id")
        if id_range is None:
            answer = self.search_answer(body) if callable(self.search_answer) else self.search_answer
            return answer or {"hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}, "aggregations": {}}
        # The reconcile job's keyset pages: ids in a range, in id order, after `search_after`.
        low, high = id_range["gt"], id_range.get("lte", float("inf"))
        after = (body.get("search_after") or [low])[0]
        ids = sorted(int(pk) for pk in self.docs.get(index, {}) if max(low, after) < int(pk) <= high)
        docs = self.docs[index]
        hits = [{"_index": index, "_id": str(pk), "_source": {"updated_at": docs[str(pk)].get("updated_at")},
                 "sort": [pk]} for pk in ids[:body["size"]]]
        return {"hits": {"hits": hits}}
