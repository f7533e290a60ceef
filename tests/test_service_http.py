"""The search service over real HTTP: a real uvicorn server on a free loopback port, the real BM25 engine
on the wiki-18 fixture corpus, and httpx / requests clients.

Covers every route, every bad-input case, auth, the cache, micro-batching under concurrent clients, a
Search-R1-style client and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from search_r1_client import SearchR1StyleClient

from zerosearch.search.base import SearchRequest
from zerosearch.search.bm25 import BM25SearchEngine
from zerosearch.service import ServerThread, ServiceSettings, create_app
from zerosearch.service.batcher import MicroBatcher

FIXTURE = Path(__file__).parent / "fixtures" / "wiki18_sample_200.jsonl"


@pytest.fixture(scope="module")
def bm25(tmp_path_factory) -> BM25SearchEngine:
    return BM25SearchEngine(FIXTURE, index_dir=tmp_path_factory.mktemp("idx") / "bm25", progress=False)


@pytest.fixture(scope="module")
def server(bm25):
    app = create_app(bm25, ServiceSettings(max_queries_per_request=64, max_query_chars=500, max_top_k=10))
    with ServerThread(app) as running:
        yield running


def metric_values(text: str, name: str) -> dict[str, float]:
    """``{label-string: value}`` for every sample of metric ``name`` in Prometheus text."""
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{.*\}})? (\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


# ----------------------------------------------------------------------------- routes
def test_retrieve_search_r1_shape_with_scores(server):
    r = httpx.post(f"{server.url}/retrieve",
                   json={"queries": ["Evan Morris lobbyist Washington", "Roche"], "topk": 2, "return_scores": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"result", "meta"}
    assert len(body["result"]) == 2
    first = body["result"][0]
    assert len(first) == 2
    assert set(first[0]) == {"document", "score"}
    assert set(first[0]["document"]) == {"id", "contents"}
    assert first[0]["document"]["id"] == "0"
    assert first[0]["document"]["contents"].startswith('"Evan Morris"\n')
    assert isinstance(first[0]["score"], float) and first[0]["score"] >= first[1]["score"] > 0


def test_retrieve_without_scores_returns_bare_documents(server):
    r = httpx.post(f"{server.url}/retrieve", json={"queries": ["Evan Morris lobbyist"], "topk": 1})
    assert r.status_code == 200
    (doc,) = r.json()["result"][0]
    assert set(doc) == {"id", "contents"}
    assert doc["id"] == "0"


def test_default_top_k_applies(server):
    r = httpx.post(f"{server.url}/retrieve", json={"queries": ["American film"], "return_scores": False})
    assert r.status_code == 200
    assert len(r.json()["result"][0]) == 3  # ServiceSettings.default_top_k


def test_reference_search_route(server):
    r = httpx.post(f"{server.url}/search", json={"query": "Evan Morris lobbyist Washington", "top_k": 2})
    assert r.status_code == 200, r.text
    docs = r.json()
    assert isinstance(docs, list) and len(docs) == 2
    assert docs[0]["text"].startswith("(Title: Evan Morris) ")
    # The reference client formats results exactly like this:
    joined = "\n".join(f"Doc {i + 1}: {doc['text']}" for i, doc in enumerate(docs))
    assert joined.startswith("Doc 1: (Title: Evan Morris)")


def test_reference_shape_posted_to_retrieve(server):
    """The reference posts ``{query, top_k}`` to ``/retrieve``; it gets its own list shape back."""
    r = httpx.post(f"{server.url}/retrieve", json={"query": "American film", "top_k": 3})
    assert r.status_code == 200, r.text
    docs = r.json()
    assert [d["id"] for d in docs] == ["165", "128", "51"]
    assert all(set(d) >= {"text", "title", "contents", "score"} for d in docs)
    bad = httpx.post(f"{server.url}/retrieve", json={"query": "American film", "k": 3})
    assert bad.status_code == 422 and "extra_forbidden" in bad.text


def test_health_docs_openapi(server):
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["engine"] == "bm25"
    assert httpx.get(f"{server.url}/docs").status_code == 200
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/retrieve", "/search", "/health", "/ready", "/metrics"} <= set(spec["paths"])


def test_metrics_prometheus_text(server):
    httpx.post(f"{server.url}/retrieve", json={"queries": ["Roche"]})
    r = httpx.get(f"{server.url}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    for name, kind in (("zerosearch_requests", "counter"), ("zerosearch_request_latency_seconds", "histogram"),
                       ("zerosearch_cache", "counter"), ("zerosearch_engine_batch_size", "histogram"),
                       ("zerosearch_results", "counter"), ("zerosearch_request_errors", "counter"),
                       ("zerosearch_inflight_requests", "gauge")):
        assert families.get(name) == kind, name
    ok = metric_values(text, "zerosearch_requests_total")
    assert ok['{route="/retrieve",status="200"}'] >= 1
    assert metric_values(text, "zerosearch_results_total")['{mode="none"}'] >= 1


# ----------------------------------------------------------------------------- bad input
def _post(server, body, route="/retrieve"):
    if isinstance(body, str):
        return httpx.post(f"{server.url}{route}", content=body, headers={"content-type": "application/json"})
    return httpx.post(f"{server.url}{route}", json=body)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ('{"queries": ["a"', 400, "json_invalid"),
        ("not json at all", 400, "json_invalid"),
        ({"queries": "Roche"}, 422, "list_type"),
        ({"queries": [1, 2]}, 422, "string_type"),
        ({"queries": ["Roche"], "topk": "3"}, 422, "int_type"),
        ({"queries": ["Roche"], "return_scores": "yes"}, 422, "bool_type"),
        ({"queries": []}, 422, "too_short"),
        ({}, 422, "missing"),
        ({"queries": [""]}, 422, "query 0 is empty"),
        ({"queries": ["ok", "   "]}, 422, "query 1 is empty"),
        ({"queries": ["Roche"], "topk": 0}, 422, "greater_than_equal"),
        ({"queries": ["Roche"], "topk": -5}, 422, "greater_than_equal"),
        ({"queries": ["Roche"], "unknown_field": 1}, 422, "extra_forbidden"),
        ({"queries": ["Roche"], "noise_probability": 1.5}, 422, "less_than_equal"),
        ({"queries": ["Roche"], "mode": "sometimes"}, 422, "literal_error"),
        ({"queries": ["Roche"], "mode": "noisy", "step": 3}, 422, "at most one of"),
        ({"queries": ["Roche"], "total_steps": 10}, 422, "total_steps needs step"),
        ({"queries": ["a", "b"], "questions": ["q"]}, 422, "questions has 1 entries"),
    ],
)
def test_bad_input_is_rejected_with_json(server, body, status, needle):
    r = _post(server, body)
    assert r.status_code == status, r.text
    payload = r.json()
    assert payload["error"] in {"malformed_json", "invalid_request"}
    assert needle in r.text


@pytest.mark.parametrize(
    ("body", "status", "limit", "allowed", "got"),
    [
        ({"queries": ["Roche"], "topk": 10**9}, 422, "max_top_k", 10, 10**9),
        ({"queries": ["Roche"] * 10_000}, 413, "max_queries_per_request", 64, 10_000),
        ({"queries": ["x" * 100_000]}, 413, "max_query_chars", 500, 100_000),
    ],
)
def test_limits_name_the_limit(server, body, status, limit, allowed, got):
    r = _post(server, body)
    assert r.status_code == status, r.text
    assert r.json() == {**r.json(), "error": "limit_exceeded", "limit": limit, "allowed": allowed, "got": got}
    assert str(allowed) in r.json()["detail"]


def test_reference_route_bad_input(server):
    assert _post(server, {"query": "", "top_k": 2}, "/search").status_code == 422
    assert _post(server, {"query": "Roche", "top_k": 0}, "/search").status_code == 422
    assert _post(server, {"query": "Roche", "k": 2}, "/search").status_code == 422
    assert _post(server, {"query": "x" * 100_000}, "/search").json()["limit"] == "max_query_chars"


def test_body_size_limit(bm25):
    app = create_app(bm25, ServiceSettings(max_body_bytes=4096))
    with ServerThread(app) as srv:
        r = httpx.post(f"{srv.url}/retrieve", json={"queries": ["Roche " * 2000]})
    assert r.status_code == 413
    assert r.json()["limit"] == "max_body_bytes"


def test_unknown_route_and_method(server):
    wrong_method = httpx.get(f"{server.url}/retrieve")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"
    missing = httpx.post(f"{server.url}/nope", json={})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


# ----------------------------------------------------------------------------- auth
def test_bearer_token(bm25):
    app = create_app(bm25, ServiceSettings(token="s3cret"))
    body = {"queries": ["Roche"]}
    with ServerThread(app) as srv:
        missing = httpx.post(f"{srv.url}/retrieve", json=body)
        wrong = httpx.post(f"{srv.url}/retrieve", json=body, headers={"Authorization": "Bearer nope"})
        basic = httpx.post(f"{srv.url}/retrieve", json=body, headers={"Authorization": "Basic s3cret"})
        right = httpx.post(f"{srv.url}/retrieve", json=body, headers={"Authorization": "Bearer s3cret"})
        metrics_no = httpx.get(f"{srv.url}/metrics")
        search_no = httpx.post(f"{srv.url}/search", json={"query": "Roche"})
        health = httpx.get(f"{srv.url}/health")
    for r in (missing, wrong, basic, metrics_no, search_no):
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200
    assert health.status_code == 200


def test_token_from_environment(bm25, monkeypatch):
    monkeypatch.setenv("ZEROSEARCH_SERVICE_TOKEN", "from-env")
    app = create_app(bm25, ServiceSettings())
    with ServerThread(app) as srv:
        assert httpx.post(f"{srv.url}/retrieve", json={"queries": ["Roche"]}).status_code == 401
        ok = httpx.post(f"{srv.url}/retrieve", json={"queries": ["Roche"]},
                        headers={"Authorization": "Bearer from-env"})
    assert ok.status_code == 200


# ----------------------------------------------------------------------------- cache
def test_cache_hits_and_opt_out(bm25):
    app = create_app(bm25, ServiceSettings(batch_window_ms=0))
    body = {"queries": ["Genentech Roche lobbyist"], "topk": 2, "return_scores": True}
    with ServerThread(app) as srv:
        first = httpx.post(f"{srv.url}/retrieve", json=body).json()
        second = httpx.post(f"{srv.url}/retrieve", json=body).json()
        fresh = httpx.post(f"{srv.url}/retrieve", json={**body, "cache": False}).json()
        other_k = httpx.post(f"{srv.url}/retrieve", json={**body, "topk": 3}).json()
        text = httpx.get(f"{srv.url}/metrics").text
    assert [m["cached"] for m in (first["meta"][0], second["meta"][0], fresh["meta"][0], other_k["meta"][0])] == [
        False, True, False, False]
    assert second["result"] == first["result"] == fresh["result"]
    cache = metric_values(text, "zerosearch_cache_total")
    assert cache['{outcome="hit"}'] == 1
    assert cache['{outcome="miss"}'] == 2
    assert cache['{outcome="bypass"}'] == 1
    assert metric_values(text, "zerosearch_engine_batch_size_count")[""] == 3  # the hit never reached the engine


# ----------------------------------------------------------------------------- batching
def test_concurrent_clients_are_micro_batched(bm25):
    app = create_app(bm25, ServiceSettings(batch_window_ms=200, max_batch_size=64, cache_size=0))
    queries = [f"Roche Genentech {i}" for i in range(24)]

    async def fire(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(client.post(f"{url}/retrieve", json={"queries": [q], "topk": 1})
                                          for q in queries))

    with ServerThread(app) as srv:
        responses = asyncio.run(fire(srv.url))
        text = httpx.get(f"{srv.url}/metrics").text
    assert all(r.status_code == 200 for r in responses)
    # every answer belongs to its own request (results routed back per request)
    direct = bm25.search([SearchRequest(q, top_k=1) for q in queries])
    for r, expected in zip(responses, direct, strict=True):
        assert r.json()["result"][0][0]["id"] == expected.documents[0].id
    calls = metric_values(text, "zerosearch_engine_batch_size_count")[""]
    total = metric_values(text, "zerosearch_engine_batch_size_sum")[""]
    singles = metric_values(text, "zerosearch_engine_batch_size_bucket")['{le="1.0"}']
    assert total == 24
    assert calls < 24 and singles < calls, f"no batching: {calls} engine calls for 24 requests"


def test_batcher_splits_on_max_batch_size_and_drains(bm25):
    async def run() -> tuple[list, list[int]]:
        sizes: list[int] = []
        batcher = MicroBatcher(bm25, window_s=0.05, max_batch_size=4)
        original = batcher.metrics.record_batch
        batcher.metrics.record_batch = lambda size, seconds: (sizes.append(size), original(size, seconds))
        await batcher.start()
        tasks = [asyncio.create_task(batcher.submit([SearchRequest(f"Roche {i}", top_k=1)])) for i in range(10)]
        await asyncio.sleep(0)  # let every submit enqueue
        await batcher.close()  # must finish all ten before returning
        return [t.result() for t in tasks], sizes

    results, sizes = asyncio.run(run())
    assert len(results) == 10 and all(len(r) == 1 for r in results)
    assert sizes == [4, 4, 2]


# ----------------------------------------------------------------------------- Search-R1 client
def test_search_r1_client_gets_documents(server):
    client = SearchR1StyleClient(f"{server.url}/retrieve", topk=3)
    out = client.batch_search(["American film", "Evan Morris lobbyist"])
    assert len(out) == 2
    assert out[1].startswith('Doc 1(Title: "Evan Morris") Evan Morris')
    assert out[0].count("\nDoc ") == 2  # three documents
    assert out[0].startswith('Doc 1(Title: "Cthulhu (2000 film)") ')


# ----------------------------------------------------------------------------- shutdown
def test_graceful_shutdown_finishes_in_flight_request(bm25):
    app = create_app(bm25, ServiceSettings(batch_window_ms=1000, cache_size=0))
    srv = ServerThread(app).start()
    box: dict = {}

    def call() -> None:
        box["response"] = httpx.post(f"{srv.url}/retrieve", json={"queries": ["Roche"]}, timeout=30)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)  # the request now waits in the batcher's 1 s window
    assert app.state.service.batcher.pending == 1
    t0 = time.monotonic()
    srv.stop()
    caller.join(10)
    assert box["response"].status_code == 200
    assert box["response"].json()["result"][0]
    assert time.monotonic() - t0 < 10
    assert app.state.service.batcher.closing
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{srv.url}/retrieve", json={"queries": ["Roche"]}, timeout=2)


def test_metrics_record_the_noise_probability_a_step_resolves_to(server):
    """A request with a training step is answered with p from the service's curriculum, and /metrics counts it."""
    from prometheus_client.parser import text_string_to_metric_families

    from zerosearch.curriculum import CurriculumConfig

    def p_samples() -> dict[str, float]:
        families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text)}
        return {s.name: s.value for s in families["zerosearch_request_noise_probability"].samples
                if not s.name.endswith("_bucket")}

    before = p_samples()
    r = httpx.post(f"{server.url}/retrieve", json={"queries": ["Roche", "Genentech"], "step": 101})
    expected = CurriculumConfig().probability(101)
    assert [m["noise_probability"] for m in r.json()["meta"]] == [pytest.approx(expected)] * 2
    after = p_samples()
    count = "zerosearch_request_noise_probability_count"
    assert after[count] - before.get(count, 0.0) == 1  # one request
    total = "zerosearch_request_noise_probability_sum"
    assert after[total] - before.get(total, 0.0) == pytest.approx(expected)
