"""Google results through SerpAPI: the real (paid) engine ZeroSearch evaluates with.

``GET {base_url}?engine=google&q=…&api_key=…&num=k`` returns JSON whose ``organic_results`` items carry
``title``/``snippet``/``link``; an ``answer_box`` (Google's direct answer), when present, becomes the first
document. The key is read from ``$SERPAPI_API_KEY`` (configurable) when the engine is built; a missing key
is an error that says which variable to set. Queries run concurrently, one HTTP call each, with bounded
retries (see ``remote.py``), and ``base_url`` can point at a proxy or a local test server.

    export SERPAPI_API_KEY=...
    zerosearch evaluate --engine web ...
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx

from zerosearch.search.base import Document, SearchError, SearchRequest, SearchResult
from zerosearch.search.remote import RETRY_STATUSES

if TYPE_CHECKING:
    from zerosearch.search.engine_config import WebEngineConfig

SERPAPI_URL = "https://serpapi.com/search"
_ANSWER_BOX_TEXT_KEYS = ("answer", "snippet", "result")
NO_RESULTS_MARKER = "hasn't returned any results"


def answer_box_document(box: Any) -> Document | None:
    """Google's answer box as a document (None when it has no text we know how to read)."""
    if not isinstance(box, dict):
        return None
    texts = [str(box[key]) for key in _ANSWER_BOX_TEXT_KEYS if box.get(key)]
    if not texts:
        return None
    return Document(title=str(box.get("title") or ""), text=" ".join(texts), id=box.get("link"))


def documents_from_serpapi(payload: dict[str, Any], k: int) -> list[Document]:
    """Answer box first (if any), then organic results in rank order; items without a snippet are skipped."""
    documents = []
    box = answer_box_document(payload.get("answer_box"))
    if box is not None:
        documents.append(box)
    for item in payload.get("organic_results") or []:
        if isinstance(item, dict) and item.get("snippet"):
            documents.append(
                Document(title=str(item.get("title") or ""), text=str(item["snippet"]), id=item.get("link"))
            )
    return documents[:k]


class WebSearchEngine:
    """SerpAPI Google search; one GET per query, run concurrently, bounded retries."""

    name = "web"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = SERPAPI_URL,
        search_engine: str = "google",
        gl: str | None = "us",
        hl: str | None = "en",
        timeout_s: float = 30.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        concurrency: int = 8,
    ) -> None:
        if not api_key:
            raise ValueError("SerpAPI key is empty; set SERPAPI_API_KEY (get one at https://serpapi.com)")
        self.base_url = base_url
        self.params = {"engine": search_engine, **({"gl": gl} if gl else {}), **({"hl": hl} if hl else {})}
        self._api_key = api_key
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.concurrency = concurrency
        self._client = httpx.Client(timeout=timeout_s, limits=httpx.Limits(max_connections=concurrency))

    @classmethod
    def from_config(cls, config: WebEngineConfig) -> WebSearchEngine:
        """Build from a :class:`~zerosearch.search.factory.WebEngineConfig`, reading the key from the environment."""
        api_key = os.environ.get(config.api_key_env, "").strip()
        if not api_key:
            raise SearchError(
                f"the web engine needs a SerpAPI key in the environment variable {config.api_key_env}; "
                f"run `export {config.api_key_env}=<your key>` (keys: https://serpapi.com/manage-api-key)"
            )
        return cls(
            api_key,
            base_url=config.base_url,
            search_engine=config.search_engine,
            gl=config.gl,
            hl=config.hl,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            backoff_s=config.backoff_s,
            concurrency=config.concurrency,
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def search(self, requests: list[SearchRequest]) -> list[SearchResult]:
        """One SerpAPI call per request, concurrently; order kept."""
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self._search_one, requests))

    def _search_one(self, request: SearchRequest) -> SearchResult:
        params = {**self.params, "q": request.query, "num": request.top_k, "api_key": self._api_key}
        payload = self._get(params)
        if NO_RESULTS_MARKER in str(payload.get("error", "")):  # SerpAPI reports "no results" as an error
            return SearchResult(query=request.query, documents=[])
        if payload.get("error"):
            raise SearchError(f"SerpAPI ({self.base_url}) returned an error for {request.query!r}: {payload['error']}")
        return SearchResult(query=request.query, documents=documents_from_serpapi(payload, request.top_k))

    def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        delay, last = self.backoff_s, ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                response = self._client.get(self.base_url, params=params)
            except httpx.HTTPError as err:
                last = f"{type(err).__name__}: {err}"
                continue
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code}"
                continue
            return self._decode(response)
        last = last.replace(self._api_key, "***")  # never leak the key into logs
        raise SearchError(f"SerpAPI ({self.base_url}) failed after {self.max_retries + 1} attempts: {last}")

    def _decode(self, response: httpx.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError as err:
            raise SearchError(
                f"SerpAPI ({self.base_url}) answered with invalid JSON (HTTP {response.status_code})"
            ) from err
        if response.status_code >= 400 and not (isinstance(payload, dict) and payload.get("error")):
            raise SearchError(f"SerpAPI ({self.base_url}) rejected the request: HTTP {response.status_code}")
        if not isinstance(payload, dict):
            raise SearchError(f"SerpAPI ({self.base_url}) answered with {type(payload).__name__}, expected an object")
        return payload
