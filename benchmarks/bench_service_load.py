"""Load test of ``zerosearch serve`` on loopback: many concurrent clients, Search-R1-shaped requests.

The server runs as a separate process (``python -m zerosearch.cli.serve``), so the load generator does
not share its interpreter. ``--clients`` asyncio workers share ``--requests`` POST /retrieve calls (one
query each, topk 3, return_scores true, cache off so every request reaches the engine); the script
reports throughput, p50/p99 latency and errors, plus the engine batch sizes read from /metrics.

Engines:
* ``bm25``: the wiki-18 sample corpus (1,000 passages) from ../shared/data;
* ``simulated``: a tiny RANDOM Llama (hidden 64, 2 layers, SmolLM2 tokenizer; saved to a temp dir) so
  the figures measure the service and batching, not a model's quality.

    .venv/bin/python benchmarks/bench_service_load.py                          # both, 64 clients, 2,000 requests
    .venv/bin/python benchmarks/bench_service_load.py --engines bm25 --requests 200 --clients 16

Service vs direct (``--vs-direct``): is the service in front of a simulator a bottleneck? The same simulator
backend answers the same queries twice, (1) through ``zerosearch serve`` with ``--clients`` concurrent
clients sending one query per request (the service micro-batches them), and (2) called directly in this
process, ``engine.search`` on consecutive batches of ``--max-batch-size`` queries (the batches the service
forms at full load; /metrics reports the batch sizes it really formed). Every query is drawn "useful" on both
sides so the prompts are the same. Target: service throughput >= 80% of direct. Backends:

* ``transformers``: the simulated engine on a local model (``--sim-model``, default SmolLM2-135M-Instruct),
  one torch thread on both sides;
* ``llamacpp``: llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``, SmolLM2 GGUF), the
  simulated engine's OpenAI backend in front of it on both sides; the service also answers ``/ready``.

    .venv/bin/python benchmarks/bench_service_load.py --vs-direct transformers llamacpp --direct-queries 128
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "data"
CORPUS = SHARED / "corpus" / "wiki18_sample_1000.jsonl"
QA_FILE = SHARED / "qa" / "nq_test_1000.jsonl"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engines", nargs="+", default=["bm25", "simulated"], choices=["bm25", "simulated"])
    p.add_argument("--clients", type=int, default=64, help="concurrent clients")
    p.add_argument("--requests", type=int, default=2000, help="total requests per engine")
    p.add_argument("--sim-requests", type=int, default=None,
                   help="requests for the simulated engine (default: --requests)")
    p.add_argument("--sim-max-new-tokens", type=int, default=32, help="tiny simulator's generation budget")
    p.add_argument("--batch-window-ms", type=float, default=5.0)
    p.add_argument("--max-batch-size", type=int, default=64)
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="JSON result (default: results/service_load*.json)")
    p.add_argument("--vs-direct", nargs="+", default=None, choices=["transformers", "llamacpp"],
                   help="compare the service with the same backend called directly (see the module docstring)")
    p.add_argument("--direct-queries", type=int, default=128, help="queries per side in --vs-direct")
    p.add_argument("--sim-model", default="smollm2-135m-instruct", help="--vs-direct transformers: simulator")
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tiny_model(target: Path, seed: int) -> Path:
    """A randomly initialised 2-layer Llama with the SmolLM2 tokenizer (tests the plumbing, not quality)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from zerosearch.llm.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))
    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                         vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def server_command(engine: str, args: argparse.Namespace, port: int, model_dir: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "zerosearch.cli.serve", "--port", str(port), "--log-level", "warning",
           "--batch-window-ms", str(args.batch_window_ms), "--max-batch-size", str(args.max_batch_size),
           "--cache-size", "0", "--request-timeout", "600"]
    if engine == "bm25":
        index_dir = Path(tempfile.gettempdir()) / f"zerosearch-bench-{args.corpus.name}.bm25s"
        return [*cmd, "--engine", "bm25", "--corpus", str(args.corpus), "--index-dir", str(index_dir)]
    return [*cmd, "--engine", "simulated", "--model", str(model_dir), "--device", "cpu", "--torch-threads", "1",
            "--max-new-tokens", str(args.sim_max_new_tokens), "--seed", str(args.seed)]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with code {proc.returncode} before becoming healthy")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {url} not healthy within {timeout_s} s")


