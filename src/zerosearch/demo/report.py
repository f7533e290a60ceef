"""The demo's report: one self-contained ``report.html`` and a short ``summary.txt``, from ``results.json``.

It reads only ``<out>/results.json`` (:class:`~zerosearch.demo.results.DemoResults`) and the files it
names (each arm's ``records.jsonl``, training ``metrics.jsonl`` and ``curves.png``), so a finished run can
be re-rendered at any time without re-running anything::

    zerosearch demo-report --out runs/demo          # or, from Python:
    write_report("runs/demo")                       # -> runs/demo/report.html (+ summary.txt)

The page has no external references: CSS is inline, figures are base64 PNGs, and it needs no script.
Its order: the one-line takeaway, the arms table, the paper's claims judged on the miniature's numbers
(``demo/claims.py``), training curves and the noise schedule, simulator quality and the shadow engine,
training cost, example episodes, then the run's world, config and versions. A file the results name but
that is missing is listed at the top of the page (its section shows what could be read), never skipped
silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from zerosearch.demo import figures, sections
from zerosearch.demo.claims import SHADOW_LIMIT, Claim, judge_claims, seed_stats, takeaway
from zerosearch.demo.results import RESULTS_FILE, Arm, DemoResults
from zerosearch.demo.sections import Raw, esc, section
from zerosearch.evaluation.harness import read_records
from zerosearch.evaluation.methods import QuestionRecord
from zerosearch.evaluation.tables import build_table
from zerosearch.train.plot import read_metrics

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.txt"

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1180px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
.takeaway { font-size: 1.1em; background: #f4f7fb; border-left: 4px solid #3b6ea5; padding: .6em 1em; }
.warning { background: #fff4e5; border-left: 4px solid #e08a00; padding: .4em 1em; }
nav a { margin-right: 1em; } table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; } td { text-align: right; } td:first-child { text-align: left; }
table.claims td, table.facts td { text-align: left; } small { color: #666; }
.verdict { font-weight: 700; padding: 1px 6px; border-radius: 3px; white-space: nowrap; }
.verdict.agrees { background: #dff3e0; color: #1d6b22; } .verdict.disagrees { background: #fbe0e0; color: #9b1c1c; }
.verdict.not_measured { background: #eee; color: #555; }
figure { margin: .8em 0; } figure img { max-width: 100%; } figcaption { color: #555; font-size: .9em; }
.note { color: #555; } pre { background: #f7f7f7; padding: .5em; overflow-x: auto; white-space: pre-wrap; }
.episode { border: 1px solid #ddd; margin: .6em 0; padding: .4em .8em; }
.turn .kind { font-size: .8em; text-transform: uppercase; color: #3b6ea5; }
.turn pre { margin: .2em 0 .5em; } .docs { margin-left: 1.5em; font-size: .93em; } .docs ol { margin: .2em 0; }
details { margin: .4em 0; } summary { cursor: pointer; font-weight: 600; }
"""


class ReportInputError(ValueError):
    """``results.json`` is missing or does not hold a valid :class:`DemoResults`."""


@dataclass
class RunFiles:
    """What the report read from the files ``results.json`` names, and what it could not read."""

    records: list[QuestionRecord] = field(default_factory=list)
    runs: list[figures.RunCurves] = field(default_factory=list)
    curves: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # arm name -> (caption, data URI)
    missing: list[str] = field(default_factory=list)


def load_results(out_dir: str | Path) -> DemoResults:
    """``<out_dir>/results.json``; :class:`ReportInputError` naming the file and what to run otherwise."""
    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        raise ReportInputError(f"{path} not found: run `zerosearch demo --out {out_dir}` first (it writes "
                               f"{RESULTS_FILE}), then re-render with `zerosearch demo-report --out {out_dir}`")
    try:
        return DemoResults.model_validate_json(path.read_text("utf-8"))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in err.errors()[:3])
        raise ReportInputError(f"{path} is not a valid demo results file ({err.error_count()} problem(s): "
                               f"{problems}); re-run `zerosearch demo --out {out_dir}` with this zerosearch") from err


def load_run_files(results: DemoResults, out_dir: str | Path) -> RunFiles:
    """Each arm's records (method renamed to the arm's title), training metrics and curve images."""
    out, files = Path(out_dir), RunFiles()
    for arm in results.arms:
        files.records += _arm_records(arm, out / arm.records, files.missing)
        for index, rel in enumerate(arm.metrics_jsonl):
            try:
                seed = arm.seeds[index].seed if index < len(arm.seeds) else index
                files.runs.append(figures.RunCurves(arm.title, index, read_metrics(out / rel), seed))
            except (FileNotFoundError, ValueError) as err:
                files.missing.append(f"{arm.name}: training metrics ({err})")
        for index, rel in enumerate(arm.curves_png):
            caption = f"{arm.title}, seed {arm.seeds[index].seed if index < len(arm.seeds) else '?'} ({rel})"
            try:
                files.curves.setdefault(arm.name, []).append((caption, figures.file_data_uri(out / rel)))
            except (OSError, ValueError) as err:
                files.missing.append(f"{arm.name}: training curves ({err})")
    return files


def _arm_records(arm: Arm, path: Path, missing: list[str]) -> list[QuestionRecord]:
    """The arm's evaluation records, renamed to the arm's title (the table's method rows)."""
    if not path.is_file():
        missing.append(f"{arm.name}: evaluation records {path} (not found)")
        return []
    try:
        return [dataclasses.replace(r, method=arm.title) for r in read_records(path)]
    except ValueError as err:
        missing.append(f"{arm.name}: evaluation records ({err})")
        return []


