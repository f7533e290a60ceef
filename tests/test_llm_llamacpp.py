"""GGUF export and the ``llamacpp`` generator backend against a real ``llama-server``.

Everything is real: a tiny Llama (random weights, SmolLM2's tokenizer and chat template) saved with
``save_pretrained``, exported by llama.cpp's converter (and ``llama-quantize``), served by ``llama-server``
on loopback, compared with transformers on the same prompts. The llama.cpp programs come from
``make llama-server``; without them these tests are skipped with that instruction, unless
``ZEROSEARCH_REQUIRE_LLAMA_CPP=1`` (set by ``make test``) makes it an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from zerosearch.llm.base import GenerationError, SamplingParams
from zerosearch.llm.gguf_export import export_gguf, gguf_metadata, verify_tokenizer
from zerosearch.llm.llamacpp_home import llama_cpp_converter, llama_cpp_program

PROMPTS = [
    "Search query: apollo 11 moon landing year\nKind of results: useful\nNumber of results: 3\nResults:\nDoc 1:",
    "The capital of France is",
    "Ünïcödé, emoji 🚀 and   spaces\tand digits 12345",
]
GREEDY = SamplingParams(max_new_tokens=24, temperature=0.0)


@pytest.fixture(scope="module")
def llama_cpp() -> None:
    try:
        llama_cpp_program("llama-server")
        llama_cpp_program("llama-quantize")
        llama_cpp_converter()
    except FileNotFoundError as err:
        if os.environ.get("ZEROSEARCH_REQUIRE_LLAMA_CPP") == "1":
            pytest.fail(f"ZEROSEARCH_REQUIRE_LLAMA_CPP=1 but {err}")
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, smollm2_path) -> Path:
    """A 2-layer Llama with SmolLM2's tokenizer, saved with save_pretrained (weights scaled up so greedy
    choices are not near-ties that float rounding could flip)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, initializer_range=0.2, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny") / "model"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_f32(llama_cpp, tiny_model, tmp_path_factory) -> Path:
    """The tiny model as an f32 GGUF, written by the CLI."""
    from zerosearch.cli.main import app

    out = tmp_path_factory.mktemp("gguf") / "tiny-f32.gguf"
    result = CliRunner().invoke(app, ["simulator", "export-gguf", "--model", str(tiny_model), "--out", str(out),
                                      "--type", "f32"])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    return out


