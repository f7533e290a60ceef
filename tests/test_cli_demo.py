"""The demo's config, worlds, task graph, resume/skip logic and result assembly, without training anything.

(The full `zerosearch demo` takes minutes; tests/test_demo_reduced.py runs the same code end to end with
fewer steps, tests/test_demo_user_world.py runs a user's world file end to end, and `make demo` runs the
default.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zerosearch.cli.main import app
from zerosearch.demo import arms as A
from zerosearch.demo.config import DemoConfig, load_demo_config
from zerosearch.demo.runner import (
    DemoConfigMismatch,
    Task,
    check_config,
    example_episodes,
    plan,
    record_invocation,
    run_tasks,
)
from zerosearch.evaluation.methods import QuestionRecord
from zerosearch.train.config import TrainConfig

ARMS = ["direct", "rag", "before_rl", "rl_real", "zerosearch", "fixed_noise", "hinted"]


def toy(tmp_path: Path, **overrides: object) -> DemoConfig:
    return load_demo_config(None, world="toy", out=tmp_path, **overrides)


def test_default_runs_every_arm_on_the_harder_world(tmp_path: Path) -> None:
    config = toy(tmp_path)
    assert [a.name for a in config.selected_arms()] == ARMS
    assert config.world.rollout.top_k == 3 and config.world.rollout.max_turns == 3  # 3 hops, top-3 results
    assert "employer_country" in config.world.data.build.world.kinds
    arms = {a.name: a for a in config.world.arms}
    assert config.seeds_of(arms["rl_real"]) == [0, 1] and config.seeds_of(arms["zerosearch"]) == [0, 1]
    assert config.seeds_of(arms["hinted"]) == [0]


def test_the_hotpotqa_world_is_the_same_experiment_on_real_text(tmp_path: Path) -> None:
    """Real questions with their own paragraphs as 30-word snippets, SmolLM2 warm-started on demonstrations,
    F1 as the headline, greedy only; paths resolve against the repository root."""
    config = load_demo_config(None, world="hotpotqa", out=tmp_path)
    world = config.world
    assert world.data.source == "aligned" and world.data.max_words == 30 and world.data.path.is_absolute()
    assert world.policy.source == "demonstrations" and world.policy.sft["model"] == "smollm2-135m-instruct"
    assert world.evaluation.metric == "f1" and world.evaluation.decodings == ["greedy"]
    assert world.claims.near_zero is None and world.rl.kl_coef > 0
    assert load_demo_config(None, world="hotpotqa").out == Path("runs/demo-hotpotqa")


@pytest.mark.parametrize("arm", ["rl_real", "zerosearch", "fixed_noise", "hinted"])
def test_each_rl_arm_is_a_valid_train_config_validated_with_bm25(tmp_path: Path, arm: str) -> None:
    """The arms differ only in the training engine and the noise; validation is always the real engine, and
    simulated arms query BM25 as the shadow engine."""
    config = toy(tmp_path, steps=20)
    train = TrainConfig.model_validate(A.train_config(config, config.world.arm(arm), seed=1))
    assert train.total_steps == 20 and train.seed == 1 and train.validation.engine.kind == "bm25"
    assert train.rollout.top_k_documents == 3 and train.rollout.max_turns == 3
    assert train.algorithm.micro_batch_size == 64 and train.optimizer.weight_decay == 0.0  # rl.train merged in
    if arm == "rl_real":
        assert train.engine.kind == "bm25" and train.shadow_engine is None
        assert train.curriculum.probability(20) == 0.0
        return
    assert train.engine.kind == "simulated" and train.shadow_engine.kind == "bm25"
    assert train.engine.include_question_and_answer is (arm == "hinted")
    assert Path(train.engine.generator.model).name == ("hinted" if arm == "hinted" else "imitate")
    if arm == "fixed_noise":
        assert train.curriculum.probability(0) == train.curriculum.probability(20) == 0.3
    else:
        assert train.curriculum.probability(0) == 0.0 and abs(train.curriculum.probability(20) - 0.3) < 1e-9


def test_yaml_and_flags_override_the_world(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("world:\n  rl:\n    steps: 7\n    learning_rate: 0.001\n")
    config = load_demo_config(path, steps=9, arms=["before_rl", "rl_real"], seed=None)
    assert config.world.rl.steps == 9 and config.world.rl.learning_rate == 0.001
    assert config.arms == ["before_rl", "rl_real"] and config.world.rl.prompts_per_step == 8  # the rest kept
    switched = tmp_path / "policy.yaml"
    switched.write_text("world:\n  policy: {source: model, model: some/dir}\n")
    assert load_demo_config(switched, world="hotpotqa").world.policy.model == "some/dir"  # a new variant replaces


def test_a_world_that_trains_against_a_missing_simulator_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("world:\n  arms: [{name: zerosearch, train: {engine: nowhere}}]\n")
    with pytest.raises(ValueError, match="nowhere"):
        load_demo_config(path)
    with pytest.raises(FileNotFoundError, match="neither a built-in world"):
        load_demo_config(None, world=str(tmp_path / "missing.yaml"))


def test_cli_names_an_unknown_arm_and_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--arms", "before_rl,magic"])
    assert result.exit_code == 2 and "magic" in result.output


def test_plan_orders_tasks_after_what_they_need(tmp_path: Path) -> None:
    tasks = {t.name: t for t in plan(toy(tmp_path))}
    assert tasks["arm:zerosearch:1"].deps == ("warmstart", "simulator:imitate")
    assert tasks["arm:hinted:0"].deps == ("warmstart", "simulator:hinted")
    assert tasks["arm:rl_real:0"].deps == ("warmstart",) and "arm:rl_real:1" in tasks
    assert tasks["quality"].deps == ("simulator:imitate", "simulator:hinted")
    only_real = {t.name for t in plan(toy(tmp_path, arms=["before_rl", "rl_real"], rl_seeds=1))}
    assert only_real == {"warmstart", "arm:rl_real:0", "arm:before_rl:0"}  # no simulator is built for nothing


def test_finished_tasks_are_skipped_and_logged(tmp_path: Path) -> None:
    """A task whose done-file exists is not run again; with every file present no worker starts."""
    config = toy(tmp_path, arms=["direct"])
    tasks = plan(config)
    for task in tasks:
        task.done_file.parent.mkdir(parents=True, exist_ok=True)
        task.done_file.write_text("{}")
    lines: list[str] = []
    assert run_tasks(tasks, config, lines.append) == {}
    assert [line.split(":")[0] for line in lines] == ["skip warmstart", "skip arm"]
    assert "arm:direct:0" in lines[1] and "seed.json" in lines[1]


def test_tasks_waiting_on_missing_work_are_an_error(tmp_path: Path) -> None:
    config = toy(tmp_path, arms=["direct"])
    orphan = Task("arm:direct:0", ("warmstart-that-is-not-planned",), tmp_path / "never")
    with pytest.raises(RuntimeError, match="wait on tasks that are not planned"):
        run_tasks([orphan], config, lambda _: None)


def test_resume_refuses_other_settings_but_accepts_other_arms(tmp_path: Path) -> None:
    check_config(toy(tmp_path, steps=5))
    check_config(toy(tmp_path, steps=5, arms=["rl_real"], workers=1))  # selection may change
    with pytest.raises(DemoConfigMismatch, match="steps"):
        check_config(toy(tmp_path, steps=6))


def test_training_searches_and_shadow_summary_come_from_the_metrics() -> None:
    rows = [{"step": 0, "val/em": 0.1}, {"step": 1, "rollout/searches": 0.5, "shadow/train_hit_real_miss": 0.0,
                                         "shadow/agreement": 1.0},
            {"step": 2, "rollout/searches": 1.25, "shadow/train_hit_real_miss": 0.02, "shadow/agreement": 0.9}]
    assert A.train_searches(rows, episodes_per_step=16) == 28  # 0.5 * 16 + 1.25 * 16
    shadow = A.shadow_summary(rows)
    assert shadow.train_hit_real_miss == pytest.approx(0.01) and shadow.train_hit_real_miss_max == 0.02
    assert shadow.agreement == pytest.approx(0.95)
    assert A.shadow_summary(rows[:1]) is None


def _record(qid: str, em: float) -> QuestionRecord:
    return QuestionRecord("agent", "toyworld", qid, f"q {qid}?", ["x"], "x" if em else "y", {"em": em, "f1": em})


def test_example_episodes_mix_kinds_and_outcomes() -> None:
    records = [_record("p1-born_in", 1.0), _record("p1-works_for", 1.0), _record("p2-born_in", 0.0),
               _record("p2-birth_country", 0.0), _record("p3-employer_country", 1.0)]
    picked = example_episodes(records)
    assert [e.question for e in picked] == ["q p1-born_in?", "q p2-birth_country?", "q p1-works_for?"]
    assert [e.em for e in picked] == [1.0, 0.0, 1.0]
    assert len(example_episodes(records[:2])) == 2


def test_seed_file_marks_an_arm_done(tmp_path: Path) -> None:
    config = toy(tmp_path, arms=["rl_real"], rl_seeds=2)
    names = [t.done_file for t in plan(config) if t.name.startswith("arm:")]
    assert names == [A.seed_dir(config, "rl_real", s) / A.SEED_FILE for s in (0, 1)]
    assert json.loads(json.dumps(config.result_shaping()))["world"]["rl"]["steps"] == 20


def test_a_resumed_demo_sums_the_wall_time_of_its_invocations(tmp_path: Path) -> None:
    path = tmp_path / "timings.json"
    record_invocation(path, {"warmstart": {"wall_s": 100.0, "cpu_s": 90.0, "peak_rss_mib": 900.0}}, 120.0)
    record = record_invocation(path, {}, 5.0)  # a rerun that found everything done
    assert [i["wall_s"] for i in record["invocations"]] == [120.0, 5.0]
    assert record["invocations"][0]["ran"] == ["warmstart"] and record["invocations"][1]["ran"] == []
    assert record["stages"]["warmstart"]["cpu_s"] == 90.0