def _header(results: DemoResults, claims: list[Claim], files: RunFiles) -> str:
    links = " ".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("table", "Table"), ("claims", "Claims"), ("curves", "Curves"), ("simulators", "Simulators"),
        ("cost", "Cost"), ("episodes", "Episodes"), ("run", "Run")))
    missing = ""
    if files.missing:
        items = "".join(f"<li>{esc(m)}</li>" for m in files.missing)
        missing = (f'<div class="warning"><b>Files named in {RESULTS_FILE} that could not be read:</b>'
                   f"<ul>{items}</ul></div>")
    title = ("ZeroSearch in miniature: the arms side by side" if results.world.name == "toy"
             else f"ZeroSearch, world {results.world.name}: the arms side by side")
    return (f"<header><h1>{esc(title)}</h1>"
            f'<p class="takeaway">{esc(takeaway(results, claims))}</p>'
            f'<p class="note">{esc(results.world.description)} — {results.world.test_questions} held-out questions, '
            f"every arm evaluated with the real engine (top-{results.world.top_k}).</p>"
            f"<nav>{links}</nav>{missing}</header>")


def _table_section(results: DemoResults, files: RunFiles) -> Raw:
    paper = (sections.paper_table(build_table(files.records, methods=[a.title for a in results.arms],
                                              usd_per_1k=results.usd_per_1k))
             if files.records else sections.note("no evaluation records could be read"))
    return section("table", "Held-out results (real engine)", sections.arms_table(results),
                   sections.note("Means over seeds; with 2+ seeds the range is shown below the mean. Decodings: "
                                 f"{', '.join(results.decodings)} (greedy: T=0; sampled: one episode per question at "
                                 "T=1), on the same questions."),
                   Raw(f"<details><summary>Per dataset, paper layout (headline seed, {results.decodings[0]}; the "
                       f"evaluation harness's table)</summary>{paper}</details>"))


def _curves_section(results: DemoResults, files: RunFiles) -> Raw:
    per_arm = "".join(
        f"<details><summary>{esc(arm.title)}: the trainer's own curves</summary>"
        + "".join(sections.figure(uri, caption) for caption, uri in files.curves[arm.name]) + "</details>"
        for arm in results.arms if files.curves.get(arm.name))
    return section("curves", "Training curves",
                   sections.figure(figures.training_curves(files.runs, results.metric),
                                   "RL arms: training reward and held-out scores during training"),
                   sections.figure(figures.noise_schedule(results.noise_schedule),
                                   "noise schedule of the curriculum (results.noise_schedule)"),
                   Raw(per_arm))


def _simulators_section(results: DemoResults, files: RunFiles) -> Raw:
    quality = results.simulator_quality
    source = (quality["note"] if "note" in quality else  # simulators tuned before the run are not measured here
              f"From `zerosearch simulator evaluate` on held-out questions (top-k {quality.get('top_k', '?')}); "
              "'reference' is the real engine. Leniency: hit on perturbed queries (lower is stricter, the real "
              "engine's own value beside it).")
    return section("simulators", "Simulator quality and the shadow engine", sections.note(source),
                   sections.simulator_table(quality, results.arms),
                   Raw("<h3>During RL: simulated hit where the real engine misses</h3>"),
                   sections.shadow_table(results.arms),
                   sections.figure(figures.shadow_curves(files.runs, SHADOW_LIMIT),
                                   f"shadow engine per step (dotted line: {SHADOW_LIMIT})"))


def render_html(results: DemoResults, claims: list[Claim], files: RunFiles) -> str:
    """The whole page as one string (no external references)."""
    body = [
        _header(results, claims, files),
        _table_section(results, files),
        section("claims", f"The paper's claims, judged on this run ({results.metric.upper()})",
                sections.claims_table(claims)),
        _curves_section(results, files),
        _simulators_section(results, files),
        section("cost", "Training cost", sections.cost_table(results), sections.note(sections.PAPER_COST)),
        section("episodes", "Example held-out episodes (real engine)", sections.episodes(results.arms)),
        section("run", "The run", sections.run_info(results)),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>ZeroSearch demo report</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def terminal_summary(results: DemoResults) -> str:
    """A short plain-text table (the metric per arm and decoding, training searches and their API cost) and
    the claim verdicts."""
    claims = judge_claims(results)
    metric, decodings = results.metric, results.decodings
    heads = "".join(f" {f'{d} {metric.upper()}':>12}" for d in decodings)
    lines = [f"{'arm':<34}{heads} {'searches/q':>10} {'answered':>8} {'train searches':>15} {'API $':>8}"]
    for arm in results.arms:
        cells = "".join(f" {seed_stats(arm, d, metric).mean:>12.3f}" for d in decodings)
        lines.append(f"{arm.title[:34]:<34}{cells} {seed_stats(arm, decodings[0], 'searches').mean:>10.2f} "
                     f"{seed_stats(arm, decodings[0], 'answered').mean:>8.2f} "
                     f"{arm.cost.train_searches:>15,} {arm.cost.api_usd:>8.2f}")
    lines += ["", f"Claims (paper vs this run, world {results.world.name}):"]
    for claim in claims:
        lines.append(f"  [{claim.verdict.value}] ({claim.key}) {claim.title}")
        lines.append(f"      {claim.miniature}")
    lines += ["", takeaway(results, claims)]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path) -> Path:
    """Write ``report.html`` and ``summary.txt`` into ``out_dir`` from its ``results.json``; returns the HTML path."""
    out = Path(out_dir)
    results = load_results(out)
    files = load_run_files(results, out)
    page = render_html(results, judge_claims(results), files)
    path = out / REPORT_FILE
    path.write_text(page, "utf-8")
    (out / SUMMARY_FILE).write_text(terminal_summary(results), "utf-8")
    return path
