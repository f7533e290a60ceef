"""Stage 1, ``collect``: what a real engine returns for the queries a policy sends, plus perturbed queries.

For every training question a policy produces queries; each goes to the real engine (bm25, dense,
remote, web — any :class:`SearchEngine`) and becomes a :class:`SearchRecord` (question, gold answers,
query, top-k passages, the trajectory's outcome). Perturbed versions of each query (``perturb``) are
searched too, so later stages know what the real engine does with a bad query. Policies:

* ``question``: the question itself is the query (scripted; for users without a capable policy);
* ``queries-file``: queries read from a JSONL file of ``{"question_id": ..., "query": ...}`` lines;
* ``llm``: any ``zerosearch.llm`` generator driven by the project's rollout (``run_rollout``); its
  episodes give the queries and the outcome (exact match of its answer), which the ``outcome`` rule needs.

Resumable: ``records.jsonl`` holds one line per finished question (all its records), written as soon as
its batch is done; a rerun with the same config skips those questions (a half-written last line from an
interruption is dropped). Questions go to the engine in batches of ``batch_size``, at most
``concurrency`` batches in flight; perturbations are seeded per question, so the output does not depend
on batching or resuming.

    zerosearch simulator collect --questions train.jsonl --engine bm25 --corpus corpus.jsonl --out runs/sim/collect
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch.data.types import QAExample
from zerosearch.llm.factory import GeneratorConfig
from zerosearch.provenance import package_versions
from zerosearch.rollout.config import RolloutConfig
from zerosearch.search.base import SearchEngine, SearchRequest
from zerosearch.simulator.perturb import KINDS, PerturbationKind, entity_spans, perturb

logger = logging.getLogger(__name__)

RECORDS_NAME = "records.jsonl"
CONFIG_NAME = "collect_config.json"


class SearchRecord(BaseModel):
    """One (query, real documents) pair with the question it was sent for."""

    model_config = ConfigDict(extra="forbid")

    question_id: str = Field(description="id of the question the query was sent for")
    question: str
    golden_answers: list[str]
    query: str = Field(description="the query as sent to the engine")
    kind: Literal["exact", "misspelt", "other_entity", "dropped_term"] = Field(
        description="exact: the policy's own query; otherwise the perturbation applied to base_query")
    base_query: str = Field(description="the policy's query this one derives from (itself for exact)")
    documents: list[str] = Field(description="the engine's top-k as 'Doc i:' passages ((Title: t) text)")
    outcome: bool | None = Field(
        None, description="whether the trajectory that sent the query answered correctly (None: no answer, "
        "scripted policies)")
    policy: str = Field(description="which policy produced the query")
    labels: dict[str, Literal["useful", "noisy"] | None] = Field(
        default_factory=dict, description="label per rule, filled by the label stage (None: rule undecided)")

    @property
    def example(self) -> QAExample:
        return QAExample(self.question_id, self.question, tuple(self.golden_answers))


class CollectConfig(BaseModel):
    """Which policy, how many documents, which perturbations, batching and seed."""

    model_config = ConfigDict(extra="forbid")

    policy: Literal["question", "queries-file", "llm"] = Field(
        "question", description="question: the question is the query; queries-file: read them; llm: roll out")
    queries_file: Path | None = Field(None, description="JSONL of {question_id, query} (policy queries-file)")
    policy_model: GeneratorConfig | None = Field(None, description="the policy LLM (policy llm)")
    rollout: RolloutConfig = Field(
        default_factory=lambda: RolloutConfig(n_samples=1),
        description="how the llm policy is rolled out (turns, tokens, sampling); top_k_documents follows top_k")
    top_k: int = Field(3, ge=1, description="documents kept per query")
    perturbations: list[PerturbationKind] = Field(
        default_factory=lambda: list(KINDS), description="kinds of perturbed queries searched for each query")
    perturbations_per_kind: int = Field(1, ge=0, description="perturbed queries of each kind per query")
    batch_size: int = Field(16, ge=1, description="questions per engine call")
    concurrency: int = Field(1, ge=1, description="engine calls in flight at once")
    seed: int = Field(0, description="seeds perturbations and the llm policy's sampling")

    @model_validator(mode="after")
    def _check(self) -> CollectConfig:
        if self.policy == "queries-file" and self.queries_file is None:
            raise ValueError("policy 'queries-file' needs queries_file (a JSONL of {question_id, query})")
        if self.policy == "llm" and self.policy_model is None:
            raise ValueError("policy 'llm' needs policy_model (a generator config, e.g. {model: NAME_OR_DIR})")
        return self


# ---- reading and writing ---------------------------------------------------------------------------------
def read_records(path: str | Path) -> list[SearchRecord]:
    """Every record of a collect (or label) output: a ``records.jsonl`` file or the directory holding it."""
    path = Path(path)
    path = path / RECORDS_NAME if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `zerosearch simulator collect` first")
    return [record for group in _read_groups(path, drop_partial=False) for record in group[1]]


def _read_groups(path: Path, drop_partial: bool) -> Iterator[tuple[str, list[SearchRecord]]]:
    lines = path.read_text("utf-8").splitlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            yield row["question_id"], [SearchRecord.model_validate(r) for r in row["records"]]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            if drop_partial and n == len(lines):
                logger.warning("%s: dropping a half-written last line (an interrupted run)", path)
                return
            raise ValueError(f"{path}:{n} is not a collect record line ({err}); written by another tool?") from err


def write_records(records: Sequence[SearchRecord], path: str | Path) -> Path:
    """Write records grouped by question, in the ``records.jsonl`` layout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[SearchRecord]] = {}
    for record in records:
        groups.setdefault(record.question_id, []).append(record)
    with path.open("w", encoding="utf-8") as fh:
        for qid, group in groups.items():
            fh.write(_group_line(qid, group))
    return path


