"""The demo's embedded config validates, and its before/after report reads the trainer's metrics file.

(The full `zerosearch demo` takes minutes: its parts, toy build and RL steps, are covered by
tests/test_toyworld_pipeline.py; `make demo` runs it.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zerosearch.cli.demo import DemoEngine, before_after, demo_config
from zerosearch.train.config import TrainConfig


def test_embedded_config_is_a_valid_train_config(tmp_path: Path) -> None:
    config = TrainConfig.model_validate(demo_config(tmp_path / "world", tmp_path, steps=5, seed=3))
    assert config.total_steps == 5 and config.seed == 3
    assert config.validation.at_start and config.validation.every == 5  # never later than the last step
    longer = TrainConfig.model_validate(demo_config(tmp_path / "world", tmp_path, steps=30, seed=3))
    assert longer.validation.every == 10


def test_default_trains_on_the_simulator_and_validates_on_bm25(tmp_path: Path) -> None:
    """ZeroSearch's split: the simulator (no answer hint) under the noise curriculum for training, the
    real engine for held-out scores; ``--engine bm25`` swaps only the training engine."""
    world = tmp_path / "world"
    simulated = TrainConfig.model_validate(demo_config(world, tmp_path, steps=30, seed=3))
    assert simulated.engine.kind == "simulated" and simulated.engine.mode == "finetuned"
    assert simulated.engine.include_question_and_answer is False
    assert Path(simulated.engine.generator.model) == world / "simulator"
    assert simulated.curriculum.probability(0) == 0.0 and abs(simulated.curriculum.probability(30) - 0.3) < 1e-9
    assert simulated.validation.engine.kind == "bm25"
    real = TrainConfig.model_validate(demo_config(world, tmp_path, steps=30, seed=3, engine=DemoEngine.BM25))
    assert real.engine.kind == "bm25" and real.validation.engine == simulated.validation.engine
    assert real.curriculum.probability(30) == 0.0


def test_before_after_reports_first_and_last_validation(tmp_path: Path) -> None:
    rows = [{"step": 0, "val/em": 0.1, "val/f1": 0.2, "val/searches": 1.0, "val/answer_rate": 0.9},
            {"step": 1, "rollout/reward": 0.5},
            {"step": 2, "val/em": 0.3, "val/f1": 0.4, "val/searches": 1.5, "val/answer_rate": 1.0}]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = before_after(path).splitlines()
    assert report[0].endswith("step 0 | step 2")
    assert report[1].split("|")[1:] == [" 0.100 ", " 0.300"]
    path.write_text(json.dumps({"step": 1, "rollout/reward": 0.5}) + "\n")
    with pytest.raises(RuntimeError, match="no validation step"):
        before_after(path)
