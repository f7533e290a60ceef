"""Readiness: is the backend behind the service answering right now?

``/health`` is liveness (the process serves HTTP); it stays "ok" while a simulator server behind the service
is down, and every search then fails with 503 after the retries. ``/ready`` asks the backend itself, so
load balancers and launchers (a verl job waiting for its search service) can tell the two apart:

* simulated engine on an OpenAI-compatible server (vLLM, SGLang, llama.cpp): ``GET <base>/v1/models``
  must answer 200 (and, when the server lists models, list the configured one);
* remote engine (another retrieval server): the server must answer HTTP at its URL with a status below
  500 (a 405 for ``GET /retrieve`` proves it is up);
* engines that run in this process (bm25, dense, a local transformers simulator): ready once built.

A probe never retries and is bounded by ``timeout_s``; it does not generate or search, so it is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from zerosearch.search.base import SearchEngine


@dataclass(frozen=True)
class Readiness:
    """Outcome of one probe: ``backend`` names what was asked (a URL or "in-process")."""

    ready: bool
    backend: str
    detail: str


def probe_target(engine: SearchEngine) -> tuple[str, str | None] | None:
    """``(url, model)`` to probe for ``engine``; None when its backend runs in this process."""
    from zerosearch.search.remote import RemoteSearchEngine

    if isinstance(engine, RemoteSearchEngine):
        return engine.url, None
    generator: Any = getattr(engine, "generator", None)
    endpoint = getattr(generator, "endpoint", None)
    if isinstance(endpoint, str):
        root = endpoint.removesuffix("/chat/completions").removesuffix("/completions")
        return f"{root}/models", getattr(generator, "model", None)
    return None


async def probe(engine: SearchEngine, timeout_s: float) -> Readiness:
    """Ask the engine's backend whether it answers; never raises for a down backend."""
    target = probe_target(engine)
    if target is None:
        return Readiness(True, "in-process", f"engine {engine.name!r} runs in this process")
    url, model = target
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(url)
    except httpx.HTTPError as err:
        return Readiness(False, url, f"backend did not answer: {type(err).__name__}: {err}")
    if response.status_code >= 500:
        return Readiness(False, url, f"backend answered HTTP {response.status_code}")
    if model is None:
        return Readiness(True, url, f"backend answered HTTP {response.status_code}")
    if response.status_code != 200:
        return Readiness(False, url, f"model list answered HTTP {response.status_code}, expected 200")
    return _check_model_listed(url, model, response)


def _check_model_listed(url: str, model: str, response: httpx.Response) -> Readiness:
    try:
        listed = [str(m.get("id")) for m in response.json().get("data", []) if isinstance(m, dict)]
    except (ValueError, AttributeError):
        return Readiness(False, url, f"model list is not OpenAI JSON: {response.text[:200]!r}")
    if listed and model not in listed:
        return Readiness(False, url, f"backend serves {listed[:5]}, not the configured model {model!r}")
    return Readiness(True, url, f"backend serves model {model!r}" if listed else "backend answered its model list")
