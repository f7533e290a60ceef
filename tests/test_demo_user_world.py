"""A user's own world file, end to end: `zerosearch demo --world my_world.yaml` with questions, a corpus and a
base model of the user's, through the same runner, task graph, results.json, claims and report as the built-in
worlds.

Real components throughout, kept tiny: a corpus and questions written here (the capital-city world of
tests/train_tiny.py), a 2-layer Llama with a word-level tokenizer saved with save_pretrained (the user's
"base model"), the protocol warm-start on demonstrations from real BM25 (TRL), GRPO through build_trainer and
the evaluation harness, and a simulator the user tuned before (a `zerosearch simulator sft`-shaped directory:
the tiny model and its simulator.yaml) serving the ZeroSearch arm. The scores mean nothing (a 70k-parameter
model after a few steps); the test checks that a world that is only a YAML file and data runs every stage
and lands in a valid report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from train_tiny import save_tiny_llama, tiny_model, word_tokenizer, write_world
from typer.testing import CliRunner

from zerosearch.cli.main import app
from zerosearch.demo.results import DemoResults
from zerosearch.demo.stages import parse_engine
from zerosearch.search.base import SearchRequest
from zerosearch.search.factory import build_engine

pytestmark = pytest.mark.timeout(900)


def tuned_simulator(path: Path, tokenizer_source: Path) -> None:
    """What `zerosearch simulator sft` leaves: a model (a 2-layer Llama with SmolLM2's tokenizer, so the
    engine's stop strings tokenize) and its simulator.yaml."""
    save_tiny_llama(path, tokenizer_source, hidden_size=32, intermediate_size=64)
    (path / "simulator.yaml").write_text(yaml.safe_dump({"engine": {
        "kind": "simulated", "mode": "finetuned", "generator": {"model": "replaced by the directory itself"},
        "max_new_tokens": 12, "use_chat_template": False}}), "utf-8")


def user_world(root: Path, simulator_tokenizer: Path) -> Path:
    """The files a user brings: data, a base model directory, and the world file that names them (relative)."""
    write_world(root / "data")
    tokenizer = word_tokenizer()
    tiny_model(len(tokenizer)).save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    tuned_simulator(root / "simulator", simulator_tokenizer)
    world = {
        "name": "capitals", "description": "capital cities of four countries",
        "data": {"source": "files", "corpus": "data/corpus.jsonl", "train": "data/questions.jsonl",
                 "test_fraction": 0.5},
        "policy": {"source": "demonstrations", "demos": {"answer_think": "doc", "announce_last_search": False},
                   "sft": {"model": "base", "max_steps": 3, "batch_size": 2, "learning_rate": 3e-3,
                           "max_length": None, "probe_rows": 2, "logging_steps": 1, "num_threads": 1}},
        "simulators": {"tuned": {"source": "model", "path": "simulator", "engine": {"temperature": 1.0}}},
        "prompt": {"template": "data/template.txt", "use_chat_template": False},
        "rollout": {"max_turns": 1, "max_new_tokens": 8, "top_k": 1},
        "rl": {"steps": 2, "seeds": 1, "prompts_per_step": 2, "n_samples": 2, "validate_every": 1,
               "val_questions": 2, "learning_rate": 1e-3},
        "evaluation": {"decodings": ["greedy"], "metric": "f1"},
        "claims": {"near_zero": None},
        "arms": [{"name": "direct", "method": "direct"}, {"name": "before_rl"},
                 {"name": "rl_real", "train": {"engine": "real"}, "seeds": "rl"},
                 {"name": "zerosearch", "train": {"engine": "tuned", "noise": "curriculum"}, "seeds": "rl"}],
    }
    path = root / "my_world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False), "utf-8")
    return path


def test_a_user_world_file_runs_every_stage_into_a_report(tmp_path: Path, smollm2_path: Path) -> None:
    world = user_world(tmp_path / "user", smollm2_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["demo", "--world", str(world), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    results = DemoResults.read(out)
    assert results.world.name == "capitals" and results.metric == "f1" and results.decodings == ["greedy"]
    assert [a.name for a in results.arms] == ["direct", "before_rl", "rl_real", "zerosearch"]
    assert results.world.train_questions == 2 and results.world.test_questions == 2
    rl = results.arm("rl_real")
    assert rl.train_engine == "real" and rl.cost.real_engine_searches == rl.cost.train_searches
    assert (out / rl.metrics_jsonl[0]).is_file()
    metrics = [json.loads(line) for line in (out / rl.metrics_jsonl[0]).read_text().splitlines()]
    assert [m["step"] for m in metrics if "rollout/reward" in m] == [1, 2]
    assert (out / "world" / "warmstart" / "model" / "config.json").is_file()  # the user's model, warm-started
    trained = yaml.safe_load((out / "arms" / "rl_real" / "seed0" / "train" / "config.yaml").read_text())
    assert trained["model"]["name_or_path"].endswith("world/warmstart/model")
    page = (out / "report.html").read_text("utf-8")
    assert "world capitals" in page and "not applicable" in page  # claim (e) does not apply to real facts
    simulated = results.arm("zerosearch")  # trained against the user's simulator, scored with the real engine
    assert simulated.train_engine == "tuned" and simulated.cost.real_engine_searches == 0
    served = yaml.safe_load((out / "arms" / "zerosearch" / "seed0" / "train" / "config.yaml").read_text())["engine"]
    assert served["kind"] == "simulated" and served["temperature"] == 1.0
    assert served["generator"]["model"] == str((world.parent / "simulator").resolve())
    engine = build_engine(parse_engine(served))  # the arm's engine answers a search with documents
    [answer] = engine.search([SearchRequest("capital of France", top_k=1)])
    assert answer.documents
    assert "(a) ZeroSearch matches RL with the real engine" in result.output
    assert "[not measured] (a)" not in result.output
    rerun = CliRunner().invoke(app, ["demo", "--world", str(world), "--out", str(out), "--workers", "1"])
    # warm-start, simulator, quality and four arms reused
    assert rerun.exit_code == 0 and rerun.output.count("skip ") == 7, rerun.output
