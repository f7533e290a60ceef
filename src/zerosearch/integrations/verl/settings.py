"""The ``zerosearch:`` section of a verl trainer config: where the service is and the rollout's turn limits.

Per-turn and per-episode limits mirror :class:`zerosearch.rollout.RolloutConfig` (same names, same
meaning); the whole-response budget is verl's own ``actor_rollout_ref.rollout.response_length`` and the
prompt limit its ``prompt_length``, so there is one place for each number.

    zerosearch:
      service_url: http://10.0.0.5:8000/retrieve   # `zerosearch serve` in front of the simulator
      top_k_documents: 5                           # paper: 5
      max_turns: 5                                 # paper recipe (reference default: 2)
      max_new_tokens: 500                          # per turn (paper: 500)
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zerosearch.service.settings import TOKEN_ENV


class ZeroSearchVerlSettings(BaseModel):
    """How the agent loop talks to the service and bounds an episode."""

    model_config = ConfigDict(extra="forbid")

    service_url: str = Field(description="full /retrieve URL of `zerosearch serve`, e.g. http://host:8000/retrieve")
    token_env: str = Field(TOKEN_ENV, description="environment variable holding the service's bearer token, if any")
    top_k_documents: int = Field(5, ge=1, description="documents per search (paper: 5)")
    max_turns: int = Field(5, ge=0, description="action rounds that may search; then one final generation")
    max_new_tokens: int = Field(500, ge=1, description="new tokens per policy turn (paper: 500)")
    max_information_tokens: int | None = Field(
        None, ge=1, description="cut each <information> block to this many tokens (closing tag kept)")
    eos_ends_episode: bool = Field(False, description="an EOS without a tag ends the episode (default: invalid)")
    curriculum: bool = Field(
        True, description="send the global step so the service applies its noise curriculum; False leaves p to "
        "the service's --noise-probability")
    total_steps: int | None = Field(
        None, ge=1, description="curriculum length m sent with the step (default: the service's curriculum)")
    timeout_s: float = Field(120.0, gt=0, description="per-attempt HTTP timeout of one search")
    max_retries: int = Field(3, ge=0, description="retries of a failed search (503, connection error)")
    backoff_s: float = Field(1.0, ge=0, description="first retry delay; doubles each time")
    max_concurrent_searches: int = Field(64, ge=1, description="searches in flight per agent-loop worker process")

    @field_validator("service_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"service_url must be the http(s) URL of `zerosearch serve`'s /retrieve, got {url!r}")
        return url

    @classmethod
    def from_trainer_config(cls, config: Any) -> ZeroSearchVerlSettings:
        """Read ``config.zerosearch`` (an OmegaConf node or a mapping) with a clear error when it is missing."""
        section = config.get("zerosearch") if hasattr(config, "get") else None
        if section is None:
            raise ValueError("the verl config has no 'zerosearch' section; add one with at least service_url "
                             "(see configs/verl/ and docs/verl.md), e.g. +zerosearch.service_url=http://HOST:8000/retrieve")
        if hasattr(section, "_get_node"):  # OmegaConf DictConfig
            from omegaconf import OmegaConf

            section = OmegaConf.to_container(section, resolve=True, throw_on_missing=True)
        return cls.model_validate(dict(section))

    def bearer_token(self) -> str | None:
        """The token from ``token_env``, or None when unset."""
        return os.environ.get(self.token_env) or None
