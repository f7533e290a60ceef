"""The service's work without HTTP: limits, noise resolution, cache, and the micro-batched engine call.

:class:`SearchService` turns validated request bodies into :class:`SearchRequest` lists, answers what it
can from the cache, sends the rest through the :class:`MicroBatcher`, and maps every failure to an
:class:`ApiError` with an HTTP status (413/422 for limits, 503 for a failing or closing engine, 500 for
an engine bug), so a caller always gets a clear JSON answer and never an empty "no information".
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from zerosearch.search.base import SearchEngine, SearchRequest, SearchResult
from zerosearch.search.cache import LRUCache
from zerosearch.service.batcher import BatcherClosed, EngineUnavailable, MicroBatcher
from zerosearch.service.metrics import ServiceMetrics
from zerosearch.service.schemas import ReferenceSearchRequest, RetrieveRequest
from zerosearch.service.settings import ServiceSettings


class ApiError(Exception):
    """An error answered as JSON ``{"error", "detail", ...}`` with ``status``."""

    def __init__(self, status: int, error: str, detail: str, *, headers: dict[str, str] | None = None,
                 **fields: object) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers
        self.fields = fields

    def body(self) -> dict:
        """The JSON body of the response."""
        return {"error": self.error, "detail": self.detail, **self.fields}


def limit_error(limit: str, allowed: int, got: int, detail: str, status: int = 413) -> ApiError:
    """A request over one of the service's limits; names the limit, the allowed value and what was sent."""
    return ApiError(status, "limit_exceeded", detail, limit=limit, allowed=allowed, got=got)


def is_stochastic(engine: SearchEngine) -> bool:
    """True for engines whose answers are sampled (the simulated engine): caching them freezes a draw."""
    from zerosearch.search.simulated import SimulatedSearchEngine

    return isinstance(engine, SimulatedSearchEngine)


