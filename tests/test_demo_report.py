"""The demo report: claims judged on constructed results, the self-contained HTML, and `zerosearch demo-report`.

The inputs are a results directory built here (a DemoResults with seven arms, real QuestionRecord rows in
each arm's records.jsonl, real metrics.jsonl files and a curves.png drawn by the trainer's own plotter):
the renderer's input data, written the way the demo runner writes it, so no model is trained.
"""

from __future__ import annotations

import base64
import doctest
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import zerosearch.demo.claims
from zerosearch.cli.main import app
from zerosearch.demo.claims import CLEAR_MARGIN, Verdict, judge_claims
from zerosearch.demo.figures import PNG_SIGNATURE
from zerosearch.demo.report import CSS, REPORT_FILE, SUMMARY_FILE, terminal_summary, write_report
from zerosearch.demo.results import (
    Arm,
    DemoResults,
    ExampleEpisode,
    Scores,
    SeedResult,
    ShadowSummary,
    TrainingCost,
    WorldSummary,
)
from zerosearch.demo.sections import episode_html, stages_table
from zerosearch.evaluation.harness import append_records
from zerosearch.evaluation.methods import QuestionRecord
from zerosearch.train.plot import plot_run_curves

USD_PER_1K = 9.17
TRICKY_DOC = "<b>Ada Lovelace</b> & Co. was founded in Rome"
TITLES = {"direct": "Direct answer", "rag": "RAG (one search)", "before_rl": "Before RL",
          "rl_real": "RL, real engine (Search-R1)", "zerosearch": "ZeroSearch (fine-tuned sim + curriculum)",
          "fixed_noise": "Fine-tuned sim, fixed noise", "hinted": "Hinted simulator (paper prompt)"}
#: name -> (greedy EM per seed, sampled EM per seed): a run where every claim holds.
AGREEING = {"direct": ([0.0], [0.01]), "rag": ([0.2], [0.15]), "before_rl": ([0.40, 0.41], [0.25, 0.27]),
            "rl_real": ([0.62, 0.63], [0.49, 0.50]), "zerosearch": ([0.61, 0.63], [0.48, 0.50]),
            "fixed_noise": ([0.60], [0.47]), "hinted": ([0.50], [0.38])}
SIMULATORS = {"zerosearch": "finetuned", "fixed_noise": "finetuned", "hinted": "hinted"}
QUALITY = {"top_k": 3, "leniency_kinds": "all", "table": {
    "reference": {"useful_hit": 0.9, "noisy_leak": None, "leniency": 0.06, "reference_leniency": 0.06,
                  "agreement": 1.0, "mean_words": 12.0},
    "finetuned": {"useful_hit": 0.95, "noisy_leak": 0.1, "leniency": 0.08, "reference_leniency": 0.06,
                  "hit_when_reference_misses": 0.01, "agreement": 0.93, "mean_words": 11.5},
    "hinted": {"useful_hit": 0.65, "noisy_leak": 0.12, "leniency": 0.12, "reference_leniency": 0.06,
               "hit_when_reference_misses": 0.05, "agreement": 0.8, "mean_words": 14.0}}}


def _scores(em: float) -> Scores:
    return Scores(em=em, f1=min(1.0, em + 0.05), cover_em=min(1.0, em + 0.02), searches=1.5, answered=0.9, n=40)


def _arm(name: str, greedy: list[float], sampled: list[float], *, shadow: float | None = None) -> Arm:
    rl = name in ("rl_real", "zerosearch", "fixed_noise", "hinted")
    searches = {"rl_real": 12345, "zerosearch": 23456, "fixed_noise": 20000, "hinted": 21000}.get(name, 0)
    real = searches if name == "rl_real" else 0
    return Arm(
        name=name, title=TITLES[name], kind="rl" if rl else "baseline",
        train_engine={"rl_real": "bm25"}.get(name, "simulator" if rl else None),
        seeds=[SeedResult(seed=i, scores={"greedy": _scores(g), "sampled": _scores(s)})
               for i, (g, s) in enumerate(zip(greedy, sampled, strict=True))],
        records=f"{name}/records.jsonl",
        metrics_jsonl=[f"{name}/seed{i}/metrics.jsonl" for i in range(len(greedy))] if rl else [],
        curves_png=["zerosearch/seed0/curves.png"] if name == "zerosearch" else [],
        cost=TrainingCost(train_searches=searches, real_engine_searches=real, api_usd=searches * USD_PER_1K / 1000,
                          cpu_seconds=456.7 if rl else 3.2, wall_seconds=250.5 if rl else 2.0),
        shadow=None if shadow is None else ShadowSummary(train_hit_real_miss=shadow,
                                                         train_hit_real_miss_max=shadow * 3, agreement=0.96),
        simulator=SIMULATORS.get(name),
    )


