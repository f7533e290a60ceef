"""Remote engine against a real local retrieval server (FastAPI + uvicorn on loopback) that speaks
Search-R1's ``/retrieve`` shape and the ZeroSearch wiki retriever's ``{query, top_k}`` shape."""

from __future__ import annotations

import socket
import time

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from loopback_server import LoopbackServer

from zerosearch.search import SearchError, SearchRequest
from zerosearch.search.factory import RemoteEngineConfig, build_engine, engine_config_from_flags
from zerosearch.search.remote import RemoteSearchEngine

PASSAGES = [
    {"id": "0", "contents": '"Paris"\nParis is the capital and largest city of France.'},
    {"id": "1", "contents": '"Berlin"\nBerlin is the capital of Germany.'},
    {"id": "2", "contents": '"Rome"\nRome is the capital city of Italy.'},
    {"id": "3", "contents": '"France"\nFrance is a country in Western Europe.'},
]


def _rank(query: str, k: int) -> list[tuple[dict, float]]:
    words = set(query.lower().split())
    scored = [(p, float(len(words & set(p["contents"].lower().replace(".", "").split())))) for p in PASSAGES]
    return sorted(scored, key=lambda ps: -ps[1])[:k]


class State:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.fail_first = 0
        self.fail_status = 503
        self.with_scores = True
        self.delay_s = 0.0
        self.broken = False


def make_app(state: State) -> FastAPI:
    app = FastAPI()

    async def record(request: Request) -> dict | JSONResponse:
        body = await request.json()
        state.bodies.append(body)
        state.headers.append(dict(request.headers))
        if state.delay_s:
            time.sleep(state.delay_s)
        if state.fail_first > 0:
            state.fail_first -= 1
            return JSONResponse({"detail": "busy"}, status_code=state.fail_status)
        return body

    @app.post("/retrieve")
    async def retrieve(request: Request):
        body = await record(request)
        if isinstance(body, JSONResponse):
            return body
        lists = [_rank(q, body["topk"]) for q in body["queries"]]
        if state.broken:
            lists = lists[:-1]
        if state.with_scores and body.get("return_scores"):
            return {"result": [[{"document": p, "score": s} for p, s in ranked] for ranked in lists]}
        return {"result": [[p for p, _ in ranked] for ranked in lists]}

    @app.post("/wiki")
    async def wiki(request: Request):
        body = await record(request)
        if isinstance(body, JSONResponse):
            return body
        return [
            {"text": p["contents"].split("\n", 1)[1], "title": p["contents"].split("\n")[0].strip('"'), "score": s}
            for p, s in _rank(body["query"], body["top_k"])
        ]

    return app


@pytest.fixture
def server():
    state = State()
    with LoopbackServer(make_app(state)) as srv:
        srv.state = state
        yield srv


def test_search_r1_shape_one_batched_call(server) -> None:
    engine = build_engine(engine_config_from_flags("remote", url=f"{server.url}/retrieve", bearer_token="tok"))
    results = engine.search([SearchRequest("capital of France", top_k=2), SearchRequest("Germany capital", top_k=1)])
    assert server.state.bodies == [
        {"queries": ["capital of France", "Germany capital"], "topk": 2, "return_scores": True}
    ]
    assert server.state.headers[0]["authorization"] == "Bearer tok"
    assert [d.id for d in results[0].documents] == ["0", "1"]
    top = results[0].documents[0]
    assert (top.title, top.text, top.score) == ("Paris", "Paris is the capital and largest city of France.", 3.0)
    assert [d.title for d in results[1].documents] == ["Berlin"]  # its own top-k, not the batch maximum
    assert engine.search([]) == [] and len(server.state.bodies) == 1


def test_search_r1_results_without_scores(server) -> None:
    server.state.with_scores = False
    engine = RemoteSearchEngine(f"{server.url}/retrieve")
    [result] = engine.search([SearchRequest("Rome Italy", top_k=1)])
    assert result.documents[0].title == "Rome" and result.documents[0].score is None


def test_zerosearch_shape_one_call_per_query(server) -> None:
    engine = build_engine(RemoteEngineConfig(url=f"{server.url}/wiki", shape="zerosearch"))
    results = engine.search([SearchRequest("capital of France", top_k=2), SearchRequest("Rome", top_k=1)])
    assert sorted(server.state.bodies, key=lambda b: b["query"]) == [
        {"query": "Rome", "top_k": 1},
        {"query": "capital of France", "top_k": 2},
    ]
    assert [d.title for d in results[0].documents] == ["Paris", "Berlin"]
    assert results[1].documents[0].text == "Rome is the capital city of Italy."


def test_transient_503_is_retried_then_succeeds(server) -> None:
    server.state.fail_first = 2
    engine = RemoteSearchEngine(f"{server.url}/retrieve", max_retries=3, backoff_s=0.01)
    [result] = engine.search([SearchRequest("Berlin", top_k=1)])
    assert result.documents[0].title == "Berlin" and len(server.state.bodies) == 3


def test_persistent_failure_is_bounded_and_names_the_url(server) -> None:
    server.state.fail_first = 100
    url = f"{server.url}/retrieve"
    engine = RemoteSearchEngine(url, max_retries=2, backoff_s=0.01)
    with pytest.raises(SearchError, match=f"{url} failed after 3 attempts: HTTP 503"):
        engine.search([SearchRequest("Berlin")])
    assert len(server.state.bodies) == 3


