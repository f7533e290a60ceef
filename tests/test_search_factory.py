"""Engine configs from YAML-like dicts and CLI flags, and build_engine on real components."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from zerosearch.search.bm25 import BM25SearchEngine
from zerosearch.search.factory import (
    BM25EngineConfig,
    DenseEngineConfig,
    EngineConfig,
    RemoteEngineConfig,
    SimulatedEngineConfig,
    WebEngineConfig,
    build_engine,
    engine_config_from_flags,
    sized_to_batch,
)

ADAPTER = TypeAdapter(EngineConfig)
FIXTURE = Path(__file__).parent / "fixtures" / "wiki18_sample_200.jsonl"


@pytest.mark.parametrize(
    ("data", "cls"),
    [
        ({"kind": "bm25", "corpus": "c.jsonl"}, BM25EngineConfig),
        ({"kind": "dense", "corpus": "c.jsonl", "model": "intfloat/e5-base-v2"}, DenseEngineConfig),
        (
            {"kind": "simulated", "generator": {"model": "smollm2-135m-instruct"}, "noise_probability": 0.3},
            SimulatedEngineConfig,
        ),
        ({"kind": "remote", "url": "http://127.0.0.1:8000/retrieve", "shape": "zerosearch"}, RemoteEngineConfig),
        ({"kind": "web"}, WebEngineConfig),
    ],
)
def test_kind_picks_the_config_class(data: dict, cls: type) -> None:
    assert isinstance(ADAPTER.validate_python(data), cls)


def test_simulated_defaults_follow_the_paper() -> None:
    config = ADAPTER.validate_python({"kind": "simulated", "generator": {}})
    assert (config.mode, config.include_question_and_answer, config.temperature, config.max_new_tokens) == (
        "prompt",
        True,
        0.8,
        600,
    )
    assert (config.noise_probability, config.seed) == (0.0, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "bm25", "corpus": "c.jsonl", "typo": 1}, "typo"),
        ({"kind": "nope"}, "does not match any of the expected tags"),
        ({"kind": "simulated", "generator": {}, "noise_probability": 1.5}, "less than or equal to 1"),
        ({"kind": "simulated", "generator": {}, "mode": "lucky"}, "'prompt' or 'finetuned'"),
        ({"kind": "remote", "url": "http://x", "shape": "other"}, "'search-r1' or 'zerosearch'"),
        ({"kind": "bm25"}, "corpus"),
    ],
)
def test_invalid_configs_name_the_problem(data: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ADAPTER.validate_python(data)


def test_flags_route_generator_and_engine_fields() -> None:
    config = engine_config_from_flags(
        "simulated",
        model="smollm2-135m-instruct",
        device="cpu",
        dtype="float32",
        noise_probability=0.4,
        include_question_and_answer=False,
        seed=None,
    )
    assert isinstance(config, SimulatedEngineConfig)
    assert (config.generator.model, config.generator.device, config.generator.dtype) == (
        "smollm2-135m-instruct",
        "cpu",
        "float32",
    )
    assert config.noise_probability == 0.4 and not config.include_question_and_answer and config.seed == 0
    served = engine_config_from_flags("simulated", model="qwen", url="http://127.0.0.1:8001/v1")
    assert (served.generator.backend, served.generator.base_url) == ("openai", "http://127.0.0.1:8001/v1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"engine": "bm25"}, "--engine bm25 needs --corpus"),
        ({"engine": "dense"}, "--engine dense needs --corpus"),
        ({"engine": "simulated"}, "--engine simulated needs --model"),
        ({"engine": "remote"}, "--engine remote needs --url"),
        ({"engine": "bm25", "corpus": "c", "model": "m"}, "does not use --model"),
        ({"engine": "web", "corpus": "c"}, "does not use --corpus"),
        ({"engine": "google"}, "unknown engine 'google'; choose one of: simulated, bm25, dense, remote, web"),
        ({"engine": "bm25", "corpus": "c", "bogus": 1}, "bogus"),
    ],
)
def test_bad_flags_are_clear_errors(args: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        engine_config_from_flags(**args)


def test_build_bm25_from_flags(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    shutil.copy(FIXTURE, corpus)
    engine = build_engine(engine_config_from_flags("bm25", corpus=str(corpus), progress=False))
    assert isinstance(engine, BM25SearchEngine) and engine.name == "bm25" and len(engine) == 200


def test_build_engine_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="needs one of the engine configs"):
        build_engine({"kind": "bm25"})


def test_llamacpp_slots_follow_the_batch_unless_set() -> None:
    """A llama.cpp simulator with concurrency unset gets one parallel slot per query of the caller's batch;
    an explicit concurrency, other backends and other engines are left alone."""
    def simulated(**generator: object) -> SimulatedEngineConfig:
        return SimulatedEngineConfig(generator={"model": "m", **generator})

    sized = sized_to_batch(simulated(backend="llamacpp", llamacpp={"gguf": "m.gguf", "threads": 2}), 16)
    assert sized.generator.concurrency == 16
    assert sized.generator.llamacpp.gguf == Path("m.gguf") and sized.generator.llamacpp.threads == 2
    explicit = simulated(backend="llamacpp", concurrency=4)
    assert sized_to_batch(explicit, 16) is explicit
    local = simulated()
    assert sized_to_batch(local, 16) is local
    bm25 = BM25EngineConfig(corpus=Path("c.jsonl"))
    assert sized_to_batch(bm25, 16) is bm25
    with pytest.raises(ValueError, match="batch must be >= 1"):
        sized_to_batch(explicit, 0)