def _group_line(qid: str, records: list[SearchRecord]) -> str:
    return json.dumps({"question_id": qid, "records": [r.model_dump(mode="json") for r in records]}) + "\n"


def read_queries_file(path: str | Path) -> dict[str, list[str]]:
    """``{question_id: [queries]}`` from a JSONL of ``{"question_id", "query"}`` lines."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"queries file {path} not found")
    out: dict[str, list[str]] = {}
    for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict) or not isinstance(row.get("query"), str) or "question_id" not in row:
            raise ValueError(f"{path}:{n} must be a JSON object with 'question_id' and 'query' (a string)")
        out.setdefault(str(row["question_id"]), []).append(row["query"])
    return out


# ---- policies --------------------------------------------------------------------------------------------
#: A policy maps a batch of questions to (question, [(query, outcome)]) pairs.
Policy = Callable[[list[QAExample]], list[list[tuple[str, bool | None]]]]


def scripted_policy(config: CollectConfig) -> Policy:
    """The ``question`` or ``queries-file`` policy (no outcome: nothing answers)."""
    if config.policy == "question":
        return lambda batch: [[(q.question, None)] for q in batch]
    queries = read_queries_file(config.queries_file)  # type: ignore[arg-type]

    def from_file(batch: list[QAExample]) -> list[list[tuple[str, bool | None]]]:
        missing = [q.id for q in batch if q.id not in queries]
        if missing:
            raise ValueError(f"queries file {config.queries_file} has no query for question(s) {missing[:5]}")
        return [[(text, None) for text in queries[q.id]] for q in batch]

    return from_file


def llm_policy(config: CollectConfig, engine: SearchEngine) -> Policy:
    """Roll a policy LLM out against ``engine``; each episode's queries with its exact-match outcome."""
    from zerosearch.llm.factory import build_generator
    from zerosearch.rewards import exact_match
    from zerosearch.rollout import run_rollout

    generator = build_generator(config.policy_model)  # type: ignore[arg-type]
    rollout = config.rollout.model_copy(update={"top_k_documents": config.top_k})

    def run(batch: list[QAExample]) -> list[list[tuple[str, bool | None]]]:
        episodes = run_rollout(generator, engine, batch, rollout, seed=config.seed)
        out = []
        for episode in episodes:
            correct = episode.answer is not None and exact_match(episode.answer, episode.example.golden_answers) > 0
            out.append([(query, correct) for query in episode.queries])
        return out

    return run


