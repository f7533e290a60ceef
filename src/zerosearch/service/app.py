"""The FastAPI app of ``zerosearch serve``: any search engine behind Search-R1's HTTP interface.

Routes: ``POST /retrieve`` (Search-R1 shape), ``POST /search`` (ZeroSearch reference shape),
``GET /health`` (liveness), ``GET /ready`` (readiness: the backend behind the engine answers; see
:mod:`zerosearch.service.readiness`), ``GET /metrics`` (Prometheus text from ``prometheus_client``), and the
OpenAPI docs at ``/docs``. Concurrent
requests are micro-batched into one engine call (see :mod:`zerosearch.service.batcher`). When a token
is set, ``/retrieve``, ``/search`` and ``/metrics`` need ``Authorization: Bearer <token>``.

    from zerosearch.service import ServiceSettings, create_app
    app = create_app(engine, ServiceSettings(port=8000))
    # uvicorn: zerosearch.service.server.run_server(app, settings), or `zerosearch serve ...`
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from zerosearch.search.base import SearchEngine, SearchRequest, SearchResult
from zerosearch.service.core import ApiError, SearchService
from zerosearch.service.metrics import METRICS_CONTENT_TYPE, ServiceMetrics
from zerosearch.service.readiness import probe
from zerosearch.service.schemas import (
    AnyRetrieveBody,
    DocumentOut,
    ErrorBody,
    HealthResponse,
    QueryMeta,
    ReadyResponse,
    ReferenceDocument,
    ReferenceSearchRequest,
    RetrieveResponse,
    ScoredDocument,
)
from zerosearch.service.settings import ServiceSettings

ERROR_RESPONSES = {code: {"model": ErrorBody} for code in (400, 401, 413, 422, 500, 503)}


class RequestMetricsMiddleware:
    """Pure-ASGI middleware: counts requests by route and status, times them, enforces the body size."""

    def __init__(self, app: object, metrics: ServiceMetrics, max_body_bytes: int) -> None:
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        self.metrics.inflight.inc()
        try:
            too_big = self._body_too_big(scope)
            if too_big is not None:
                await too_big(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.inflight.dec()
            route = scope.get("route")
            label = getattr(route, "path", "unmatched")
            self.metrics.record_request(label, status["code"], time.perf_counter() - start)

    def _body_too_big(self, scope: dict) -> JSONResponse | None:
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                err = ApiError(413, "limit_exceeded", f"request body of {int(value)} bytes exceeds "
                               f"max_body_bytes={self.max_body_bytes}; send fewer or shorter queries",
                               limit="max_body_bytes", allowed=self.max_body_bytes, got=int(value))
                return JSONResponse(err.body(), status_code=413)
        return None


def _auth_dependency(token: str | None) -> object:
    """A FastAPI dependency that checks ``Authorization: Bearer <token>`` (no-op without a token)."""

    async def check(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "unauthorized",
                           "missing or wrong bearer token; send the header 'Authorization: Bearer <token>'",
                           headers={"WWW-Authenticate": "Bearer"})

    return check


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field (400 for a body that is not JSON); inputs are not echoed back."""
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    route = getattr(request.scope.get("route"), "path", "unmatched")
    request.app.state.metrics.record_error(route, "invalid_request")
    if any(e["type"] == "json_invalid" for e in errors):
        return JSONResponse({"error": "malformed_json", "detail": errors}, status_code=400)
    return JSONResponse({"error": "invalid_request", "detail": errors}, status_code=422)


def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    route = getattr(request.scope.get("route"), "path", "unmatched")
    request.app.state.metrics.record_error(route, exc.error)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Unknown routes and wrong methods in the same ``{"error", "detail"}`` form as every other error."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


def _doc_id(doc_id: str | None, rank: int) -> str:
    return doc_id if doc_id is not None else f"sim-{rank}"


def _search_r1_items(result: SearchResult, return_scores: bool) -> list:
    docs = [DocumentOut(id=_doc_id(d.id, i), contents=d.contents) for i, d in enumerate(result.documents)]
    if not return_scores:
        return docs
    return [ScoredDocument(document=doc, score=d.score) for doc, d in zip(docs, result.documents, strict=True)]


