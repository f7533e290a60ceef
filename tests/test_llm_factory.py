"""GeneratorConfig validation, build_generator for both backends, and `zerosearch generate` on SmolLM2."""

from __future__ import annotations

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from zerosearch.cli import generate as generate_cli
from zerosearch.llm.base import TextGenerator
from zerosearch.llm.factory import GeneratorConfig, build_generator
from zerosearch.llm.openai_backend import OpenAIGenerator


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"backend": "openai"}, "needs base_url"),
        ({"base_url": "http://h:1"}, "only used by backends 'openai' and 'llamacpp'"),
        ({"api_key_env": "KEY"}, "api_key_env is only used"),
        ({"backend": "llamacpp", "api": "chat"}, "drop api: chat"),
        ({"backend": "llamacpp", "base_url": "http://h:1", "llamacpp": {"threads": 2}}, "with base_url"),
        ({"llamacpp": {"threads": 2}}, "only used by backend 'llamacpp'"),
        ({"backend": "llamacpp", "llamacpp": {"quantization": "q9_9"}}, "unknown GGUF type 'q9_9'"),
        ({"backend": "llamacpp", "llamacpp": {"gguf": "m.gguf", "quantization": "q8_0"}}, "with gguf given"),
        ({"backend": "llamacpp", "llamacpp": {"slots": 4}}, "Extra inputs are not permitted"),
        ({"dtype": "fp8"}, "dtype"),
        ({"batch_size": 0}, "batch_size"),
        ({"temperature": 0.5}, "Extra inputs are not permitted"),
        ({"system_prompt": ""}, "system_prompt is only sent by backend 'openai' with api 'chat'"),
        ({"backend": "openai", "base_url": "http://h:1", "api": "completions", "system_prompt": "x"},
         "system_prompt is only sent"),
    ],
)
def test_bad_configs_are_rejected_with_a_reason(fields, message):
    with pytest.raises(ValidationError, match=message):
        GeneratorConfig.model_validate(fields)


def test_openai_config_builds_a_client_with_its_settings(monkeypatch):
    monkeypatch.setenv("ZS_TEST_KEY", "secret")
    config = {
        "backend": "openai",
        "model": "m",
        "base_url": "http://127.0.0.1:9/v1",
        "api": "completions",
        "api_key_env": "ZS_TEST_KEY",
        "concurrency": 3,
        "timeout_s": 5,
        "max_retries": 1,
    }
    gen = build_generator(config)
    assert isinstance(gen, OpenAIGenerator) and isinstance(gen, TextGenerator)
    assert gen.endpoint == "http://127.0.0.1:9/v1/completions"
    assert (gen.concurrency, gen.timeout_s, gen.max_retries) == (3, 5, 1)
    assert gen._headers == {"Authorization": "Bearer secret"}
    monkeypatch.delenv("ZS_TEST_KEY")
    with pytest.raises(ValueError, match="ZS_TEST_KEY"):
        build_generator(config)


def test_an_empty_system_prompt_is_sent_as_an_empty_system_message():
    """'' is not None: the reference's simulators expect an empty system message (a chat template would
    otherwise write its default one)."""
    from zerosearch.llm.base import SamplingParams

    params = SamplingParams(max_new_tokens=4)
    empty = build_generator({"backend": "openai", "model": "m", "base_url": "http://h:1", "system_prompt": ""})
    assert empty._body("q", params, 0)["messages"] == [{"role": "system", "content": ""},
                                                        {"role": "user", "content": "q"}]
    none = build_generator({"backend": "openai", "model": "m", "base_url": "http://h:1"})
    assert none._body("q", params, 0)["messages"] == [{"role": "user", "content": "q"}]


@pytest.mark.slow
def test_transformers_config_loads_smollm2_and_cli_answers_paris(smollm2_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batch-1 matmuls: one thread is much faster on a busy 2-core box
    try:
        _check_smollm2_and_cli(smollm2_path)
    finally:
        torch.set_num_threads(threads)


def _check_smollm2_and_cli(smollm2_path: str) -> None:
    gen = build_generator(GeneratorConfig(model=smollm2_path, dtype="float32", device="cpu", batch_size=4))
    assert isinstance(gen, TextGenerator) and gen.batch_size == 4 and str(gen.device) == "cpu"

    app = typer.Typer(add_completion=False)
    app.command()(generate_cli.main)
    result = CliRunner().invoke(
        app, ["--model", "smollm2-135m-instruct", "--max-new-tokens", "12", "What is the capital of France?"]
    )
    assert result.exit_code == 0, result.output
    assert "Paris" in result.output


def test_cli_reports_bad_flags():
    app = typer.Typer(add_completion=False)
    app.command()(generate_cli.main)
    result = CliRunner().invoke(app, ["--backend", "openai", "hello"])
    assert result.exit_code == 2
    assert "needs base_url" in result.output


def test_factory_docstring_example():
    import doctest

    from zerosearch.llm import factory

    result = doctest.testmod(factory)
    assert result.attempted > 0 and result.failed == 0


def test_generate_cli_names_a_missing_model(tmp_path) -> None:
    from zerosearch.cli.main import app

    result = CliRunner().invoke(app, ["generate", "--model", str(tmp_path / "missing"), "hi"])
    assert result.exit_code == 2
    assert "cannot load model" in result.output and "does not exist" in result.output


def test_a_dumped_llamacpp_config_loads_back():
    """A run's saved config (every field dumped) must load again: llama.cpp's api is completions, said so."""
    config = GeneratorConfig(backend="llamacpp", model="m")
    assert config.api == "completions"
    assert GeneratorConfig.model_validate(config.model_dump()) == config
    with pytest.raises(ValueError, match="drop api: chat"):
        GeneratorConfig(backend="llamacpp", model="m", api="chat")