@pytest.fixture(scope="module")
def transformers_tiny(tiny_model):
    from zerosearch.llm.transformers_backend import TransformersGenerator

    return TransformersGenerator.from_pretrained(str(tiny_model), dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def served(tiny_f32, tiny_model):
    from zerosearch.llm.factory import build_generator

    generator = build_generator({"backend": "llamacpp", "model": str(tiny_model), "concurrency": 3,
                                 "llamacpp": {"gguf": str(tiny_f32), "threads": 1, "context_per_slot": 512}})
    yield generator
    generator.close()


def test_export_keeps_tokenizer_and_chat_template(tiny_f32, tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    meta = gguf_metadata(tiny_f32)
    assert meta["architecture"] == "llama"
    assert meta["chat_template"] == tokenizer.chat_template and "<|im_start|>" in meta["chat_template"]
    assert meta["tokens"][: len(tokenizer)] == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    record = json.loads(Path(f"{tiny_f32}.json").read_text())
    assert record["type"] == "f32" and record["size_bytes"] == tiny_f32.stat().st_size


def test_verify_rejects_a_gguf_of_another_template(tiny_f32, tiny_model, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="chat template differs"):
        verify_tokenizer(tiny_f32, tmp_path)


def test_server_tokenises_like_transformers(served, transformers_tiny):
    """The server's tokenizer (the GGUF's vocabulary) turns every prompt, chat-templated ones included,
    into the ids transformers feeds the model."""
    chat = transformers_tiny.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Who wrote Hamlet?"}], tokenize=False, add_generation_prompt=True)
    root = served.base_url.removesuffix("/v1/completions")
    for text in [*PROMPTS, chat + "Doc 1:"]:
        answer = httpx.post(f"{root}/tokenize", json={"content": text, "add_special": True, "parse_special": True})
        assert answer.json()["tokens"] == transformers_tiny.encode(text), text


def test_llama_cpp_and_transformers_write_the_same_greedy_text(served, transformers_tiny):
    ours = [c.text for c in served.generate(PROMPTS, GREEDY)]
    theirs = [c.text for c in transformers_tiny.generate(PROMPTS, GREEDY)]
    assert ours == theirs
    assert all(len(t) > 10 for t in ours)


def test_simulated_engine_sends_the_same_prompts_through_both_backends(served, transformers_tiny, tiny_f32,
                                                                        tiny_model):
    """The engine renders the chat template with the generator's tokenizer in both cases, and the server
    was started by build_engine from a config: the raw outputs agree."""
    from zerosearch.search.base import SearchRequest
    from zerosearch.search.engine_config import SimulatedEngineConfig
    from zerosearch.search.simulated import SimulatedSearchEngine

    config = SimulatedEngineConfig(generator={"model": str(tiny_model)}, mode="prompt", temperature=0.0,
                                   max_new_tokens=20)
    requests = [SearchRequest(query="apollo 11", top_k=2, question="When?", golden_answers=("1969",), mode=m)
                for m in ("useful", "noisy")]
    local = SimulatedSearchEngine(transformers_tiny, config)
    remote = SimulatedSearchEngine(served, config)
    assert local.use_chat_template and remote.use_chat_template and remote.prime
    assert [local.build_prompt(r, "useful") for r in requests] == [remote.build_prompt(r, "useful") for r in requests]
    raw = [[r.extra["raw_output"] for r in engine.search(requests)] for engine in (local, remote)]
    assert raw[0] == raw[1]


def test_given_url_backend_uses_a_running_server(served, tiny_model, transformers_tiny):
    from zerosearch.llm.factory import build_generator

    root = served.base_url.removesuffix("/v1/completions")
    client = build_generator({"backend": "llamacpp", "model": str(tiny_model), "base_url": root})
    assert client.server is None and client.tokenizer is not None
    assert client.generate(PROMPTS[:1], GREEDY)[0].text == transformers_tiny.generate(PROMPTS[:1], GREEDY)[0].text


def test_quantised_export_is_served(tiny_f32, tiny_model, tmp_path):
    from zerosearch.llm.llamacpp_backend import LlamaCppGenerator

    out = tmp_path / "tiny-q4_0.gguf"
    record = export_gguf(tiny_model, out, "q4_0")
    assert gguf_metadata(out)["file_type"] == 2  # LLAMA_FTYPE_MOSTLY_Q4_0
    assert record.size_bytes == out.stat().st_size < tiny_f32.stat().st_size / 2
    with pytest.raises(FileExistsError, match="overwrite"):
        export_gguf(tiny_model, out, "q4_0")
    with LlamaCppGenerator.start(out, tokenizer_source=tiny_model, slots=2, threads=1, context_per_slot=256) as gen:
        completions = gen.generate(PROMPTS[:2], GREEDY)
    assert all(c.text for c in completions)
    assert not gen.server.alive


def test_model_without_gguf_is_exported_once_into_the_cache(llama_cpp, tiny_model, tmp_path, monkeypatch):
    from zerosearch.llm.factory import build_generator

    monkeypatch.setenv("ZEROSEARCH_CACHE", str(tmp_path))
    config = {"backend": "llamacpp", "model": str(tiny_model), "concurrency": 1,
              "llamacpp": {"quantization": "f16", "threads": 1, "context_per_slot": 256}}
    with build_generator(config) as first:
        assert first.generate(PROMPTS[:1], GREEDY)[0].text
    exported = list((tmp_path / "gguf").glob("*.gguf"))
    assert len(exported) == 1 and "-f16-" in exported[0].name
    stamp = exported[0].stat().st_mtime_ns
    build_generator(config).close()
    assert [p.stat().st_mtime_ns for p in (tmp_path / "gguf").glob("*.gguf")] == [stamp]


def test_a_server_that_dies_is_reported_with_its_log(tiny_f32, tiny_model, tmp_path):
    from zerosearch.llm.llamacpp_backend import LlamaCppGenerator

    log = tmp_path / "server.log"
    gen = LlamaCppGenerator.start(tiny_f32, tokenizer_source=tiny_model, slots=1, threads=1, context_per_slot=256,
                                  log_path=log, max_retries=0)
    gen.server.process.kill()
    gen.server.process.wait()
    with pytest.raises(GenerationError, match=f"exited with code -9.*{log}"):
        gen.generate(PROMPTS[:1], GREEDY)
    gen.close()


def test_the_server_dies_with_a_killed_parent(tiny_f32, tmp_path):
    """A run killed with SIGKILL (no atexit, no finalizers) must not leave its llama-server running."""
    script = (f"from zerosearch.llm.llamacpp_server import LlamaServer\n"
              f"s = LlamaServer({str(tiny_f32)!r}, slots=1, threads=1, context_per_slot=256)\n"
              f"s.start(); print(s.process.pid, flush=True)\nimport time; time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    server_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(server_pid):
        time.sleep(0.1)
    assert not _alive(server_pid), f"llama-server {server_pid} outlived its killed parent"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_bad_gguf_fails_start_up_naming_the_log(llama_cpp, tmp_path):
    from zerosearch.llm.llamacpp_server import LlamaServer

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    server = LlamaServer(bad, slots=1, threads=1, log_path=tmp_path / "bad.log")
    with pytest.raises(GenerationError, match=r"exited with code \d+ during start-up; its log .*bad\.log"):
        server.start()
    assert not server.alive


def test_start_up_is_bounded(tiny_f32, tmp_path):
    from zerosearch.llm.llamacpp_server import LlamaServer

    server = LlamaServer(tiny_f32, slots=1, threads=1, startup_timeout_s=0.001, log_path=tmp_path / "slow.log")
    with pytest.raises(GenerationError, match=r"not healthy within startup_timeout_s=0\.001"):
        server.start()
    assert not server.alive


def test_missing_programs_say_how_to_build_them(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROSEARCH_LLAMA_CPP", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make llama-server"):
        llama_cpp_program("llama-server")
    with pytest.raises(FileNotFoundError, match="make llama-server"):
        llama_cpp_converter()
