"""Client for a retrieval server over HTTP, so training can use an existing Search-R1 or ZeroSearch retriever.

Two wire shapes:

* ``search-r1`` (Search-R1's ``retrieval_server.py``, also what ``zerosearch serve`` speaks): one
  ``POST /retrieve`` for the whole batch, ``{"queries": [...], "topk": k, "return_scores": true}`` ->
  ``{"result": [[{"document": {"id", "contents"}, "score": s}, ...], ...]}``; results without scores
  (plain ``{"id", "contents"}`` items) are accepted too.
* ``zerosearch`` (the ZeroSearch reference's wiki retriever): one ``POST`` per query with
  ``{"query": q, "top_k": k}`` -> a JSON list of ``{"text": ...}`` items (``title``/``score``/``id``
  optional); the calls run concurrently.

Steering (``forward_steering``, on by default): each request's ``question``, ``golden_answers``,
``noise_probability`` and ``mode`` travel with it, in the fields ``zerosearch serve`` reads (``questions``,
``golden_answers``, ``noise_probability``, ``mode``; ``step``/``total_steps`` when the caller gives a training
step instead of p). Without them a simulated engine behind the service would draw every query with its
default p and without the user's question, silently dropping the curriculum. The service takes one noise
source per HTTP request, so a batch whose requests differ in p or mode goes out as one request per distinct
(p, mode), concurrently (the service micro-batches them back into one simulator call). Servers that answer
``meta`` (``zerosearch serve``) report each query's useful/noisy draw; it lands on ``SearchResult.mode``.
Search-R1's own server ignores the extra fields (its pydantic model drops unknown keys); turn forwarding off
for a server that rejects them.

Failures are retried a bounded number of times with exponential backoff, then raise
:class:`SearchError` naming the URL — never an endless loop, never a silent "No information available".
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx

from zerosearch.search.base import Document, SearchError, SearchRequest, SearchResult
from zerosearch.search.corpus import split_contents

if TYPE_CHECKING:
    from zerosearch.search.engine_config import RemoteEngineConfig

#: Statuses worth retrying: the server is overloaded or restarting. Other 4xx mean a bad request.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class _Retryable(Exception):
    """A failed attempt that may succeed if repeated."""


def post_json(client: httpx.Client, url: str, body: dict[str, Any], *, max_retries: int, backoff_s: float) -> Any:
    """POST ``body`` and return the decoded JSON; retries transport errors and 408/429/5xx, then SearchError."""
    delay = backoff_s
    last = ""
    for attempt in range(max_retries + 1):
        if attempt:
            time.sleep(delay)
            delay *= 2
        try:
            return _attempt(client, url, body)
        except _Retryable as err:
            last = str(err)
    raise SearchError(f"search server {url} failed after {max_retries + 1} attempts: {last}")


def _attempt(client: httpx.Client, url: str, body: dict[str, Any]) -> Any:
    try:
        response = client.post(url, json=body)
    except httpx.HTTPError as err:  # connection refused, timeout, protocol error
        raise _Retryable(f"{type(err).__name__}: {err}") from err
    if response.status_code in RETRY_STATUSES:
        raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}")
    if response.status_code >= 400:
        raise SearchError(
            f"search server {url} rejected the request: HTTP {response.status_code}: {response.text[:300]}"
        )
    try:
        return response.json()
    except ValueError as err:
        raise SearchError(f"search server {url} answered with invalid JSON: {response.text[:200]!r}") from err


def document_from_item(item: Any, url: str) -> Document:
    """One result item in any of the accepted shapes -> :class:`Document`."""
    if not isinstance(item, dict):
        raise SearchError(f"search server {url}: result item must be a JSON object, got {item!r:.100}")
    score = item.get("score")
    doc = item.get("document", item)
    if not isinstance(doc, dict):
        raise SearchError(f"search server {url}: 'document' must be a JSON object, got {doc!r:.100}")
    doc_id = doc.get("id")
    if isinstance(doc.get("contents"), str):
        title, text = split_contents(doc["contents"])
    elif isinstance(doc.get("text"), str):
        title, text = str(doc.get("title") or ""), doc["text"]
    else:
        raise SearchError(f"search server {url}: result item has neither 'contents' nor 'text': {doc!r:.200}")
    try:
        score = None if score is None else float(score)
    except (TypeError, ValueError) as err:
        raise SearchError(f"search server {url}: score {score!r} is not a number") from err
    return Document(title=title, text=text.strip(), score=score, id=None if doc_id is None else str(doc_id))


#: (noise_probability, mode): the requests of one HTTP call share these.
SteeringKey = tuple[float | None, str | None]


def steering_key(request: SearchRequest) -> SteeringKey:
    """The noise source a request carries; a forced ``mode`` wins over p (as in the simulated engine)."""
    if request.mode is not None:
        return None, request.mode
    return request.noise_probability, None


def group_by_steering(requests: list[SearchRequest]) -> list[list[int]]:
    """Indices of ``requests`` grouped by :func:`steering_key`, groups in order of first appearance."""
    groups: dict[SteeringKey, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(steering_key(request), []).append(i)
    return list(groups.values())


def retrieve_body(
    requests: list[SearchRequest],
    *,
    steering: bool = True,
    step: int | None = None,
    total_steps: int | None = None,
) -> dict[str, Any]:
    """The Search-R1 ``/retrieve`` body for requests that share one noise source.

    With ``steering`` the body also carries per-query ``questions`` / ``golden_answers`` (when any request
    has one) and the shared noise source: ``mode``, else ``noise_probability``, else ``step`` (+
    ``total_steps``), for the service to turn into p with its curriculum. Fields nobody set are left out,
    so an unsteered batch sends exactly Search-R1's body.
    """
    body: dict[str, Any] = {
        "queries": [r.query for r in requests],
        "topk": max(r.top_k for r in requests),
        "return_scores": True,
    }
    if not steering:
        return body
    keys = {steering_key(r) for r in requests}
    if len(keys) > 1:
        raise ValueError(f"requests of one /retrieve body must share p and mode, got {sorted(keys, key=str)}")
    if any(r.question is not None for r in requests):
        body["questions"] = [r.question for r in requests]
    if any(r.golden_answers is not None for r in requests):
        body["golden_answers"] = [None if r.golden_answers is None else list(r.golden_answers) for r in requests]
    p, mode = keys.pop()
    if mode is not None:
        body["mode"] = mode
    elif p is not None:
        body["noise_probability"] = p
    elif step is not None:
        body["step"] = step
        if total_steps is not None:
            body["total_steps"] = total_steps
    return body


def results_from_payload(payload: Any, requests: list[SearchRequest], url: str) -> list[SearchResult]:
    """Search-R1's ``{"result": [...]}`` answer (plus zerosearch's optional ``meta``) -> one result each."""
    lists = payload.get("result") if isinstance(payload, dict) else None
    if not isinstance(lists, list) or len(lists) != len(requests):
        got = len(lists) if isinstance(lists, list) else repr(payload)[:200]
        raise SearchError(f"search server {url}: expected 'result' with {len(requests)} lists, got {got}")
    meta = payload.get("meta")
    if not isinstance(meta, list) or len(meta) != len(requests):
        meta = [None] * len(requests)
    results = []
    for request, items, entry in zip(requests, lists, meta, strict=True):
        if not isinstance(items, list):
            raise SearchError(f"search server {url}: each entry of 'result' must be a list, got {items!r:.100}")
        docs = [document_from_item(item, url) for item in items[: request.top_k]]
        info = entry if isinstance(entry, dict) else {}
        mode = info.get("mode") if info.get("mode") in ("useful", "noisy") else None
        recovered = info.get("recovered") if isinstance(info.get("recovered"), int) else None
        extra = {"noise_probability": info["noise_probability"]} if "noise_probability" in info else {}
        results.append(SearchResult(query=request.query, documents=docs, mode=mode, recovered=recovered, extra=extra))
    return results


class RemoteSearchEngine:
    """A Search-R1 / ZeroSearch retrieval server behind the :class:`SearchEngine` interface."""

    name = "remote"

    def __init__(
        self,
        url: str,
        *,
        shape: str = "search-r1",
        timeout_s: float = 30.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        concurrency: int = 8,
        bearer_token: str | None = None,
        forward_steering: bool = True,
    ) -> None:
        if shape not in ("search-r1", "zerosearch"):
            raise ValueError(f"shape must be 'search-r1' or 'zerosearch', got {shape!r}")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"remote search url must start with http:// or https://, got {url!r}")
        self.url = url
        self.shape = shape
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.concurrency = concurrency
        self.forward_steering = forward_steering
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self._client = httpx.Client(
            timeout=timeout_s, headers=headers, limits=httpx.Limits(max_connections=max(concurrency, 1))
        )

    @classmethod
    def from_config(cls, config: RemoteEngineConfig) -> RemoteSearchEngine:
        """Build from a :class:`~zerosearch.search.factory.RemoteEngineConfig`."""
        return cls(
            config.url,
            shape=config.shape,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            backoff_s=config.backoff_s,
            concurrency=config.concurrency,
            bearer_token=config.bearer_token,
            forward_steering=config.forward_steering,
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def search(
        self, requests: list[SearchRequest], *, step: int | None = None, total_steps: int | None = None
    ) -> list[SearchResult]:
        """One batched call (search-r1) or one call per query (zerosearch).

        ``step`` (+ ``total_steps``): the training step, sent with requests that carry neither p nor mode so
        that ``zerosearch serve`` computes p with its curriculum (search-r1 shape only).
        """
        if not requests:
            return []
        if self.shape == "search-r1":
            return self._search_r1(requests, step, total_steps)
        if step is not None:
            raise ValueError("step is sent in the search-r1 shape only; use shape='search-r1' against zerosearch serve")
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self._zerosearch_one, requests))

    def _post(self, body: dict[str, Any]) -> Any:
        return post_json(self._client, self.url, body, max_retries=self.max_retries, backoff_s=self.backoff_s)

    def _search_r1(
        self, requests: list[SearchRequest], step: int | None, total_steps: int | None
    ) -> list[SearchResult]:
        def one_body(group: list[SearchRequest]) -> list[SearchResult]:
            body = retrieve_body(group, steering=self.forward_steering, step=step, total_steps=total_steps)
            return results_from_payload(self._post(body), group, self.url)

        groups = group_by_steering(requests) if self.forward_steering else [list(range(len(requests)))]
        if len(groups) == 1:
            return one_body(requests)
        results: list[SearchResult | None] = [None] * len(requests)
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(groups))) as pool:
            answers = pool.map(one_body, [[requests[i] for i in g] for g in groups])
            for group, group_results in zip(groups, answers, strict=True):
                for i, result in zip(group, group_results, strict=True):
                    results[i] = result
        return results

    def _reference_body(self, request: SearchRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"query": request.query, "top_k": request.top_k}
        if not self.forward_steering:
            return body
        if request.question is not None:
            body["question"] = request.question
        if request.golden_answers is not None:
            body["golden_answers"] = list(request.golden_answers)
        p, mode = steering_key(request)
        if mode is not None:
            body["mode"] = mode
        elif p is not None:
            body["noise_probability"] = p
        return body

    def _zerosearch_one(self, request: SearchRequest) -> SearchResult:
        payload = self._post(self._reference_body(request))
        if isinstance(payload, dict) and isinstance(payload.get("result"), list):
            payload = payload["result"]
        if not isinstance(payload, list):
            raise SearchError(f"search server {self.url}: expected a JSON list of documents, got {payload!r:.200}")
        docs = [document_from_item(item, self.url) for item in payload[: request.top_k]]
        modes = {item.get("mode") for item in payload if isinstance(item, dict)}  # zerosearch serve tags each
        mode = modes.pop() if len(modes) == 1 and modes <= {"useful", "noisy"} else None
        return SearchResult(query=request.query, documents=docs, mode=mode)
