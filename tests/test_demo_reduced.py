"""The demo end to end, reduced: the same runner, worker processes, trainer and harness as `zerosearch demo`,
on a smaller, easier world with fewer steps (two arms: the policy before RL and RL with the real engine).

Real components throughout: a seeded toy world, real BM25, a tiny Llama warm-started here, GRPO through
``build_trainer``, evaluation through the harness on held-out questions. It asserts what the demo exists
to show, that RL raised held-out EM by a clear margin, then that ``results.json`` is valid and that a
second run reuses every finished task. Slow-ish (about two minutes of CPU on two workers).
"""

from __future__ import annotations

import json

import pytest
from test_bench_demo import load_bench_demo

from zerosearch.demo.config import DemoConfig, merge
from zerosearch.demo.results import DemoResults
from zerosearch.demo.runner import run_demo
from zerosearch.demo.world import load_world_data

REDUCED = {
    "workers": 2, "arms": ["before_rl", "rl_real"],
    "world": {
        "data": {"build": {
            "world": {"first_names": 12, "last_names": 12, "warmstart_people": 40, "train_people": 40,
                      "test_people": 30, "kinds": ["born_in", "works_for"], "layout": "fact", "countries": 6,
                      "cities_per_country": 4, "companies": 12},
            # searches about a third of the time before RL: RL has to discover that searching pays
            "demos": {"no_search": 0.7, "skip_hop": 0.0, "top_k": 1, "copy_practice": 300, "read_practice": 1500},
            "skills": {"steps": 700, "batch_size": 16, "learning_rate": 1e-3, "warmup_steps": 30, "check_every": 50,
                       "reading_target": 0.85},
            "habits": {"steps": 40, "batch_size": 16, "learning_rate": 3e-4, "warmup_steps": 5},
        }},
        "simulators": {"imitate": {"config": {"top_k": 1, "max_new_tokens": 28}},
                       "hinted": {"config": {"top_k": 1, "max_new_tokens": 28}}},
        "rollout": {"max_turns": 1, "top_k": 1},
        "rl": {"steps": 15, "seeds": 1, "prompts_per_step": 8, "n_samples": 8, "val_questions": 30,
               "validate_every": 5, "learning_rate": 5e-4},
        "evaluation": {"test_questions": 60},
    },
}
MARGIN = 0.15
# ~2 min on two idle cores; the suite's 300 s default is too tight when other jobs share the machine
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoConfig, DemoResults, list[str]]:
    config = DemoConfig.model_validate(merge({"world": load_world_data("toy")},
                                             {**REDUCED, "out": str(tmp_path_factory.mktemp("demo"))}))
    lines: list[str] = []
    return config, run_demo(config, log=lines.append), lines


def test_rl_with_the_real_engine_raises_held_out_em(demo) -> None:
    _, results, _ = demo
    before, after = results.arm("before_rl"), results.arm("rl_real")
    assert before.sampled.n == after.sampled.n == 60
    assert after.sampled.em >= before.sampled.em + MARGIN, (before.sampled, after.sampled)
    assert after.greedy.em >= before.greedy.em + MARGIN, (before.greedy, after.greedy)
    assert after.cost.train_searches > 0 and after.cost.real_engine_searches == after.cost.train_searches
    assert after.cost.api_usd > 0 and before.cost.train_searches == 0


def test_results_json_is_complete_and_names_existing_files(demo) -> None:
    config, results, _ = demo
    again = DemoResults.read(config.out)
    assert again.model_dump() == results.model_dump()
    for arm in again.arms:
        assert (config.out / arm.records).is_file() and len(arm.episodes) == 3
        assert all((config.out / p).is_file() for p in arm.metrics_jsonl + arm.curves_png)
    rl = again.arm("rl_real")
    assert rl.kind == "rl" and rl.train_engine == "real" and len(rl.metrics_jsonl) == 1 and rl.seeds[0].run_dir
    assert again.noise_schedule["p"][0] == 0.0 and len(again.noise_schedule["p"]) == config.world.rl.steps + 1
    assert set(again.stages) == {"warmstart", "arm:before_rl:0", "arm:rl_real:0"}
    assert again.peak_rss_mib and again.peak_rss_mib < 4096


def test_bench_reports_the_finished_fresh_run(demo, tmp_path) -> None:
    """``bench_demo.py --finished`` turns the timed run itself into the benchmark's JSON, without rerunning."""
    config, results, _ = demo
    out = tmp_path / "demo.json"
    load_bench_demo().main(["--finished", str(config.out), "--result", str(out)])
    written = json.loads(out.read_text())
    assert written["wall_seconds"] == results.wall_seconds
    assert set(written["arms"]) == {"before_rl", "rl_real", "bm25"}
    assert written["claims"]["b"] in {"agrees", "disagrees", "not measured"}


def test_second_run_reuses_every_finished_task(demo) -> None:
    config, results, _ = demo
    lines: list[str] = []
    rerun = run_demo(config, log=lines.append)
    assert not [line for line in lines if line.startswith("start ")]
    assert sum(line.startswith("skip ") for line in lines) == 3
    assert [a.seeds for a in rerun.arms] == [a.seeds for a in results.arms]
    with pytest.raises(ValueError, match="not one fresh run"):  # a resumed demo is not a fresh run
        load_bench_demo().finished_run(config.out)