def _meta(request: SearchRequest, result: SearchResult, cached: bool) -> QueryMeta:
    return QueryMeta(mode=result.mode, recovered=result.recovered,
                     noise_probability=request.noise_probability, cached=cached)


def create_app(engine: SearchEngine, settings: ServiceSettings | None = None) -> FastAPI:
    """Build the app around ``engine``; the batcher starts and drains with the app's lifespan."""
    settings = (settings or ServiceSettings()).with_env_token()
    metrics = ServiceMetrics()
    service = SearchService(engine, settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.batcher.start()
        try:
            yield
        finally:
            await service.batcher.close()  # uvicorn has already let in-flight requests finish

    app = FastAPI(title="zerosearch search service", version="1", lifespan=lifespan,
                  description="Search-R1-compatible retrieval over a real or LLM-simulated search engine.")
    app.state.service, app.state.metrics, app.state.settings = service, metrics, settings
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    auth = [Depends(_auth_dependency(settings.token))]

    async def reference_answer(body: ReferenceSearchRequest, route: str) -> list[ReferenceDocument]:
        request = service.request_for_reference(body)
        metrics.record_noise_probability(request.noise_probability)
        (result,), _ = await service.answer([request], body.cache)
        metrics.record_results(route, [result.mode])
        return [
            ReferenceDocument(id=_doc_id(d.id, i), title=d.title, text=d.as_passage(), contents=d.contents,
                              score=d.score, mode=result.mode)
            for i, d in enumerate(result.documents)
        ]

    @app.post("/retrieve", response_model=RetrieveResponse | list[ReferenceDocument], dependencies=auth,
              responses=ERROR_RESPONSES)
    async def retrieve(body: AnyRetrieveBody) -> RetrieveResponse | list[ReferenceDocument]:
        """Search-R1's batch retrieval: one ranked document list per query. A reference-shaped body
        (``{"query", "top_k"}``) is answered in the reference's shape, as on ``/search``."""
        if isinstance(body, ReferenceSearchRequest):
            return await reference_answer(body, "/retrieve")
        requests = service.requests_for_retrieve(body)
        metrics.record_noise_probability(requests[0].noise_probability)
        results, cached = await service.answer(requests, body.cache)
        metrics.record_results("/retrieve", [r.mode for r in results])
        return RetrieveResponse(
            result=[_search_r1_items(r, body.return_scores) for r in results],
            meta=[_meta(q, r, c) for q, r, c in zip(requests, results, cached, strict=True)],
        )

    @app.post("/search", response_model=list[ReferenceDocument], dependencies=auth, responses=ERROR_RESPONSES)
    async def search(body: ReferenceSearchRequest) -> list[ReferenceDocument]:
        """The ZeroSearch reference's single-query shape: a list of ``{"text": ...}`` documents."""
        return await reference_answer(body, "/search")

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        """Liveness: the engine's name and how much work is waiting (no token needed)."""
        status = "draining" if service.batcher.closing else "ok"
        return HealthResponse(status=status, engine=engine.name, pending_queries=service.batcher.pending,
                              cache_entries=len(service.cache))

    @app.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
    async def ready() -> JSONResponse:
        """Readiness: 200 when the engine's backend answers (no token needed), else 503 naming the failure."""
        if service.batcher.closing:
            result = ReadyResponse(status="not_ready", engine=engine.name, backend="service",
                                   detail="the service is draining for shutdown")
        else:
            outcome = await probe(engine, settings.ready_timeout_s)
            result = ReadyResponse(status="ready" if outcome.ready else "not_ready", engine=engine.name,
                                   backend=outcome.backend, detail=outcome.detail)
        metrics.ready.set(1 if result.status == "ready" else 0)
        return JSONResponse(result.model_dump(), status_code=200 if result.status == "ready" else 503)

    @app.get("/metrics", response_class=Response, dependencies=auth)
    async def prometheus() -> Response:
        """Prometheus text format: requests, errors, latency, useful/noisy draws, p, cache, batch sizes."""
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    return app