def _results(ems: dict[str, tuple[list[float], list[float]]] | None = None,
             shadow: dict[str, float] | None = None, quality: dict | None = None) -> DemoResults:
    ems = {**AGREEING, **(ems or {})}
    shadow = {"zerosearch": 0.005, "fixed_noise": 0.006, "hinted": 0.03, **(shadow or {})}
    return DemoResults(
        seed=0, usd_per_1k=USD_PER_1K,
        world=WorldSummary(description="toy world: 2-3 hop questions", train_questions=400, test_questions=40,
                           corpus_passages=1200, top_k=3, question_kinds={"2-hop": 25, "3-hop": 15}),
        noise_schedule={"config": {"kind": "exponential"}, "steps": [0, 1, 2, 3], "p": [0.0, 0.05, 0.15, 0.3],
                        "fixed_noise": 0.15},
        simulator_quality=QUALITY if quality is None else quality,
        arms=[_arm(name, *ems[name], shadow=shadow.get(name)) for name in TITLES if name in ems],
        wall_seconds=512.3, peak_rss_mib=2345.0, config={"steps": 30, "note": "<cfg>"}, versions={"torch": "2.13.0"},
    )


def _verdicts(results: DemoResults) -> dict[str, Verdict]:
    return {c.key: c.verdict for c in judge_claims(results)}


def _episode(name: str) -> ExampleEpisode:
    return ExampleEpisode(
        question=f"Where was the founder of Ada & Co. born? ({name})", golds=["Rome"], prediction="Rome", em=1.0,
        turns=[{"kind": "search", "content": "Ada & Co. founder", "text": "<search>Ada & Co. founder</search>",
                "searched": True},
               {"kind": "answer", "content": "Rome", "text": "<answer>Rome</answer>"}],
        queries=["Ada & Co. founder"], documents=[[TRICKY_DOC, "Rome is a city in Italy"]])


def _write_run(out: Path, results: DemoResults) -> None:
    """The files results.json names, written as the runner writes them."""
    for arm in results.arms:
        arm.episodes = [_episode(arm.name) for _ in range(3)]
        (out / arm.name).mkdir(parents=True)
        records = [QuestionRecord(method="agent", dataset=dataset, id=f"{dataset}-{i}", question="q?", golds=["Rome"],
                                  prediction="Rome" if i % 2 else None,
                                  metrics={"em": float(i % 2), "cover_em": float(i % 2), "f1": float(i % 2)},
                                  queries=["Ada & Co. founder"], documents=[[TRICKY_DOC]], n_searches=1)
                   for dataset in ("2-hop", "3-hop") for i in range(2)]
        append_records(out / arm.records, records)
        for seed, rel in enumerate(arm.metrics_jsonl):
            rows = [{"step": s, "rollout/reward": 0.1 * s + 0.01 * seed, "noise_probability": 0.1 * s,
                     **({"val/em": 0.2 + 0.1 * s} if s in (0, 3) else {}),
                     **({"shadow/train_hit_real_miss": 0.004} if arm.shadow else {})} for s in range(4)]
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text("".join(json.dumps(r) + "\n" for r in rows))
        for rel in arm.curves_png:
            plot_run_curves(out / arm.metrics_jsonl[0], out / rel)
    results.write(out)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo")
    _write_run(out, _results())
    path = write_report(out)
    return out, path.read_text("utf-8")


def test_claim_helpers_doctests() -> None:
    result = doctest.testmod(zerosearch.demo.claims)
    assert result.attempted > 0 and result.failed == 0


def test_every_claim_agrees_on_an_agreeing_run() -> None:
    assert _verdicts(_results()) == dict.fromkeys(["a", "b", "c", "d", "d2", "e", "f"], Verdict.AGREES)