# ---- the stage -------------------------------------------------------------------------------------------
def _question_rng(seed: int, qid: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{qid}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _planned(
    question: QAExample, queries: list[tuple[str, bool | None]], config: CollectConfig, pool: Sequence[str]
) -> list[tuple[str, str, str, bool | None]]:
    """(query, kind, base_query, outcome) to search for one question: exact queries and perturbations."""
    rng = _question_rng(config.seed, question.id)
    plan, seen = [], set()
    for query, outcome in queries:
        if query in seen:
            continue
        seen.add(query)
        plan.append((query, "exact", query, outcome))
        for kind in config.perturbations:
            for _ in range(config.perturbations_per_kind):
                bad = perturb(query, kind, rng, pool=pool)
                if bad is not None and bad not in seen:
                    seen.add(bad)
                    plan.append((bad, kind, query, None))
    return plan


def _search_batch(
    batch: list[QAExample], policy: Policy, engine: SearchEngine, config: CollectConfig, pool: Sequence[str],
    policy_name: str,
) -> list[list[SearchRecord]]:
    plans = [_planned(q, queries, config, pool) for q, queries in zip(batch, policy(batch), strict=True)]
    flat = [p for plan in plans for p in plan]
    results = engine.search([SearchRequest(query=p[0], top_k=config.top_k) for p in flat])
    it = iter(results)
    groups = []
    for question, plan in zip(batch, plans, strict=True):
        group = []
        for (query, kind, base, outcome), result in zip(plan, it, strict=False):
            documents = [d.as_passage() for d in result.documents[: config.top_k]]
            group.append(SearchRecord(
                question_id=question.id, question=question.question, golden_answers=list(question.golden_answers),
                query=query, kind=kind, base_query=base, documents=documents, outcome=outcome, policy=policy_name))
        groups.append(group)
    return groups


def _start(out: Path, config: CollectConfig, questions: list[QAExample]) -> set[str]:
    """Create ``out`` or check that it holds a run of the same config; the ids already done."""
    out.mkdir(parents=True, exist_ok=True)
    record = {"config": config.model_dump(mode="json"), "questions": len(questions)}
    config_path = out / CONFIG_NAME
    if config_path.is_file():
        before = json.loads(config_path.read_text("utf-8"))
        if before.get("config") != record["config"]:
            raise ValueError(f"{out} holds a collection with another config; resume with the same settings "
                             "or choose a new --out")
    else:
        config_path.write_text(json.dumps({**record, "versions": package_versions()}, indent=1), "utf-8")
    records_path = out / RECORDS_NAME
    if not records_path.is_file():
        return set()
    groups = list(_read_groups(records_path, drop_partial=True))
    with records_path.open("w", encoding="utf-8") as fh:  # rewrite without a half-written last line
        for qid, group in groups:
            fh.write(_group_line(qid, group))
    return {qid for qid, _ in groups}


def collect(
    questions: Sequence[QAExample], engine: SearchEngine, out_dir: str | Path, config: CollectConfig | None = None,
    *, progress: bool = True, policy: Policy | None = None,
) -> Path:
    """Search every question's queries (and their perturbations) with ``engine``, appending to
    ``out_dir/records.jsonl``; questions already there are skipped. Returns the records path.

    ``policy`` overrides the configured one (a callable as :data:`Policy`), for policies built in code.
    """
    from tqdm.auto import tqdm

    config = config or CollectConfig()
    questions = list(questions)
    if not questions:
        raise ValueError("no questions to collect for; pass at least one")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ValueError("question ids repeat; every question needs a unique id")
    out = Path(out_dir)
    done = _start(out, config, questions)
    todo = [q for q in questions if q.id not in done]
    name = "custom" if policy is not None else config.policy
    if policy is None:
        policy = llm_policy(config, engine) if config.policy == "llm" else scripted_policy(config)
    pool = sorted({span for q in questions for span in entity_spans(q.question)})
    batches = [todo[i : i + config.batch_size] for i in range(0, len(todo), config.batch_size)]
    bar = tqdm(total=len(questions), initial=len(done), desc="collect", unit="q", disable=not progress)
    with ThreadPoolExecutor(max_workers=config.concurrency) as pool_exec, (out / RECORDS_NAME).open("a") as fh:
        # map() yields in submission order: lines are written in question order whatever finishes first.
        jobs = pool_exec.map(lambda b: _search_batch(b, policy, engine, config, pool, name), batches)
        for batch, groups in zip(batches, jobs, strict=True):
            for question, group in zip(batch, groups, strict=True):
                fh.write(_group_line(question.id, group))
            fh.flush()
            bar.update(len(batch))
    bar.close()
    return out / RECORDS_NAME