async def load(url: str, queries: list[str], clients: int, extra: dict | None = None
               ) -> tuple[float, list[float], list[str]]:
    """Run all queries through ``clients`` workers; returns wall time, latencies (s) and error strings."""
    latencies: list[float] = []
    errors: list[str] = []
    next_index = iter(range(len(queries)))

    async def worker(client: httpx.AsyncClient) -> None:
        for i in next_index:
            body = {"queries": [queries[i]], "topk": 3, "return_scores": True, **(extra or {})}
            t0 = time.perf_counter()
            try:
                r = await client.post(f"{url}/retrieve", json=body)
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200 or len(r.json()["result"]) != 1:
                errors.append(f"HTTP {r.status_code}: {r.text[:200]}")

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return time.perf_counter() - t0, latencies, errors


def batch_stats(metrics_text: str) -> dict:
    """Engine calls and queries searched so far, from the service's /metrics."""
    values = {"calls": 0.0, "queries": 0.0}
    for line in metrics_text.splitlines():
        if line.startswith("zerosearch_engine_batch_size_count "):
            values["calls"] = float(line.split()[-1])
        elif line.startswith("zerosearch_engine_batch_size_sum "):
            values["queries"] = float(line.split()[-1])
    return values


def bench_engine(engine: str, args: argparse.Namespace, queries: list[str], model_dir: Path | None) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(server_command(engine, args, port, model_dir), cwd=ROOT)
    try:
        wait_healthy(url, proc)
        asyncio.run(load(url, queries[: min(len(queries), 2 * args.clients)], args.clients))  # warm-up
        before = batch_stats(httpx.get(f"{url}/metrics").text)
        wall, latencies, errors = asyncio.run(load(url, queries, args.clients))
        after = batch_stats(httpx.get(f"{url}/metrics").text)
    finally:
        proc.terminate()
        proc.wait(60)
    lat = np.asarray(latencies) * 1000.0
    row = {"requests": len(queries), "clients": args.clients, "seconds": wall,
           "requests_per_s": len(queries) / wall, "p50_ms": float(np.percentile(lat, 50)),
           "p99_ms": float(np.percentile(lat, 99)), "errors": len(errors), "error_samples": errors[:5],
           "engine_calls": after["calls"] - before["calls"],
           "mean_batch_size": (after["queries"] - before["queries"]) / max(after["calls"] - before["calls"], 1)}
    print(f"{engine:>10}: {row['requests_per_s']:8.1f} req/s  p50 {row['p50_ms']:7.1f} ms  "
          f"p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}  mean batch {row['mean_batch_size']:.1f}")
    return row


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.vs_direct:
        return run_vs_direct(args)
    args.out = args.out or RESULTS / "service_load.json"
    rows = [json.loads(line)["question"] for line in QA_FILE.read_text("utf-8").splitlines() if line.strip()]
    queries = [rows[i % len(rows)] for i in range(max(args.requests, args.sim_requests or 0))]
    record = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "versions": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                           "load_avg_1m_at_start": os.getloadavg()[0]},
              "simulator_model": "random Llama: hidden 64, 2 layers, 4 heads, MLP 128, SmolLM2 tokenizer",
              "engines": {}}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_tiny_model(Path(tmp) / "tiny", args.seed) if "simulated" in args.engines else None
        for engine in args.engines:
            n = args.sim_requests if engine == "simulated" and args.sim_requests else args.requests
            record["engines"][engine] = bench_engine(engine, args, queries[:n], model_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1), "utf-8")
    print(f"wrote {args.out}")
    return record


# ------------------------------------------------------------------------------------ service vs direct
def start_llama_server(port: int, log_path: Path) -> subprocess.Popen:
    """llama.cpp's OpenAI-compatible server on the SmolLM2 GGUF (the ``llamacpp`` extra)."""
    from zerosearch.llm.models import smollm2_gguf_path

    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf_path()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "4096", "--chat_format", "chatml", "--n_threads", "1"]
    return subprocess.Popen(cmd, stdout=log_path.open("w"), stderr=subprocess.STDOUT)