@pytest.mark.parametrize(("key", "change"), [
    ("a", {"ems": {"rl_real": ([0.66, 0.67], [0.49, 0.50])}}),  # ZeroSearch greedy 0.045 below the real engine
    ("a", {"ems": {"rl_real": ([0.62, 0.63], [0.53, 0.54])}}),  # sampled 0.045 below
    ("b", {"ems": {"before_rl": ([0.60, 0.61], [0.25, 0.27])}}),  # greedy gap 0.02: not clear
    ("b", {"ems": {"before_rl": ([0.54, 0.56], [0.40, 0.48])}}),  # sampled gap 0.055 > margin, < spread 0.08
    ("c", {"ems": {"fixed_noise": ([0.66], [0.45])}}),  # fixed noise beats the curriculum beyond the spread
    ("d", {"ems": {"hinted": ([0.50], [0.52])}}),  # hinted better when sampled
    ("d2", {"quality": {**QUALITY, "table": {**QUALITY["table"], "hinted": {
        **QUALITY["table"]["hinted"], "leniency": 0.05}}}}),  # hinted stricter than the fine-tuned one
    ("e", {"ems": {"direct": ([0.0], [0.08])}}),
    ("f", {"shadow": {"fixed_noise": 0.02}}),  # a transferred run above 0.01
])
def test_each_claim_can_fail(key: str, change: dict) -> None:
    """One change breaks one claim; (f) depends on which runs transferred, so it may become 'not measured'."""
    verdicts = _verdicts(_results(**change))
    assert verdicts.pop(key) is Verdict.DISAGREES
    assert Verdict.DISAGREES not in verdicts.values(), verdicts


def test_seed_spread_decides_clearly_and_as_good() -> None:
    """A gap above the fixed margin is not 'clear' when the seeds spread wider; a shortfall within the spread is
    still 'as good'."""
    # sampled: real-engine RL 0.45 vs before RL 0.38, a gap of 0.07 above the margin in both runs
    tight = _results(ems={"before_rl": ([0.40], [0.38]), "rl_real": ([0.62, 0.63], [0.445, 0.455])})
    wide = _results(ems={"before_rl": ([0.40], [0.38]), "rl_real": ([0.62, 0.63], [0.40, 0.50])})
    assert CLEAR_MARGIN < 0.45 - 0.38
    assert _verdicts(tight)["b"] is Verdict.AGREES  # seed spread 0.01
    assert _verdicts(wide)["b"] is Verdict.DISAGREES  # seed spread 0.10 swallows the gap
    within = _results(ems={"fixed_noise": ([0.63, 0.64], [0.49, 0.50])})  # curriculum 0.01 below, spread 0.02
    assert _verdicts(within)["c"] is Verdict.AGREES
    # claim (a): ZeroSearch 0.045 below the real engine (beyond the 0.03 tolerance) agrees only when the
    # seeds spread wider than the shortfall
    noisy = _results(ems={"rl_real": ([0.66, 0.67], [0.49, 0.50]), "zerosearch": ([0.56, 0.68], [0.48, 0.50])})
    assert _verdicts(noisy)["a"] is Verdict.AGREES  # spread 0.12 > shortfall 0.05
    steady = _results(ems={"rl_real": ([0.66, 0.67], [0.49, 0.50]), "zerosearch": ([0.61, 0.63], [0.48, 0.50])})
    assert _verdicts(steady)["a"] is Verdict.DISAGREES  # spread 0.02: the shortfall is real


def test_missing_arms_are_not_measured_never_a_crash() -> None:
    without = {k: v for k, v in AGREEING.items() if k != "fixed_noise"}
    results = _results()
    results.arms = [a for a in results.arms if a.name in without]
    verdicts = _verdicts(results)
    assert verdicts["c"] is Verdict.NOT_MEASURED
    assert all(v is Verdict.AGREES for k, v in verdicts.items() if k != "c")
    results.arms = [a for a in results.arms if a.name == "direct"]
    verdicts = _verdicts(results)
    assert verdicts.pop("e") is Verdict.AGREES
    assert set(verdicts.values()) == {Verdict.NOT_MEASURED}
    assert "not measured" in terminal_summary(results)


def test_shadow_claim_is_not_measured_without_a_transferred_run() -> None:
    results = _results(ems={"zerosearch": ([0.50], [0.40]), "fixed_noise": ([0.50], [0.40])})
    claim = next(c for c in judge_claims(results) if c.key == "f")
    assert claim.verdict is Verdict.NOT_MEASURED and "did not transfer" in claim.miniature


