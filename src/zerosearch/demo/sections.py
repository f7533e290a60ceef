"""The HTML sections of the demo report, each a pure function of already-loaded data.

Every piece of run text (questions, queries, documents, config values, arm titles) passes through
:func:`esc`; only markup built here is wrapped in :class:`Raw`, so a document holding ``<b>`` or ``&`` is
shown as text, never interpreted. ``report.py`` loads the run and joins the sections into one page.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from zerosearch.demo.claims import Claim, seed_stats
from zerosearch.demo.results import Arm, DemoResults, ExampleEpisode
from zerosearch.evaluation.tables import AVG, METRIC_TITLES, ResultTable
from zerosearch.simulator.report import COLUMNS, format_cell

#: the paper's training cost (ZEROSEARCH.md): ~64,000 searches through SerpAPI vs a 14B simulator.
PAPER_COST = ("paper: about 64,000 training searches through SerpAPI cost about $586.7; a 14B simulator on "
              "4 A100 GPUs about $70.8 (-88%)")
SCORES = (("em", "EM"), ("f1", "F1"), ("cover_em", "cover-EM"))


class Raw(str):
    """Markup built by this module (already escaped): inserted as is."""


def esc(value: Any) -> str:
    """``value`` as HTML text: markup built here passes, everything else is escaped."""
    return value if isinstance(value, Raw) else html.escape(str(value), quote=True)


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]], *, cls: str = "") -> Raw:
    """An HTML table; the first column is a row label, the others are right-aligned figures."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return Raw(f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def section(anchor: str, title: str, *parts: Any) -> Raw:
    """A titled section; ``parts`` are Raw markup or text (escaped)."""
    body = "\n".join(esc(p) for p in parts if p)
    return Raw(f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}\n</section>')


def note(text: Any) -> Raw:
    """A paragraph of explanatory text (escaped unless Raw)."""
    return Raw(f'<p class="note">{esc(text)}</p>')


def figure(uri: str | None, alt: str) -> Raw:
    """An embedded image (data URI) with its caption; a note when there is nothing to draw."""
    if uri is None:
        return note(f"{alt}: nothing to draw (no data logged)")
    return Raw(f'<figure><img src="{esc(uri)}" alt="{esc(alt)}"><figcaption>{esc(alt)}</figcaption></figure>')


def _stat(arm: Arm, decoding: str, field: str, *, spread: bool = True) -> Raw:
    stats = seed_stats(arm, decoding, field)
    text = f"{stats.mean:.3f}" if field != "searches" else f"{stats.mean:.2f}"
    if spread and stats.n > 1:
        text += f'<br><small>{stats.low:.3f}–{stats.high:.3f}</small>'
    return Raw(text)


def arms_table(results: DemoResults) -> Raw:
    """Scores per arm and decoding (means over seeds; the range below when 2+ seeds)."""
    decodings, first = results.decodings, results.decodings[0]
    header = ["arm", "trained against", "seeds"]
    header += [f"{d} {label}" for d in decodings for _, label in SCORES]
    header += [f"searches / question ({first})", f"answered ({first})", "questions"]
    rows = []
    for arm in results.arms:
        row: list[Any] = [arm.title, arm.train_engine or "— (no RL)",
                          ", ".join(str(s.seed) for s in arm.seeds)]
        row += [_stat(arm, d, field) for d in decodings for field, _ in SCORES]
        row += [_stat(arm, first, "searches", spread=False), _stat(arm, first, "answered", spread=False),
                arm.scores(first).n]
        rows.append(row)
    return table(header, rows, cls="scores")