def wait_url(url: str, proc: subprocess.Popen, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: process exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not answering within {timeout_s} s")


def simulator_config(backend: str, args: argparse.Namespace, llama_url: str | None):
    """The one simulated-engine config both sides use (the service builds the same from its flags)."""
    from zerosearch.llm.factory import GeneratorConfig
    from zerosearch.llm.models import smollm2_gguf_path
    from zerosearch.search.factory import SimulatedEngineConfig

    if backend == "transformers":
        generator = GeneratorConfig(model=args.sim_model, device="cpu")
    else:
        generator = GeneratorConfig(model=str(smollm2_gguf_path()), backend="openai", base_url=llama_url)
    return SimulatedEngineConfig(generator=generator, max_new_tokens=args.sim_max_new_tokens, seed=args.seed)


def direct_run(backend: str, args: argparse.Namespace, queries: list[str], llama_url: str | None) -> dict:
    """``engine.search`` in this process on consecutive batches of ``--max-batch-size`` queries."""
    import torch

    from zerosearch.search.base import SearchRequest
    from zerosearch.search.factory import build_engine

    torch.set_num_threads(1)
    engine = build_engine(simulator_config(backend, args, llama_url))
    requests = [SearchRequest(q, top_k=3, mode="useful") for q in queries]
    engine.search(requests[: min(8, len(requests))])  # warm-up, as the service gets one
    t0 = time.perf_counter()
    for start in range(0, len(requests), args.max_batch_size):
        engine.search(requests[start : start + args.max_batch_size])
    wall = time.perf_counter() - t0
    return {"seconds": wall, "queries_per_s": len(queries) / wall, "batches": -(-len(queries) // args.max_batch_size)}


def service_run(backend: str, args: argparse.Namespace, queries: list[str], llama_url: str | None) -> dict:
    """The same backend behind ``zerosearch serve``, ``--clients`` concurrent one-query requests."""
    config = simulator_config(backend, args, llama_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "zerosearch.cli.serve", "--port", str(port), "--log-level", "warning",
           "--engine", "simulated", "--model", config.generator.model, "--max-new-tokens", str(config.max_new_tokens),
           "--seed", str(args.seed), "--batch-window-ms", str(args.batch_window_ms),
           "--max-batch-size", str(args.max_batch_size), "--cache-size", "0", "--request-timeout", "3600"]
    cmd += ["--device", "cpu", "--torch-threads", "1"] if backend == "transformers" else ["--url", llama_url]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        wait_healthy(url, proc)
        ready = httpx.get(f"{url}/ready", timeout=10)
        asyncio.run(load(url, queries[: min(8, len(queries))], 8, {"mode": "useful"}))  # warm-up
        before = batch_stats(httpx.get(f"{url}/metrics").text)
        wall, latencies, errors = asyncio.run(load(url, queries, args.clients, {"mode": "useful"}))
        after = batch_stats(httpx.get(f"{url}/metrics").text)
    finally:
        proc.terminate()
        proc.wait(60)
    calls = after["calls"] - before["calls"]
    return {"seconds": wall, "queries_per_s": len(queries) / wall, "errors": len(errors), "error_samples": errors[:5],
            "p50_ms": float(np.percentile(np.asarray(latencies) * 1000, 50)) if latencies else None,
            "engine_calls": calls, "mean_batch_size": (after["queries"] - before["queries"]) / max(calls, 1),
            "ready": {"http_status": ready.status_code, **ready.json()}}


def run_vs_direct(args: argparse.Namespace) -> dict:
    from zerosearch.provenance import package_versions

    rows = [json.loads(line)["question"] for line in QA_FILE.read_text("utf-8").splitlines() if line.strip()]
    queries = [rows[i % len(rows)] for i in range(args.direct_queries)]
    record = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
              "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "versions": {**package_versions(), "cpu_count": os.cpu_count()},
              "load_avg_1m_at_start": os.getloadavg()[0], "target_ratio": 0.8, "backends": {}}
    for backend in args.vs_direct:
        llama, llama_url = None, None
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "llamacpp":
                port = free_port()
                llama_url = f"http://127.0.0.1:{port}"
                llama = start_llama_server(port, Path(tmp) / "llama.log")
            try:
                if llama is not None:
                    wait_url(f"{llama_url}/v1/models", llama)
                direct = direct_run(backend, args, queries, llama_url)
                service = service_run(backend, args, queries, llama_url)
            finally:
                if llama is not None:
                    llama.terminate()
                    llama.wait(60)
        ratio = service["queries_per_s"] / direct["queries_per_s"]
        record["backends"][backend] = {"direct": direct, "service": service, "ratio": ratio,
                                       "meets_target": ratio >= 0.8}
        print(f"{backend:>12}: direct {direct['queries_per_s']:7.2f} q/s  service {service['queries_per_s']:7.2f} q/s  "
              f"ratio {ratio:.2f}  mean batch {service['mean_batch_size']:.1f}  errors {service['errors']}  "
              f"/ready {service['ready']['http_status']}")
    out = args.out or RESULTS / "service_vs_direct.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1), "utf-8")
    print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
