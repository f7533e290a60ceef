"""``zerosearch sft`` end to end on CPU: real HotpotQA questions (8 of the aligned file) with their own
paragraphs as the corpus, real BM25, the SmolLM2 tokenizer and chat template, and a tiny Llama built from a
config and saved to disk as the model to warm-start (SmolLM2 itself would take minutes per step here).
Plus the clear errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch
import typer
import yaml
from safetensors.torch import load_file
from train_tiny import save_tiny_llama
from typer.testing import CliRunner

from zerosearch.cli import sft as sft_cli
from zerosearch.data.types import QAExample
from zerosearch.llm.base import SamplingParams
from zerosearch.llm.factory import GeneratorConfig, build_generator
from zerosearch.rollout import RolloutConfig, run_rollout
from zerosearch.search.bm25 import BM25SearchEngine

ALIGNED = "aligned/hotpotqa_distractor_dev_100.json"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(sft_cli.main)
    return app


@pytest.fixture(scope="module")
def tiny_model_dir(smollm2_path, tmp_path_factory):
    """A 2-layer Llama (hidden 64) with SmolLM2's tokenizer and chat template, saved like any checkpoint."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny"), smollm2_path)


@pytest.fixture
def aligned_8(shared_data, tmp_path):
    rows = json.loads((shared_data / ALIGNED).read_text())[:8]
    path = tmp_path / "hotpot8.json"
    path.write_text(json.dumps(rows))
    return path


def _write_config(tmp_path, model_dir, aligned, **changes):
    config = {
        "output_dir": str(tmp_path / "run"),
        "data": {"aligned": str(aligned), "test_fraction": 0.25, "split_seed": 0},
        "demos": {"top_k_documents": 2, "max_searches": 2},
        "prompt": {"max_information_tokens": 48},  # short rows: the tiny model's 49k-word logits dominate
        "sft": {"model": str(model_dir), "max_steps": 12, "batch_size": 2, "learning_rate": 1e-2,
                "max_length": None, "logging_steps": 3, "use_cpu": True, "num_threads": 1},
    }
    for dotted, value in changes.items():
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_sft_trains_on_policy_tokens_and_saves_a_model_the_backend_loads(tmp_path, tiny_model_dir, aligned_8):
    config = _write_config(tmp_path, tiny_model_dir, aligned_8)
    result = CliRunner().invoke(_app(), ["--config", str(config)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    record = json.loads((run / "warmstart.json").read_text())
    assert record["data"]["train_questions"] == 6 and record["data"]["test_questions"] == 2
    assert record["data"]["demonstrations"] == 6
    assert record["sft"]["loss_after"] < 0.85 * record["sft"]["loss_before"], record["sft"]
    losses = [point["loss"] for point in record["sft"]["curve"]]
    assert len(losses) == 4 and losses[-1] < losses[0]
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(run / "model" / "model.safetensors")
    assert all(not torch.equal(before[k], after[k]) for k in before if "layers.0" in k)
    assert len((run / "demos.jsonl").read_text().splitlines()) == 6
    test_ids = [json.loads(line)["id"] for line in (run / "split" / "test.jsonl").read_text().splitlines()]
    assert not set(test_ids) & {json.loads(line)["id"] for line in (run / "demos.jsonl").read_text().splitlines()}
    # the saved directory is a policy for the real backend and the rollout
    policy = build_generator(GeneratorConfig(model=str(run / "model"), device="cpu", dtype="float32"))
    assert policy.generate(["Question: who?"], SamplingParams(max_new_tokens=4, temperature=0.0))[0].token_ids
    engine = BM25SearchEngine(run / "corpus.jsonl", progress=False)
    episode = run_rollout(policy, engine, [QAExample("t", "Who directed Doctor Strange?", ("Scott Derrickson",))],
                          RolloutConfig(n_samples=1, max_new_tokens=8, max_turns=1), seed=0)[0]
    assert episode.response_ids


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data.aligned": "/nonexistent/hotpot.json"}, "aligned QA file /nonexistent/hotpot.json does not exist"),
        ({"data.test_fraction": 0.01}, "empty test side"),
        ({"engine": {"kind": "nosuch"}}, "engine"),
        ({"demos.bogus": 1}, "demos.bogus"),
        ({"sft.max_length": 64}, "exceed sft.max_length=64"),
    ],
)
def test_bad_input_exits_2_with_the_reason(tmp_path, tiny_model_dir, aligned_8, changes, message):
    config = _write_config(tmp_path, tiny_model_dir, aligned_8, **changes)
    result = CliRunner().invoke(_app(), ["--config", str(config)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "run" / "model").exists()


def test_missing_config_and_existing_model_are_refused(tmp_path, tiny_model_dir, aligned_8):
    result = CliRunner().invoke(_app(), ["--config", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "does not exist" in result.output
    (tmp_path / "run" / "model").mkdir(parents=True)
    (tmp_path / "run" / "model" / "config.json").write_text("{}")
    result = CliRunner().invoke(_app(), ["--config", str(_write_config(tmp_path, tiny_model_dir, aligned_8))])
    assert result.exit_code == 2 and "not empty" in result.output
