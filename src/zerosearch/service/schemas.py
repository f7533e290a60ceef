"""Request and response bodies of the search service (pydantic; they also drive the OpenAPI docs).

``POST /retrieve`` speaks Search-R1's retrieval-server JSON, so Search-R1 / verl rollouts can point at it
unchanged::

    request : {"queries": ["..."], "topk": 3, "return_scores": true}
    response: {"result": [[{"document": {"id": "...", "contents": "\\"Title\\"\\ntext"}, "score": 1.2}, ...], ...]}

With ``return_scores: false`` each inner item is the document object itself (as Search-R1 returns it).
Optional zerosearch fields steer a simulated engine: per-query ``questions`` and ``golden_answers``, and
at most one of ``noise_probability``, ``mode`` or ``step`` (+ ``total_steps``; the service turns the step
into p with its curriculum). The response adds ``meta`` (one object per query: useful/noisy draw,
documents recovered, cache hit); Search-R1 clients read ``result`` only, so it does not disturb them.

``POST /search`` speaks the ZeroSearch reference's wiki-retriever shape: ``{"query": "...", "top_k": 5}``
answered by a JSON list of ``{"text": ...}`` objects (plus ``id``, ``title``, ``contents``, ``score``).
The reference posts that shape to ``/retrieve``, so ``/retrieve`` answers it too: a body with ``query``
and no ``queries`` is read as the reference shape (see :data:`AnyRetrieveBody`).

Every request model rejects unknown fields (422) and wrong JSON types (no silent coercion of ``"3"``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

NoiseModeField = Literal["useful", "noisy"]


class _Steering(BaseModel):
    """Fields shared by both request shapes that steer a simulated engine or the cache."""

    model_config = ConfigDict(extra="forbid", strict=True)

    noise_probability: float | None = Field(
        None, ge=0.0, le=1.0, description="simulated engine: probability of a noisy draw for every query"
    )
    mode: NoiseModeField | None = Field(None, description="simulated engine: force 'useful' or 'noisy'")
    step: int | None = Field(None, ge=0, description="training step; p comes from the service's curriculum")
    total_steps: int | None = Field(None, ge=1, description="total training steps (default: the curriculum's)")
    cache: bool | None = Field(
        None,
        description="allow an answer from the cache (default: yes for real engines, no for simulated ones)",
    )

    @model_validator(mode="after")
    def _one_noise_source(self) -> _Steering:
        given = [n for n in ("noise_probability", "mode", "step") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of noise_probability, mode, step; got {', '.join(given)}")
        if self.total_steps is not None and self.step is None:
            raise ValueError("total_steps needs step (the training step to compute the noise probability at)")
        return self


def _check_query(index: int, query: str) -> None:
    if not query.strip():
        raise ValueError(f"query {index} is empty; every query must contain non-space characters")


class RetrieveRequest(_Steering):
    """Search-R1's ``/retrieve`` request, plus optional zerosearch fields."""

    queries: list[str] = Field(..., min_length=1, description="the queries, answered in order")
    topk: int | None = Field(None, ge=1, description="documents per query (default: the service's default_top_k)")
    return_scores: bool = Field(False, description="wrap each document as {document, score}")
    questions: list[str | None] | None = Field(
        None, description="per query: the user's question it was issued for (simulated engine)"
    )
    golden_answers: list[list[str] | None] | None = Field(
        None, description="per query: the question's gold answers (simulated engine)"
    )

    @field_validator("queries")
    @classmethod
    def _non_empty(cls, queries: list[str]) -> list[str]:
        for i, q in enumerate(queries):
            _check_query(i, q)
        return queries

    @model_validator(mode="after")
    def _aligned(self) -> RetrieveRequest:
        for name in ("questions", "golden_answers"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.queries):
                raise ValueError(
                    f"{name} has {len(values)} entries but queries has {len(self.queries)}; give one per query"
                )
        return self


class ReferenceSearchRequest(_Steering):
    """The ZeroSearch reference's wiki-retriever request ``{"query", "top_k"}``, plus optional fields."""

    query: str = Field(..., description="one query")
    top_k: int | None = Field(None, ge=1, description="documents to return (default: the service's default_top_k)")
    question: str | None = Field(None, description="the user's question (simulated engine)")
    golden_answers: list[str] | None = Field(None, description="gold answers (simulated engine)")

    @field_validator("query")
    @classmethod
    def _non_empty(cls, query: str) -> str:
        _check_query(0, query)
        return query


def body_shape(value: Any) -> str:
    """Which request shape a ``/retrieve`` body is: ``reference`` ({query, top_k}) or ``search-r1``."""
    if isinstance(value, dict) and "query" in value and "queries" not in value:
        return "reference"
    if isinstance(value, ReferenceSearchRequest):
        return "reference"
    return "search-r1"


#: ``/retrieve`` body: Search-R1's shape, or the reference's when the body has ``query`` but no ``queries``.
AnyRetrieveBody = Annotated[
    Annotated[RetrieveRequest, Tag("search-r1")] | Annotated[ReferenceSearchRequest, Tag("reference")],
    Discriminator(body_shape),
]


class DocumentOut(BaseModel):
    """One passage in the wiki-18 / Search-R1 form."""

    id: str = Field(..., description="corpus id, or 'sim-<rank>' for simulated documents")
    contents: str = Field(..., description='"Title"\\ntext, as in the wiki-18 corpus')


class ScoredDocument(BaseModel):
    """Search-R1's item when ``return_scores`` is true; ``score`` is null for simulated documents."""

    document: DocumentOut
    score: float | None


class QueryMeta(BaseModel):
    """Extra facts about one query's answer (ignored by Search-R1 clients)."""

    mode: NoiseModeField | None = Field(None, description="simulated engine: the useful/noisy draw")
    recovered: int | None = Field(None, description="simulated engine: documents parsed from the LLM output")
    noise_probability: float | None = Field(None, description="p the draw was made with, when one was given")
    cached: bool = Field(False, description="answered from the cache")


class RetrieveResponse(BaseModel):
    """Search-R1's ``/retrieve`` response plus ``meta``."""

    result: list[list[ScoredDocument]] | list[list[DocumentOut]]
    meta: list[QueryMeta]


class ReferenceDocument(BaseModel):
    """One item of the reference-shape response; the reference client reads ``text``."""

    id: str
    title: str
    text: str = Field(..., description="'(Title: …) text': what the policy sees as one Doc line")
    contents: str
    score: float | None
    mode: NoiseModeField | None = None


class ErrorBody(BaseModel):
    """Every error response: a short code, a message saying what to change, and details."""

    error: str
    detail: str | list | dict
    limit: str | None = None
    allowed: int | None = None
    got: int | None = None


class HealthResponse(BaseModel):
    """``GET /health``."""

    status: Literal["ok", "draining"]
    engine: str
    pending_queries: int
    cache_entries: int


class ReadyResponse(BaseModel):
    """``GET /ready``: 200 when the backend answers, 503 otherwise (or while draining)."""

    status: Literal["ready", "not_ready"]
    engine: str
    backend: str = Field(..., description="what was probed: the backend URL, or 'in-process'")
    detail: str