def paper_table(result: ResultTable) -> Raw:
    """The evaluation harness's table (arms as method rows, datasets as columns, Avg), in %."""
    parts = []
    for metric in result.metrics:
        header = ["method", *result.datasets, AVG]
        rows = [[m, *(_pct(result.score(m, d, metric)) for d in result.datasets), _pct(result.average(m, metric))]
                for m in result.methods]
        parts.append(Raw(f"<h3>{esc(METRIC_TITLES.get(metric, metric))} (%)</h3>") + table(header, rows))
    price = next(iter(result.usage.values())).usd_per_1k if result.usage else 0.0
    header = ["method", "questions", "answered (%)", "searches", "searches / question",
              f"API cost of evaluating (USD at {price:.2f}/1k)"]
    rows = [[m, u.questions, _pct(result.answered[m]), u.searches, f"{u.searches_per_question:.2f}",
             f"{u.cost_usd:.4f}"] for m, u in result.usage.items()]
    parts.append(Raw("<h3>Searches at evaluation</h3>") + table(header, rows))
    return Raw("\n".join(parts))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def claims_table(claims: Sequence[Claim]) -> Raw:
    """Verdict, claim, the paper's figure and the miniature's figures, one row per claim."""
    rows = [[Raw(f'<span class="verdict {esc(c.verdict.name.lower())}">{esc(c.verdict.value)}</span>'),
             Raw(f"<b>({esc(c.key)}) {esc(c.title)}</b><br>{esc(c.text)}"), c.paper, c.miniature] for c in claims]
    return table(["verdict", "claim", "paper", "miniature"], rows, cls="claims")


def simulator_table(quality: Mapping[str, Any], arms: Sequence[Arm]) -> Raw:
    """``zerosearch simulator evaluate``'s table (same columns), with the arms that trained on each row."""
    used_by: dict[str, list[str]] = {}
    for arm in arms:
        if arm.simulator:
            used_by.setdefault(arm.simulator, []).append(arm.title)
    header = ["engine", "used by arm", *(label for _, label in COLUMNS)]
    rows = [[name, ", ".join(used_by.get(name, [])) or ("(real engine)" if name == "reference" else "—"),
             *(format_cell(row.get(key), key) for key, _ in COLUMNS)]
            for name, row in quality.get("table", {}).items()]
    if not rows:
        return note("no simulator quality table in this run")
    unknown = sorted(set(used_by) - set(quality.get("table", {})))
    extra = note(f"arms name simulators missing from the table: {unknown}") if unknown else ""
    return Raw(table(header, rows) + extra)


def cost_table(results: DemoResults) -> Raw:
    """Per arm: training searches and what they would cost through a paid API, the real-engine share, time.

    A simulated arm's searches cost CPU time instead (inside its CPU seconds); only real-engine searches
    would be billed.
    """
    price = results.usd_per_1k
    header = ["arm", "trained against", "searches in training", f"as paid-API searches (${price:.2f}/1k)",
              "of which real-engine", "real-engine searches as paid-API", "CPU seconds", "wall seconds"]
    rows = [[a.title, a.train_engine or "—", f"{a.cost.train_searches:,}", f"${a.cost.api_usd:.2f}",
             f"{a.cost.real_engine_searches:,}", f"${a.cost.real_engine_searches * price / 1000:.2f}",
             f"{a.cost.cpu_seconds:.1f}", f"{a.cost.wall_seconds:.1f}"]
            for a in results.arms]
    return table(header, rows, cls="cost")


def shadow_table(arms: Sequence[Arm]) -> Raw:
    """The shadow engine's per-run figures of the arms that logged them."""
    rows = [[a.title, a.train_engine or "—", f"{a.shadow.train_hit_real_miss:.4f}",
             f"{a.shadow.train_hit_real_miss_max:.4f}", f"{a.shadow.agreement:.3f}"]
            for a in arms if a.shadow is not None]
    if not rows:
        return note("no arm logged shadow-engine figures")
    return table(["arm", "trained against", "simulated hit, real miss (mean over steps)", "largest step",
                  "agreement (mean)"], rows)


def _documents(query: str, documents: Sequence[str]) -> str:
    items = "".join(f"<li>{esc(doc)}</li>" for doc in documents) or "<li><i>no documents</i></li>"
    return f'<div class="docs"><b>search:</b> <code>{esc(query)}</code><ol>{items}</ol></div>'