class SearchService:
    """Limits + cache + batcher around one engine; one instance per app."""

    def __init__(self, engine: SearchEngine, settings: ServiceSettings, metrics: ServiceMetrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.cache = LRUCache(settings.cache_size)
        self.cache_default = (
            settings.cache_default if settings.cache_default is not None else not is_stochastic(engine)
        )
        self.batcher = MicroBatcher(
            engine,
            window_s=settings.batch_window_ms / 1000.0,
            max_batch_size=settings.max_batch_size,
            retries=settings.retries,
            backoff_s=settings.retry_backoff_s,
            metrics=metrics,
        )

    # ------------------------------------------------------------ request -> SearchRequest
    def _top_k(self, top_k: int | None) -> int:
        k = self.settings.default_top_k if top_k is None else top_k
        if k > self.settings.max_top_k:
            raise limit_error("max_top_k", self.settings.max_top_k, k,
                              f"top-k {k} exceeds this service's max_top_k {self.settings.max_top_k}; ask for fewer",
                              status=422)
        return k

    def _check_queries(self, queries: Sequence[str]) -> None:
        s = self.settings
        if len(queries) > s.max_queries_per_request:
            raise limit_error("max_queries_per_request", s.max_queries_per_request, len(queries),
                              f"{len(queries)} queries in one request; split it into requests of at most "
                              f"{s.max_queries_per_request}")
        for i, q in enumerate(queries):
            if len(q) > s.max_query_chars:
                raise limit_error("max_query_chars", s.max_query_chars, len(q),
                                  f"query {i} has {len(q)} characters; shorten it to at most {s.max_query_chars}")

    def noise_probability(self, body: RetrieveRequest | ReferenceSearchRequest) -> float | None:
        """p for this request: given directly, from the curriculum at ``step``, or None (engine default)."""
        if body.noise_probability is not None:
            return body.noise_probability
        if body.step is None:
            return None
        curriculum = self.settings.curriculum
        if body.total_steps is not None:
            curriculum = curriculum.model_copy(update={"total_steps": body.total_steps})
        return curriculum.probability(body.step)

    def _check_steering(self, requests: list[SearchRequest]) -> list[SearchRequest]:
        """422 when the engine needs every query's question and gold answers (a simulator prompted in the
        reference's format) and some query came without them."""
        if not getattr(self.engine, "requires_question_and_answers", False):
            return requests
        missing = [i for i, r in enumerate(requests) if not r.question or not r.golden_answers]
        if missing:
            raise ApiError(422, "missing_steering",
                           f"this service's simulator uses the reference's prompt, which needs each query's "
                           f"question and gold answers; queries {missing[:10]} have none: send 'questions' and "
                           "'golden_answers' (one per query)", queries=missing)
        return requests

    def requests_for_retrieve(self, body: RetrieveRequest) -> list[SearchRequest]:
        """One :class:`SearchRequest` per query of a Search-R1 request, after the limit checks."""
        self._check_queries(body.queries)
        top_k = self._top_k(body.topk)
        p = self.noise_probability(body)
        questions = body.questions or [None] * len(body.queries)
        answers = body.golden_answers or [None] * len(body.queries)
        return self._check_steering([
            SearchRequest(query=q, top_k=top_k, question=question,
                          golden_answers=tuple(gold) if gold is not None else None,
                          noise_probability=p, mode=body.mode)
            for q, question, gold in zip(body.queries, questions, answers, strict=True)
        ])

    def request_for_reference(self, body: ReferenceSearchRequest) -> SearchRequest:
        """The :class:`SearchRequest` of a reference-shape ``{query, top_k}`` request."""
        self._check_queries([body.query])
        gold = tuple(body.golden_answers) if body.golden_answers is not None else None
        request = SearchRequest(query=body.query, top_k=self._top_k(body.top_k), question=body.question,
                                golden_answers=gold, noise_probability=self.noise_probability(body), mode=body.mode)
        return self._check_steering([request])[0]

    # ------------------------------------------------------------ answering
    async def answer(
        self, requests: list[SearchRequest], allow_cache: bool | None
    ) -> tuple[list[SearchResult], list[bool]]:
        """Results for ``requests`` (same order) and, per request, whether it came from the cache."""
        use_cache = self.cache_default if allow_cache is None else allow_cache
        results: list[SearchResult | None] = [None] * len(requests)
        if use_cache and self.settings.cache_size:
            for i, r in enumerate(requests):
                results[i] = self.cache.get(r)
        cached = [r is not None for r in results]
        misses = [i for i, r in enumerate(results) if r is None]
        self.metrics.record_cache("hit" if use_cache else "bypass", sum(cached) if use_cache else len(requests))
        if use_cache:
            self.metrics.record_cache("miss", len(misses))
        if misses:
            fresh = await self._search([requests[i] for i in misses])
            for i, result in zip(misses, fresh, strict=True):
                results[i] = result
                if use_cache:
                    self.cache.put(requests[i], result)
        return results, cached

    async def _search(self, requests: list[SearchRequest]) -> list[SearchResult]:
        timeout = self.settings.request_timeout_s
        try:
            return await asyncio.wait_for(self.batcher.submit(requests), timeout)
        except EngineUnavailable as exc:
            raise ApiError(503, "engine_unavailable", str(exc), headers={"Retry-After": "5"}) from exc
        except BatcherClosed as exc:
            raise ApiError(503, "shutting_down", str(exc), headers={"Retry-After": "1"}) from exc
        except TimeoutError as exc:
            raise ApiError(503, "engine_timeout",
                           f"the engine did not answer within request_timeout_s={timeout:g} s; "
                           "retry later or raise the limit", headers={"Retry-After": "5"}) from exc
        except Exception as exc:  # an engine bug becomes a 500 naming it, never a silent result
            raise ApiError(500, "engine_error", f"search engine {self.engine.name!r} raised "
                           f"{type(exc).__name__}: {exc}") from exc
