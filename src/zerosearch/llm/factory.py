"""One typed config that names a text generator, and the function that builds it.

Why this exists: configs (YAML for training, the simulated search engine, the CLI flags) describe a
generator as data; :func:`build_generator` turns that into a :class:`TextGenerator` and is the only
place that picks a backend class. Heavy libraries (torch, transformers) load only when the local
backend is built.

Three backends: ``transformers`` (the model runs in this process), ``openai`` (any OpenAI-compatible
server), ``llamacpp`` (llama.cpp's ``llama-server``: zerosearch starts one on a GGUF export of ``model``
with ``concurrency`` parallel slots, or uses the one at ``base_url``; docs/serving.md).

    >>> GeneratorConfig(backend="openai", base_url="http://127.0.0.1:8000", model="m").backend
    'openai'
    >>> GeneratorConfig(backend="llamacpp", model="runs/sim", concurrency=16, llamacpp={"threads": 2}).llamacpp.threads
    2
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zerosearch.llm.base import TextGenerator
from zerosearch.llm.gguf_export import check_type


class LlamaCppSettings(BaseModel):
    """The ``llama-server`` zerosearch starts for backend ``llamacpp`` (when no ``base_url`` is given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gguf: Path | None = Field(
        None, description="GGUF file to serve (exported from `model`); default: `model` exported once into the "
        "zerosearch cache at `quantization`")
    quantization: str = Field("q8_0", description="GGUF type of that automatic export: f16, q8_0, q4_0, q4_k_m, ...")
    threads: int | None = Field(None, ge=1, description="CPU threads for decoding and prompts (-t, -tb); "
                                "default: llama.cpp's choice")
    context_per_slot: int = Field(2048, ge=16, description="KV-cache tokens per slot: prompt + generated tokens")
    startup_timeout_s: float = Field(120.0, gt=0, description="the server must answer GET /health within this")
    binary: Path | None = Field(None, description="the llama-server program; default: build/llama.cpp/bin of the "
                                "checkout, $ZEROSEARCH_LLAMA_CPP/bin, then PATH")
    log_file: Path | None = Field(None, description="the server's log (default: a temporary file, named in errors)")
    extra_args: tuple[str, ...] = Field((), description="more llama-server flags, e.g. ['--cache-ram', '0']")

    @field_validator("quantization")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return check_type(value)

    @model_validator(mode="after")
    def _gguf_or_quantization(self) -> LlamaCppSettings:
        if self.gguf is not None and "quantization" in self.model_fields_set:
            raise ValueError("quantization sets the type of the automatic export; with gguf given drop it")
        return self


class GeneratorConfig(BaseModel):
    """Which model generates text, and how it is reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # what
    backend: Literal["transformers", "openai", "llamacpp"] = Field(
        "transformers",
        description="'transformers': load the model here; 'openai': call a server; 'llamacpp': llama.cpp's "
        "llama-server, started here or at base_url",
    )
    model: str = Field(
        "smollm2-135m-instruct",
        description="Hub id, local directory or built-in name (transformers; llamacpp: its tokenizer renders the "
        "prompts and it is the source of the GGUF export); served model name (openai).",
    )
    # local backend
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype; 'auto' = bfloat16 on a capable GPU, else float32."
    )
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    batch_size: int = Field(32, ge=1, description="Prompts per generate() batch (local backend).")
    # server backend
    base_url: str | None = Field(None, description="Server root, e.g. http://127.0.0.1:8000 (or .../v1).")
    api: Literal["chat", "completions"] = Field(
        "chat", description="/v1/chat/completions or /v1/completions (llamacpp: always completions).")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the API key.")
    concurrency: int = Field(
        8, ge=1, description="Requests in flight at once; llamacpp: also the server's parallel slots (-np) — size "
        "it to the batch of queries the rollout sends")
    timeout_s: float = Field(60.0, gt=0, description="Deadline of one request, seconds.")
    max_retries: int = Field(3, ge=0, description="Retries on connect errors, timeouts, 429 and 5xx.")
    system_prompt: str | None = Field(
        None, description="api 'chat': a system message before each prompt ('' sends an empty one; None: none)."
    )
    # llama.cpp server started by zerosearch
    llamacpp: LlamaCppSettings | None = Field(
        None, description="backend llamacpp without base_url: the llama-server zerosearch starts (defaults if unset)")

    @model_validator(mode="before")
    @classmethod
    def _llamacpp_calls_completions(cls, data: Any) -> Any:
        """llama.cpp is always asked through /v1/completions: make ``api`` say so, so that a dumped config
        (``api: completions``) loads back as it was."""
        if isinstance(data, dict) and data.get("backend") == "llamacpp" and "api" not in data:
            return {**data, "api": "completions"}
        return data

    @model_validator(mode="after")
    def _check_backend_fields(self) -> GeneratorConfig:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8000)")
        if self.backend == "transformers" and self.base_url:
            raise ValueError(
                f"base_url={self.base_url!r} is only used by backends 'openai' and 'llamacpp'; set the backend or "
                "drop it"
            )
        if self.api_key_env is not None and self.backend == "transformers":
            raise ValueError("api_key_env is only used by backends 'openai' and 'llamacpp'")
        if self.system_prompt is not None and (self.backend != "openai" or self.api != "chat"):
            raise ValueError("system_prompt is only sent by backend 'openai' with api 'chat'")
        if self.backend == "llamacpp":
            self._check_llamacpp()
        elif self.llamacpp is not None:
            raise ValueError("the llamacpp section is only used by backend 'llamacpp'; set that backend or drop it")
        return self

    def _check_llamacpp(self) -> None:
        if self.api != "completions":
            raise ValueError("backend 'llamacpp' renders prompts itself and calls /v1/completions; drop api: chat")
        if self.base_url and self.llamacpp is not None:
            raise ValueError("the llamacpp section configures the server zerosearch starts; with base_url (a running "
                             "server) drop it")


def build_generator(config: GeneratorConfig | dict) -> TextGenerator:
    """Build the generator a config describes (loads the model for the local backend, starts llama-server
    for backend llamacpp without base_url)."""
    config = config if isinstance(config, GeneratorConfig) else GeneratorConfig.model_validate(config)
    if config.backend == "llamacpp":
        return _build_llamacpp(config)
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


def _build_llamacpp(config: GeneratorConfig) -> TextGenerator:
    from zerosearch.llm.llamacpp_backend import LlamaCppGenerator, load_tokenizer

    requests = {"timeout_s": config.timeout_s, "max_retries": config.max_retries}
    if config.base_url:
        return LlamaCppGenerator(config.base_url, tokenizer=load_tokenizer(config.model), model=config.model,
                                 concurrency=config.concurrency, api_key=_api_key(config.api_key_env), **requests)
    settings = config.llamacpp or LlamaCppSettings()
    if settings.gguf is not None:
        gguf = settings.gguf
    else:
        from zerosearch.llm.gguf_export import cached_gguf

        gguf = cached_gguf(config.model, settings.quantization)
    return LlamaCppGenerator.start(
        gguf, tokenizer_source=config.model, slots=config.concurrency, threads=settings.threads,
        context_per_slot=settings.context_per_slot, binary=settings.binary,
        startup_timeout_s=settings.startup_timeout_s, log_path=settings.log_file, extra_args=settings.extra_args,
        **requests)


def _api_key(env_name: str | None) -> str | None:
    if env_name is None:
        return None
    key = os.environ.get(env_name)
    if not key:
        raise ValueError(f"api_key_env={env_name!r} but that environment variable is not set (or empty)")
    return key