def episode_html(ep: ExampleEpisode) -> Raw:
    """One episode: question and gold, each policy turn, and after each executed search its documents.

    Searches no turn asked for (RAG retrieves with the question before its only turn) come first.
    """
    parts = [f'<p class="question"><b>Q:</b> {esc(ep.question)} &nbsp; <b>gold:</b> {esc(" | ".join(ep.golds))}'
             f' &nbsp; <b>prediction:</b> {esc(ep.prediction if ep.prediction is not None else "(no answer)")}'
             f' &nbsp; <span class="em">EM {ep.em:.0f}</span>'
             + (f' &nbsp; <span class="em">F1 {ep.f1:.2f}</span>' if ep.f1 is not None else "") + "</p>"]
    searches = [_documents(q, ep.documents[i] if i < len(ep.documents) else []) for i, q in enumerate(ep.queries)]
    asked = [t for t in ep.turns if t.get("kind") == "search" and t.get("searched", True)]
    if not asked:
        parts += searches
    for turn in ep.turns:
        parts.append(f'<div class="turn"><span class="kind">{esc(turn.get("kind", "?"))}</span>'
                     f'<pre>{esc(turn.get("text") or turn.get("content", ""))}</pre></div>')
        if asked and turn in asked and searches:
            parts.append(searches.pop(0))
    if asked:
        parts += searches  # more executed searches than search turns: shown, not dropped
    return Raw('<div class="episode">' + "".join(parts) + "</div>")


def episodes(arms: Sequence[Arm]) -> Raw:
    """Each arm's example episodes in a collapsible block (plain HTML ``details``, no script)."""
    blocks = []
    for arm in arms:
        inner = "".join(episode_html(ep) for ep in arm.episodes) or str(note("no example episodes recorded"))
        blocks.append(f"<details><summary>{esc(arm.title)} — {len(arm.episodes)} episodes</summary>{inner}</details>")
    return Raw("\n".join(blocks))


def stages_table(stages: Mapping[str, Mapping[str, Any]]) -> str:
    """Wall time, CPU time and peak memory per task of the run (``{task: {wall_s, cpu_s, peak_rss_mib}}``)."""
    if not stages:
        return ""
    keys = (("wall_s", "wall s", "{:.1f}"), ("cpu_s", "CPU s", "{:.1f}"), ("peak_rss_mib", "peak RSS (MiB)", "{:,.0f}"))
    rows = [[task, *("—" if row.get(k) is None else fmt.format(row[k]) for k, _, fmt in keys)]
            for task, row in stages.items()]
    return "<h3>Per task</h3>" + table(["task", *(label for _, label, _ in keys)], rows)


def run_info(results: DemoResults) -> Raw:
    """The world, wall time, peak memory, then the resolved config and package versions as JSON."""
    world = results.world
    kinds = ", ".join(f"{k}: {v}" for k, v in world.question_kinds.items())
    rss = "not recorded" if results.peak_rss_mib is None else f"{results.peak_rss_mib:,.0f} MiB"
    facts = table(["", ""], [
        ["world", world.description], ["questions (train / test)", f"{world.train_questions} / {world.test_questions}"],
        ["test questions per kind", kinds], ["corpus passages", world.corpus_passages], ["top-k", world.top_k],
        ["seed", results.seed], ["wall time", f"{results.wall_seconds:.1f} s"], ["peak RSS", rss]], cls="facts")
    stages = stages_table(results.model_dump().get("stages") or {})  # per-task figures, when the runner records them
    config = json.dumps(results.config, indent=2, sort_keys=True, default=str)
    versions = json.dumps(results.versions, indent=2, sort_keys=True, default=str)
    return Raw(f"{facts}{stages}<h3>Config</h3><pre>{esc(config)}</pre><h3>Versions</h3><pre>{esc(versions)}</pre>")