def test_client_error_is_not_retried(server) -> None:
    server.state.fail_first, server.state.fail_status = 1, 422
    engine = RemoteSearchEngine(f"{server.url}/retrieve", max_retries=3, backoff_s=0.01)
    with pytest.raises(SearchError, match="rejected the request: HTTP 422"):
        engine.search([SearchRequest("Berlin")])
    assert len(server.state.bodies) == 1


def test_malformed_answer_is_an_error(server) -> None:
    server.state.broken = True
    engine = RemoteSearchEngine(f"{server.url}/retrieve")
    with pytest.raises(SearchError, match="expected 'result' with 2 lists, got 1"):
        engine.search([SearchRequest("a"), SearchRequest("b")])


def test_slow_server_times_out(server) -> None:
    server.state.delay_s = 1.5
    engine = RemoteSearchEngine(f"{server.url}/retrieve", timeout_s=0.2, max_retries=1, backoff_s=0.01)
    start = time.monotonic()
    with pytest.raises(SearchError, match="ReadTimeout"):
        engine.search([SearchRequest("Berlin")])
    assert time.monotonic() - start < 5


def test_server_down_raises_after_bounded_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/retrieve"
    engine = RemoteSearchEngine(url, max_retries=2, backoff_s=0.01)
    with pytest.raises(SearchError, match=f"search server {url} failed after 3 attempts: ConnectError"):
        engine.search([SearchRequest("x")])


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        RemoteSearchEngine("localhost:8000/retrieve")
    with pytest.raises(ValueError, match="needs --url"):
        engine_config_from_flags("remote")


def test_steering_fields_travel_one_body_per_noise_source(server) -> None:
    """question, gold answers, p and mode go out in the fields zerosearch serve reads; a batch mixing noise
    sources is split into one body per (p, mode), and the results come back in request order."""
    engine = RemoteSearchEngine(f"{server.url}/retrieve")
    requests = [
        SearchRequest("capital of France", top_k=2, question="q-fr", golden_answers=("Paris",), noise_probability=0.3),
        SearchRequest("Germany capital", top_k=1, question="q-de", golden_answers=("Berlin",), mode="noisy"),
        SearchRequest("Rome Italy", top_k=1, question="q-it", noise_probability=0.3),
    ]
    results = engine.search(requests)
    bodies = sorted(server.state.bodies, key=lambda b: b["queries"][0])
    assert bodies == [
        {"queries": ["Germany capital"], "topk": 1, "return_scores": True, "questions": ["q-de"],
         "golden_answers": [["Berlin"]], "mode": "noisy"},
        {"queries": ["capital of France", "Rome Italy"], "topk": 2, "return_scores": True,
         "questions": ["q-fr", "q-it"], "golden_answers": [["Paris"], None], "noise_probability": 0.3},
    ]
    assert [r.query for r in results] == [r.query for r in requests]
    assert [d.title for d in results[2].documents] == ["Rome"]  # its own top-k within the shared body


def test_unsteered_requests_send_search_r1_body_and_forwarding_can_be_off(server) -> None:
    RemoteSearchEngine(f"{server.url}/retrieve").search([SearchRequest("Berlin", top_k=1)])
    RemoteSearchEngine(f"{server.url}/retrieve", forward_steering=False).search(
        [SearchRequest("Berlin", top_k=1, question="q", noise_probability=0.5),
         SearchRequest("Rome", top_k=1, mode="noisy")])
    assert server.state.bodies == [
        {"queries": ["Berlin"], "topk": 1, "return_scores": True},
        {"queries": ["Berlin", "Rome"], "topk": 1, "return_scores": True},
    ]


def test_reference_shape_forwards_steering(server) -> None:
    engine = RemoteSearchEngine(f"{server.url}/wiki", shape="zerosearch")
    engine.search([SearchRequest("Rome", top_k=1, question="q", golden_answers=("Rome",), noise_probability=0.2)])
    assert server.state.bodies == [
        {"query": "Rome", "top_k": 1, "question": "q", "golden_answers": ["Rome"], "noise_probability": 0.2}]


def test_zerosearch_serve_engine_receives_question_answers_and_noise(tmp_path) -> None:
    """`engine.kind: remote` against a real `zerosearch serve` app: the engine behind the service gets each
    query's own question, gold answers and noise source, and the service's meta comes back on the results."""
    from pathlib import Path

    from zerosearch.search.bm25 import BM25SearchEngine
    from zerosearch.service import ServerThread, create_app

    class RecordingBM25(BM25SearchEngine):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.seen: list = []

        def search(self, requests):
            self.seen.extend(requests)
            return super().search(requests)

    corpus = Path(__file__).parent / "fixtures" / "wiki18_sample_200.jsonl"
    backend = RecordingBM25(corpus, index_dir=tmp_path / "idx", progress=False)
    with ServerThread(create_app(backend)) as srv:
        engine = build_engine(RemoteEngineConfig(url=f"{srv.url}/retrieve"))
        sent = [SearchRequest("Pavia Cathedral", top_k=2, question="Where is Pavia Cathedral?",
                              golden_answers=("Pavia",), noise_probability=0.25),
                SearchRequest("Horatio Hale", top_k=1, question="Who was Horatio Hale?", mode="useful")]
        results = engine.search(sent)
    seen = {r.query: r for r in backend.seen}
    assert seen["Pavia Cathedral"] == SearchRequest("Pavia Cathedral", top_k=2, question="Where is Pavia Cathedral?",
                                                    golden_answers=("Pavia",), noise_probability=0.25)
    assert seen["Horatio Hale"] == SearchRequest("Horatio Hale", top_k=1, question="Who was Horatio Hale?",
                                                 mode="useful")
    assert [len(r.documents) for r in results] == [2, 1]
