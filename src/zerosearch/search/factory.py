"""The one place that turns a typed engine config (``search/engine_config.py``) into a :class:`SearchEngine`.

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
from typing import Any

from zerosearch.llm.base import TextGenerator
from zerosearch.llm.factory import GeneratorConfig
from zerosearch.search.base import SearchEngine
from zerosearch.search.engine_config import (
    ENGINE_KINDS,
    BM25EngineConfig,
    DenseEngineConfig,
    EngineConfig,
    RemoteEngineConfig,
    SimulatedEngineConfig,
    WebEngineConfig,
)


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


def sized_to_batch(config: EngineConfig, batch: int) -> EngineConfig:
    """``config`` with its llama.cpp server's parallel slots sized to the ``batch`` of queries the caller sends.

    Only a simulated engine on generator backend ``llamacpp`` whose config leaves ``concurrency`` unset is
    changed (an explicit value wins); every other config comes back as it is. The trainer passes its
    episodes per step, so each rollout turn's searches decode in parallel slots at once.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if not isinstance(config, SimulatedEngineConfig):
        return config
    generator = config.generator
    if generator.backend != "llamacpp" or "concurrency" in generator.model_fields_set:
        return config
    sized = GeneratorConfig.model_validate({**generator.model_dump(exclude_unset=True), "concurrency": batch})
    return config.model_copy(update={"generator": sized})


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
    "sized_to_batch",
]
