"""Settings of the search service: where it listens, who may call it, and the limits it enforces.

One pydantic model, loaded from YAML (``zerosearch serve --config serve.yaml``, under the key
``service``) or built from CLI flags; unknown keys are rejected. The bearer token may also come from the
environment variable ``ZEROSEARCH_SERVICE_TOKEN`` so it never has to appear on a command line.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch.curriculum import CurriculumConfig

TOKEN_ENV = "ZEROSEARCH_SERVICE_TOKEN"


class ServiceSettings(BaseModel):
    """Everything ``create_app`` and the HTTP server need besides the engine."""

    model_config = ConfigDict(extra="forbid")

    # --- network and access
    host: str = Field("127.0.0.1", description="interface to bind; loopback by default (0.0.0.0 exposes it)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (Search-R1's default: 8000); 0 = any free port")
    token: str | None = Field(
        None, description=f"bearer token required on /retrieve, /search and /metrics (or env {TOKEN_ENV})"
    )

    # --- request limits (each rejected with a 4xx JSON naming the limit)
    max_queries_per_request: int = Field(512, ge=1, description="queries in one /retrieve call")
    max_query_chars: int = Field(2048, ge=1, description="characters in one query")
    max_top_k: int = Field(50, ge=1, description="largest top-k a caller may ask for")
    default_top_k: int = Field(3, ge=1, description="top-k when the request gives none (Search-R1 default: 3)")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="largest request body accepted")

    # --- micro-batching
    batch_window_ms: float = Field(
        5.0, ge=0.0, description="how long the first waiting request waits for others to join its batch"
    )
    max_batch_size: int = Field(64, ge=1, description="most queries sent to the engine in one call")

    # --- cache
    cache_size: int = Field(4096, ge=0, description="answers kept in the LRU cache (0 = no cache)")
    cache_default: bool | None = Field(
        None,
        description=(
            "whether a request that says nothing about 'cache' may be answered from the cache; None = "
            "yes for deterministic engines (bm25, dense, remote, web), no for the simulated engine, whose "
            "cached answer would freeze one useful/noisy draw and one sample"
        ),
    )

    # --- failure handling
    retries: int = Field(2, ge=0, le=10, description="extra attempts of a failed engine call before 503")
    retry_backoff_s: float = Field(0.2, ge=0.0, le=30.0, description="sleep before retry i is backoff * 2**i")
    request_timeout_s: float = Field(300.0, gt=0.0, description="a request waiting longer gets 503, never a hang")
    ready_timeout_s: float = Field(
        2.0, gt=0.0, le=60.0, description="GET /ready: how long to wait for the backend's answer before 'not ready'")

    # --- simulated engine: noise curriculum used when a request gives step / total_steps
    curriculum: CurriculumConfig = Field(
        default_factory=CurriculumConfig, description="noise schedule for requests that give a training step"
    )

    @model_validator(mode="after")
    def _check(self) -> ServiceSettings:
        if self.default_top_k > self.max_top_k:
            raise ValueError(
                f"default_top_k ({self.default_top_k}) exceeds max_top_k ({self.max_top_k}); raise max_top_k"
            )
        if self.token is not None and not self.token.strip():
            raise ValueError(f"token is empty: unset it (and {TOKEN_ENV}) or give a non-empty token")
        return self

    def with_env_token(self) -> ServiceSettings:
        """A copy whose token falls back to ``$ZEROSEARCH_SERVICE_TOKEN`` when none was given."""
        if self.token is None and os.environ.get(TOKEN_ENV):
            return self.model_copy(update={"token": os.environ[TOKEN_ENV]})
        return self
