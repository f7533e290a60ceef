"""The toy pipeline end to end, small: build (world + warm-start) -> greedy rollout -> two RL steps.

Real components throughout: the BM25 engine over the built corpus, the real rollout and trainer, a
real (tiny) Llama. The world and warm-start are shrunk so the module runs in well under a minute; the
long "reward rises" runs are measured by ``benchmarks/toy_learning.py``, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zerosearch.toyworld import ToyBuildConfig, build_toy_world
from zerosearch.toyworld.demos import DemoMix
from zerosearch.toyworld.model import TinyModelConfig
from zerosearch.toyworld.world import WorldConfig
from zerosearch.warmstart.stages import StageConfig

ROOT = Path(__file__).resolve().parents[1]
SMALL = ToyBuildConfig(
    world=WorldConfig(first_names=10, last_names=10, warmstart_people=60, train_people=20, test_people=20),
    model=TinyModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
    demos=DemoMix(copy_practice=100, read_practice=100),
    skills=StageConfig(steps=80, batch_size=16, learning_rate=3e-3, warmup_steps=10, log_every=40, check_every=40),
    # 40, not 20: with 20 steps of the TRL run the policy's first token stayed undecided between <search>, <answer>
    # and names (sampled episodes answered 0.23-0.36 of the time, measured)
    habits=StageConfig(steps=40, batch_size=16, learning_rate=3e-4, warmup_steps=5, log_every=10),
    num_threads=1,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_toy_world(tmp_path_factory.mktemp("toy") / "world", seed=0, config=SMALL, log=lambda _: None)


def test_build_writes_every_file_and_lowers_the_loss(built):
    for path in (built.corpus, built.world, built.warmstart, built.train, built.test, built.template,
                 built.demonstrations, built.manifest, built.policy / "config.json", built.policy / "tokenizer.json"):
        assert path.is_file(), path
    manifest = json.loads(built.manifest.read_text())
    ws = manifest["warmstart"]
    assert ws["held_out_loss_after"] < 0.6 * ws["held_out_loss_before"]
    assert manifest["config"]["seed"] == 0 and manifest["config"]["world"]["seed"] == 0
    assert set(manifest["versions"]) >= {"torch", "transformers", "tokenizers", "python"}
    skills, habits = manifest["behaviours"]["skills"], manifest["behaviours"]["habits"]
    assert set(skills) == {"correct", "copy_practice", "read_practice"}  # no imperfect behaviour in stage 1
    assert skills["copy_practice"] == 100 and skills["read_practice"] == 100
    assert {"no_search", "wrong_doc", "skip_hop", "correct"} <= set(habits)
    assert set(ws["reading"]) == {"born_in", "works_for", "birth_country"}
    assert all(0.0 <= v <= 1.0 for v in ws["reading"].values())
    assert isinstance(ws["passed_reading"], bool)
    assert ws["skills"]["steps"] == 80 or ws["passed_reading"]  # it only stops early when reading passes
    assert [c["step"] for c in ws["skills"]["reading_checks"]][:1] == [40] and ws["habits"]["steps"] == 40
    assert (built.root / "stages" / "skills" / "model.safetensors").is_file()  # the skills stage's model
    # the habits stage (60% guesses) makes the policy search less often than the skills stage left it
    assert 0.0 <= ws["search_probability"] < ws["skills"]["search_probability"] <= 1.0
    stages = [json.loads(line)["stage"] for line in built.demonstrations.read_text().splitlines()]
    assert stages.count("skills") == sum(skills.values()) and stages.count("habits") == sum(habits.values())


def test_build_refuses_to_overwrite(built):
    with pytest.raises(FileExistsError, match="overwrite"):
        build_toy_world(built.root, seed=0, config=SMALL, log=lambda _: None)


def test_same_seed_same_weights(built, tmp_path):
    """Two builds with one seed give identical world files and identical policy weights."""
    short = SMALL.model_copy(update={"skills": SMALL.skills.model_copy(update={"steps": 3}),
                                     "habits": SMALL.habits.model_copy(update={"steps": 2})})
    a = build_toy_world(tmp_path / "a", seed=5, config=short, log=lambda _: None)
    b = build_toy_world(tmp_path / "b", seed=5, config=short, log=lambda _: None)
    for name in ("corpus.jsonl", "world.json", "train.jsonl", "test.jsonl", "demonstrations.jsonl",
                 "policy/model.safetensors", "policy/tokenizer.json"):
        assert (a.root / name).read_bytes() == (b.root / name).read_bytes(), name
    assert (a.root / "corpus.jsonl").read_bytes() != built.corpus.read_bytes()


def test_warm_started_policy_acts_in_protocol_format(built):
    """The warm-started policy writes protocol turns: it answers (greedy and sampled), and sampled it
    sometimes searches and sometimes guesses (skills stage: always search; habits stage: often guess).
    With this module's 80-step budget it does not yet copy names; the full build's copying and reading
    are measured by its reading check and by benchmarks/toy_learning.py."""
    from zerosearch.llm.transformers_backend import TransformersGenerator
    from zerosearch.rollout import RolloutConfig
    from zerosearch.search.bm25 import BM25SearchEngine
    from zerosearch.toyworld.evaluate import evaluate_toy_policy, load_toy_questions

    policy = TransformersGenerator.from_pretrained(str(built.policy), device="cpu", dtype="float32")
    engine = BM25SearchEngine(built.corpus, progress=False)
    rollout = RolloutConfig(max_new_tokens=12, template_path=str(built.template))
    questions = load_toy_questions(built.test)
    greedy = evaluate_toy_policy(policy, engine, questions, rollout, temperature=0.0)
    sampled = evaluate_toy_policy(policy, engine, questions, rollout, temperature=1.0, n_samples=4)
    # 0.75, not 0.8: since issue 12 an <answer> opened in one turn and closed in a later one is no answer;
    # 10 of these 240 sampled episodes did that (measured: 0.8375 counted with the old regex, 0.796 now).
    assert greedy["answered"] >= 0.9 and sampled["answered"] >= 0.75
    assert 0.1 <= sampled["searched"] <= 0.9


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_two_rl_steps_run_from_the_toy_config(built, tmp_path, algo):
    from zerosearch.train.build import build_trainer
    from zerosearch.train.config import load_config

    config = load_config(ROOT / "configs" / f"toy-{algo}.yaml", {
        "total_steps": 2, "output_dir": str(tmp_path / "run"), "data.prompts_per_step": 2,
        "rollout.n_samples": 4, "model.name_or_path": str(built.policy),
        "rollout.template_path": str(built.template), "engine.corpus": str(built.corpus),
        "data.train": str(built.train), "data.val": str(built.test), "data.val_limit": 4,
        "validation.every": 2, "validation.at_start": False,
    })
    trainer = build_trainer(config)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    final = trainer.train()
    assert trainer.step == 2
    assert "rollout/reward" in final and "val/em" in final
    changed = [k for k, v in trainer.model.named_parameters() if not v.detach().equal(before[k])]
    if algo == "ppo":  # GAE advantages are non-zero even when every reward is 0 (the critic's values differ)
        assert changed
    else:  # GRPO moves the policy exactly when some group's rewards differ
        rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
        assert bool(changed) == any(r["advantage/abs_max"] > 0 for r in rows)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000  # logging.plot is on by default


def test_build_cli_refuses_a_non_empty_directory_with_exit_2(built, capsys):
    from zerosearch.toyworld.build import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(built.root)])
    assert exit_info.value.code == 2 and "--overwrite" in capsys.readouterr().err
