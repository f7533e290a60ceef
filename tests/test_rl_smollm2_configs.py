"""The real-model RL configs (SmolLM2, HotpotQA): they load through ``zerosearch train``'s loader, point at
what ``zerosearch sft --config configs/sft-smollm2-hotpotqa.yaml`` writes, and the two arms differ only in
the training engine (so the benchmark compares engines, not settings)."""

from __future__ import annotations

from pathlib import Path

from zerosearch.train.config import load_config
from zerosearch.warmstart import load_warmstart_config

ROOT = Path(__file__).resolve().parents[1]
BM25 = ROOT / "configs" / "rl-smollm2-hotpotqa-bm25.yaml"
SIMULATOR = ROOT / "configs" / "rl-smollm2-hotpotqa-simulator.yaml"
WARMSTART = ROOT / "configs" / "sft-smollm2-hotpotqa.yaml"


def test_both_arms_load_and_train_the_warm_started_model_on_its_split():
    warm = load_warmstart_config(WARMSTART)
    for path in (BM25, SIMULATOR):
        config = load_config(path)
        assert Path(config.model.name_or_path) == warm.sft.output_dir
        assert Path(config.data.train) == warm.output_dir / "split" / "train.jsonl"
        assert Path(config.data.val) == warm.output_dir / "split" / "test.jsonl"
        assert config.rollout.top_k_documents == warm.demos.top_k_documents
        assert config.rollout.max_turns >= warm.demos.max_searches
        assert config.validation.every > 0 and config.checkpoint.save_final


def test_arms_differ_only_in_the_training_engine_and_its_companions():
    bm25 = load_config(BM25).model_dump(mode="json")
    simulator = load_config(SIMULATOR).model_dump(mode="json")
    engine_keys = {"engine", "shadow_engine", "validation", "curriculum", "output_dir", "logging", "checkpoint"}
    same = {k: v for k, v in bm25.items() if k not in engine_keys}
    assert same == {k: v for k, v in simulator.items() if k not in engine_keys}


def test_simulator_arm_is_judged_by_real_bm25_over_the_pooled_corpus():
    warm = load_warmstart_config(WARMSTART)
    config = load_config(SIMULATOR)
    assert config.engine.kind == "simulated" and config.engine.mode == "finetuned"
    assert config.curriculum.p_end > config.curriculum.p_start
    assert config.curriculum.total_steps == config.total_steps
    for real in (config.shadow_engine, config.validation.engine):
        assert real.kind == "bm25" and Path(real.corpus) == warm.corpus_path
    bm25 = load_config(BM25)
    assert bm25.engine.kind == "bm25" and Path(bm25.engine.corpus) == warm.corpus_path
