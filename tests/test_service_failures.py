"""A failing backend behind the real service: 503 with a JSON error after bounded retries, never a hang.

The backends really fail: a remote engine whose retrieval server port is closed, a remote engine whose
server accepts TCP connections but never answers, and a simulated engine whose OpenAI-compatible
generator points at a closed loopback port.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from zerosearch.search.factory import RemoteEngineConfig, SimulatedEngineConfig, build_engine
from zerosearch.service import ServerThread, ServiceSettings, create_app
from zerosearch.service.metrics import ServiceMetrics


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A socket that completes TCP handshakes (kernel backlog) but never reads or answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def _engine_failures(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("zerosearch_engine_failures_total{"))


def test_remote_engine_on_dead_port_gives_503(tmp_path):
    engine = build_engine(RemoteEngineConfig(url=f"http://127.0.0.1:{closed_port()}/retrieve",
                                             timeout_s=2, max_retries=1, backoff_s=0.05))
    app = create_app(engine, ServiceSettings(retries=2, retry_backoff_s=0.05))
    with ServerThread(app) as srv:
        t0 = time.monotonic()
        r = httpx.post(f"{srv.url}/retrieve", json={"queries": ["capital of France"], "topk": 2}, timeout=30)
        elapsed = time.monotonic() - t0
        ref = httpx.post(f"{srv.url}/search", json={"query": "capital of France"}, timeout=30)
        failures = _engine_failures(srv.url)
        health = httpx.get(f"{srv.url}/health").json()
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"] == "engine_unavailable"
    assert "failed 3 time(s)" in body["detail"]
    assert r.headers["retry-after"]
    assert elapsed < 15
    assert ref.status_code == 503
    assert failures == 6  # 3 attempts for each of the two requests, all counted
    assert health["status"] == "ok"  # the service itself stays up


def test_unresponsive_backend_times_out_with_503(silent_server):
    engine = build_engine(RemoteEngineConfig(url=f"http://127.0.0.1:{silent_server}/retrieve",
                                             timeout_s=3, max_retries=0))
    app = create_app(engine, ServiceSettings(retries=0, request_timeout_s=1.0))
    with ServerThread(app) as srv:
        t0 = time.monotonic()
        r = httpx.post(f"{srv.url}/retrieve", json={"queries": ["anything"]}, timeout=30)
        elapsed = time.monotonic() - t0
    assert r.status_code == 503
    assert r.json()["error"] == "engine_timeout"
    assert "request_timeout_s=1" in r.json()["detail"]
    assert 0.9 < elapsed < 5


def test_simulated_engine_with_dead_openai_backend_gives_503():
    from zerosearch.llm.factory import GeneratorConfig

    generator = GeneratorConfig(backend="openai", model="dead-simulator",
                                base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=0, timeout_s=2)
    engine = build_engine(SimulatedEngineConfig(generator=generator, max_new_tokens=16))
    app = create_app(engine, ServiceSettings(retries=1, retry_backoff_s=0.05))
    with ServerThread(app) as srv:
        t0 = time.monotonic()
        r = httpx.post(f"{srv.url}/retrieve", json={"queries": ["who wrote hamlet"], "questions": ["who wrote hamlet"],
                                                    "golden_answers": [["Shakespeare"]]}, timeout=30)
        elapsed = time.monotonic() - t0
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "engine_unavailable"
    assert "simulator" in r.json()["detail"]
    assert elapsed < 15


def test_metrics_registry_renders_valid_histogram():
    from prometheus_client.parser import text_string_to_metric_families

    m = ServiceMetrics()
    for size in (1, 3, 64, 1000):
        m.record_batch(size, 0.01)
    families = {f.name: f for f in text_string_to_metric_families(m.render())}
    buckets = [(s.labels["le"], s.value) for s in families["zerosearch_engine_batch_size"].samples
               if s.name.endswith("_bucket")]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)  # cumulative
    assert buckets[0] == ("1.0", 1.0)
    assert buckets[-1] == ("+Inf", 4.0)
    assert ServiceMetrics().render() != m.render()  # each app has its own registry, not the global one

def test_ready_reports_dead_openai_backend_while_health_stays_ok():
    """The case seen in the field: the simulator server is down, /health says ok; /ready must say no, fast."""
    from zerosearch.llm.factory import GeneratorConfig

    generator = GeneratorConfig(backend="openai", model="dead-simulator",
                                base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=0, timeout_s=2)
    engine = build_engine(SimulatedEngineConfig(generator=generator, max_new_tokens=16))
    with ServerThread(create_app(engine, ServiceSettings(ready_timeout_s=1.0))) as srv:
        t0 = time.monotonic()
        ready = httpx.get(f"{srv.url}/ready", timeout=10)
        elapsed = time.monotonic() - t0
        health = httpx.get(f"{srv.url}/health")
        metrics = httpx.get(f"{srv.url}/metrics").text
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["status"] == "not_ready" and body["engine"] == "simulated"
    assert body["backend"].endswith("/v1/models") and "ConnectError" in body["detail"]
    assert elapsed < 5
    assert "zerosearch_ready 0.0" in metrics


def test_ready_follows_a_remote_backend_going_down(tmp_path):
    """A remote engine in front of a real bm25 service: ready while that service runs, not ready after it stops."""
    from pathlib import Path

    from zerosearch.search.bm25 import BM25SearchEngine

    corpus = Path(__file__).parent / "fixtures" / "wiki18_sample_200.jsonl"
    backend = ServerThread(create_app(BM25SearchEngine(corpus, index_dir=tmp_path / "idx", progress=False))).start()
    try:
        engine = build_engine(RemoteEngineConfig(url=f"{backend.url}/retrieve", max_retries=0))
        with ServerThread(create_app(engine)) as srv:
            up = httpx.get(f"{srv.url}/ready")
            backend.stop()
            down = httpx.get(f"{srv.url}/ready")
            health = httpx.get(f"{srv.url}/health")
    finally:
        backend.stop()
    assert up.status_code == 200 and up.json()["status"] == "ready", up.text
    assert "HTTP 405" in up.json()["detail"]  # GET on /retrieve: the server is up
    assert down.status_code == 503 and down.json()["status"] == "not_ready"
    assert health.json()["status"] == "ok"


def test_ready_for_in_process_engine(tmp_path):
    from pathlib import Path

    from zerosearch.search.bm25 import BM25SearchEngine

    corpus = Path(__file__).parent / "fixtures" / "wiki18_sample_200.jsonl"
    with ServerThread(create_app(BM25SearchEngine(corpus, index_dir=tmp_path / "idx", progress=False))) as srv:
        r = httpx.get(f"{srv.url}/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "engine": "bm25", "backend": "in-process",
                        "detail": "engine 'bm25' runs in this process"}
