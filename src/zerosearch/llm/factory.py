"""One typed config that names a text generator, and the function that builds it.

Why this exists: configs (YAML for training, the simulated search engine, the CLI flags) describe a
generator as data; :func:`build_generator` turns that into a :class:`TextGenerator` and is the only
place that picks a backend class. Heavy libraries (torch, transformers) load only when the local
backend is built.

    >>> GeneratorConfig(backend="openai", base_url="http://127.0.0.1:8000", model="m").backend
    'openai'
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch.llm.base import TextGenerator


class GeneratorConfig(BaseModel):
    """Which model generates text, and how it is reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # what
    backend: Literal["transformers", "openai"] = Field(
        "transformers", description="'transformers': load the model here; 'openai': call a server."
    )
    model: str = Field(
        "smollm2-135m-instruct",
        description="Hub id, local directory or built-in name (transformers); served model name (openai).",
    )
    # local backend
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype; 'auto' = bfloat16 on a capable GPU, else float32."
    )
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    batch_size: int = Field(32, ge=1, description="Prompts per generate() batch (local backend).")
    # server backend
    base_url: str | None = Field(None, description="Server root, e.g. http://127.0.0.1:8000 (or .../v1).")
    api: Literal["chat", "completions"] = Field("chat", description="/v1/chat/completions or /v1/completions.")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the API key.")
    concurrency: int = Field(8, ge=1, description="Requests in flight at once.")
    timeout_s: float = Field(60.0, gt=0, description="Deadline of one request, seconds.")
    max_retries: int = Field(3, ge=0, description="Retries on connect errors, timeouts, 429 and 5xx.")
    system_prompt: str | None = Field(
        None, description="api 'chat': a system message before each prompt ('' sends an empty one; None: none)."
    )

    @model_validator(mode="after")
    def _check_backend_fields(self) -> GeneratorConfig:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8000)")
        if self.backend == "transformers" and self.base_url:
            raise ValueError(
                f"base_url={self.base_url!r} is only used by backend 'openai'; set backend: openai or drop it"
            )
        if self.api_key_env is not None and self.backend != "openai":
            raise ValueError("api_key_env is only used by backend 'openai'")
        if self.system_prompt is not None and (self.backend != "openai" or self.api != "chat"):
            raise ValueError("system_prompt is only sent by backend 'openai' with api 'chat'")
        return self


def build_generator(config: GeneratorConfig | dict) -> TextGenerator:
    """Build the generator a config describes (loads the model for the local backend)."""
    config = config if isinstance(config, GeneratorConfig) else GeneratorConfig.model_validate(config)
    if config.backend == "openai":
        from zerosearch.llm.openai_backend import OpenAIGenerator

        assert config.base_url is not None  # guaranteed by the validator
        return OpenAIGenerator(
            config.base_url,
            config.model,
            api=config.api,
            api_key=_api_key(config.api_key_env),
            concurrency=config.concurrency,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            system_prompt=config.system_prompt,
        )
    from zerosearch.llm.transformers_backend import TransformersGenerator

    return TransformersGenerator.from_pretrained(
        config.model, dtype=config.dtype, device=config.device, batch_size=config.batch_size
    )


def _api_key(env_name: str | None) -> str | None:
    if env_name is None:
        return None
    key = os.environ.get(env_name)
    if not key:
        raise ValueError(f"api_key_env={env_name!r} but that environment variable is not set (or empty)")
    return key