def test_report_is_self_contained(rendered: tuple[Path, str]) -> None:
    out, page = rendered
    assert (out / REPORT_FILE).is_file() and (out / SUMMARY_FILE).is_file()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page)
    images = [r for r in refs if r.startswith("data:")]
    assert len(images) >= 4  # overlay curves, noise schedule, shadow, the embedded curves.png
    assert all(r.startswith(("data:image/png;base64,", "#")) for r in refs), refs
    assert not re.search(r"https?://", page) and "<script" not in page.lower() and "<link" not in page.lower()
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert style and CSS.strip() in style.group(1), "the inline stylesheet is missing from the page"
    for uri in images:
        assert base64.b64decode(uri.split(",", 1)[1]).startswith(PNG_SIGNATURE)


def test_report_holds_every_section_and_escapes_run_text(rendered: tuple[Path, str]) -> None:
    _, page = rendered
    for title in TITLES.values():
        assert page.count(title) >= 3, title  # scores, cost and episode blocks at least
    assert "&lt;b&gt;Ada Lovelace&lt;/b&gt; &amp; Co. was founded in Rome" in page
    assert TRICKY_DOC not in page and "<b>Ada" not in page
    assert "Ada &amp; Co. founder" in page and "&lt;cfg&gt;" in page
    assert page.count('class="episode"') == 3 * len(TITLES)
    for figure in ("12,345", "$113.20", "23,456", "456.7", "250.5", "512.3 s", "2,345 MiB"):
        assert figure in page, figure
    assert page.count('class="verdict agrees"') == 7
    assert "0.0050" in page  # zerosearch's shadow figure
    for header in ("2-hop", "3-hop", "Avg", "cover-EM", "leniency", "reference leniency"):
        assert header in page
    assert "Files named in" not in page  # every named file was read


def test_missing_named_files_are_listed_not_hidden(tmp_path: Path) -> None:
    _write_run(tmp_path, _results())
    (tmp_path / "hinted" / "records.jsonl").unlink()
    (tmp_path / "rag" / "records.jsonl").write_text('{"not": "a record"}\n{}\n')
    (tmp_path / "zerosearch" / "seed0" / "curves.png").write_text("not a png")
    page = write_report(tmp_path).read_text("utf-8")
    assert "Files named in results.json that could not be read" in page and "hinted/records.jsonl" in page
    assert "rag: evaluation records" in page and "curves.png is not a PNG file" in page


def test_episode_documents_follow_the_search_that_fetched_them() -> None:
    agent = episode_html(_episode("agent"))
    assert agent.index("&lt;search&gt;") < agent.index("Rome is a city") < agent.index("&lt;answer&gt;")
    rag = ExampleEpisode(question="q?", golds=["Rome"], prediction=None, em=0.0, queries=["q?"],
                         documents=[["doc one"]], turns=[{"kind": "invalid", "content": "", "text": "no idea"}])
    shown = episode_html(rag)  # retrieve-then-answer: the documents come before the only turn
    assert shown.index("doc one") < shown.index("no idea") and "(no answer)" in shown


def test_stages_table_shows_each_task() -> None:
    html = stages_table({"arm:rl_real:0": {"wall_s": 81.25, "cpu_s": 160.0, "peak_rss_mib": 1234.0},
                         "warmstart": {"wall_s": 40.0, "cpu_s": None}})
    assert "arm:rl_real:0" in html and "81.2" in html and "1,234" in html and "—" in html
    assert stages_table({}) == ""


def test_terminal_summary_lists_arms_and_verdicts() -> None:
    text = terminal_summary(_results(ems={"direct": ([0.2], [0.2])}))
    assert all(title[:30] in text for title in TITLES.values())
    assert "[disagrees] (e)" in text and "[agrees] (a)" in text and "12,345" in text
    assert "agrees with 6 of 7 measured claims" in text


def test_cli_rerenders_and_fails_clearly_without_results(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    missing = runner.invoke(app, ["demo-report", "--out", str(tmp_path)])
    assert missing.exit_code == 2
    assert str(tmp_path / "results.json") in missing.output and "zerosearch demo --out" in missing.output
    (tmp_path / "results.json").write_text('{"seed": 0}')
    invalid = runner.invoke(app, ["demo-report", "--out", str(tmp_path)])
    assert invalid.exit_code == 2 and "not a valid demo results file" in invalid.output
    run = tmp_path / "run"
    run.mkdir()
    _write_run(run, _results())
    ok = runner.invoke(app, ["demo-report", "--out", str(run)])
    assert ok.exit_code == 0, ok.output
    assert (run / REPORT_FILE).is_file() and "[agrees] (a)" in ok.output
