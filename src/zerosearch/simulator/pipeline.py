"""Every stage of simulator tuning in one call, judged on the split RL uses, with a quality-per-epoch curve.

``zerosearch simulator pipeline --config configs/simulator-smollm2-hotpotqa.yaml --out runs/sim`` runs:

1. ``collect`` the RL training questions' query forms (:mod:`~zerosearch.simulator.queries`: the question,
   its supporting titles, its keywords) and, with ``policy.model`` set, the queries the warm-started policy
   itself writes (``collect``'s ``llm`` policy, ``policy.samples`` sampled rollouts per question), each with
   perturbed variants, against the real engine; the held-out questions the same way;
2. ``split``: a share of each training question's queries (with their perturbations) is held out
   (:func:`~zerosearch.simulator.splits.split_queries`): the *held-out queries*;
3. ``label`` (contains-answer) and ``build`` the SFT dataset from the remaining records;
4. ``sft`` for ``sft.epochs`` passes, saving a checkpoint every ``evaluate.curve_every`` epochs;
5. ``evaluate``: every checkpoint on ``evaluate.curve_queries`` held-out queries (the curve), then the final
   model on both splits against the real engine: ``report/report.{md,json}``, ``report/curve.png``.

Each stage writes its directory under ``--out`` and is skipped when a rerun finds it finished (the same
config is required: ``pipeline.json`` records it), so an interrupted run resumes. ``model/`` is a
``zerosearch simulator sft`` directory: a world serves it with ``simulators: {NAME: {source: model, path:
...}}``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zerosearch.provenance import package_versions
from zerosearch.rollout.config import RolloutConfig
from zerosearch.simulator.build import BuildConfig, build_dataset, build_examples, load_built
from zerosearch.simulator.collect import CollectConfig, SearchRecord, collect, read_records, write_records
from zerosearch.simulator.perturb import KINDS, PerturbationKind
from zerosearch.simulator.queries import FORMS, QueryForm, forms_policy
from zerosearch.simulator.splits import dedupe, split_queries

Log = Callable[[str], None]
MANIFEST = "pipeline.json"


class PipelineData(BaseModel):
    """The questions RL trains on, the held-out questions and the real engine's corpus."""

    model_config = ConfigDict(extra="forbid")

    train: Path = Field(description="the RL training questions (any QA file zerosearch reads)")
    heldout: Path | None = Field(None, description="held-out questions (None: judge on held-out queries only)")
    corpus: Path = Field(description="wiki-18 JSONL corpus of the real engine")
    engine: str = Field("bm25", description="the real engine over the corpus: bm25 | dense")


class PolicyQueries(BaseModel):
    """The warm-started policy whose own queries join the query forms."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="policy model dir or name (None: scripted query forms only)")
    samples: int = Field(2, ge=1, description="sampled rollouts per question (seeds seed, seed+1, ...)")
    rollout: RolloutConfig = Field(
        default_factory=lambda: RolloutConfig(n_samples=1, max_turns=2, max_new_tokens=128, temperature=1.0),
        description="how the policy is rolled out (use the RL run's protocol settings)")


class PipelineSFT(BaseModel):
    """The fine-tuning run, in epochs (steps follow from the dataset size)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("smollm2-135m-instruct", description="the simulator's base model")
    epochs: float = Field(2.0, gt=0, description="passes over the SFT dataset")
    batch_size: int = Field(4, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: str = Field("constant")
    warmup_steps: int = Field(0, ge=0)
    lora_r: int = Field(0, ge=0, description="LoRA rank (0: full fine-tuning)")
    mixed_precision: str = Field("bf16", description="bf16 autocast over float32 weights, or 'no'")
    max_length: int | None = Field(512, ge=8)
    num_threads: int | None = Field(None, ge=1)
    max_new_tokens: int = Field(160, ge=1, description="generation budget written into simulator.yaml")


class PipelineEvaluate(BaseModel):
    """How the simulator is served while it is measured, and the curve's resolution."""

    model_config = ConfigDict(extra="forbid")

    curve_every: float = Field(0.5, gt=0, description="epochs between curve checkpoints")
    curve_queries: int = Field(12, ge=1, description="held-out base queries (with their perturbations) per point")
    temperature: float = Field(0.8, ge=0, description="simulator sampling temperature (the RL run's)")
    batch_size: int = Field(16, ge=1, description="queries per generate call")


class PipelineConfig(BaseModel):
    """One YAML file: data, query sources, split, dataset recipe, SFT, evaluation, seed."""

    model_config = ConfigDict(extra="forbid")

    data: PipelineData
    forms: list[QueryForm] = Field(default_factory=lambda: list(FORMS), description="scripted query forms")
    policy: PolicyQueries = Field(default_factory=PolicyQueries)
    top_k: int = Field(3, ge=1, description="documents per query")
    perturbations: list[PerturbationKind] = Field(default_factory=lambda: list(KINDS))
    heldout_query_share: float = Field(0.25, gt=0, lt=1, description="share of each question's queries held out")
    build: BuildConfig = Field(default_factory=lambda: BuildConfig(recipe="hinted"))
    sft: PipelineSFT = Field(default_factory=PipelineSFT)
    evaluate: PipelineEvaluate = Field(default_factory=PipelineEvaluate)
    seed: int = 0


def load_pipeline_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """A :class:`PipelineConfig` from YAML, dotted ``overrides`` (``{"sft.epochs": 4}``) applied first; a
    bad key or value raises ``ConfigError`` naming it."""
    from zerosearch.config_files import load_yaml_config

    return load_yaml_config(path, PipelineConfig, overrides, what="simulator pipeline config",
                            example="configs/simulator-smollm2-hotpotqa.yaml")


# ---- stages ----------------------------------------------------------------------------------------------
def _collect_all(config: PipelineConfig, questions: list, engine: Any, out: Path, log: Log) -> list[SearchRecord]:
    """Query forms and the policy's queries of ``questions`` (with perturbations), searched with ``engine``."""
    base = {"top_k": config.top_k, "perturbations": config.perturbations, "seed": config.seed}
    collect(questions, engine, out / "forms", CollectConfig(**base), policy=forms_policy(config.forms),
            progress=False)
    records = read_records(out / "forms")
    if config.policy.model:
        for s in range(config.policy.samples):
            policy = CollectConfig(**{**base, "seed": config.seed + s}, policy="llm",
                                   policy_model={"model": config.policy.model, "dtype": "float32"},
                                   rollout=config.policy.rollout)
            collect(questions, engine, out / f"policy-{s}", policy, progress=False)
            records += read_records(out / f"policy-{s}")
    log(f"collected {len(records)} records for {len(questions)} questions in {out}")
    return dedupe(records)


def collect_and_split(config: PipelineConfig, out: Path, log: Log) -> dict[str, list[SearchRecord]]:
    """``splits/{train,heldout_queries,heldout_questions}/records.jsonl`` (reused when present)."""
    from zerosearch.data.loaders import load_dataset
    from zerosearch.search.factory import build_engine, engine_config_from_flags

    split_dir = out / "splits"
    names = ["train", "heldout_queries"] + (["heldout_questions"] if config.data.heldout else [])
    if all((split_dir / n / "records.jsonl").is_file() for n in names):
        return {n: read_records(split_dir / n) for n in names}
    engine = build_engine(engine_config_from_flags(config.data.engine, corpus=config.data.corpus))
    train_q = load_dataset(str(config.data.train), limit=None)
    records = _collect_all(config, train_q, engine, out / "collect-train", log)
    train, heldout = split_queries(records, config.heldout_query_share, config.seed)
    splits = {"train": train, "heldout_queries": heldout}
    if config.data.heldout:
        splits["heldout_questions"] = _collect_all(
            config, load_dataset(str(config.data.heldout), limit=None), engine, out / "collect-heldout", log)
    for name, recs in splits.items():
        write_records(recs, split_dir / name / "records.jsonl")
    log("splits: " + ", ".join(f"{n} {len(r)} records" for n, r in splits.items()))
    return splits


def build_stage(config: PipelineConfig, train: list[SearchRecord], out: Path) -> Path:
    """The labelled SFT dataset of the training split (reused when present)."""
    from zerosearch.simulator.label import label_records

    data_dir = out / "data"
    if not (data_dir / "build_record.json").is_file():
        build_dataset(label_records(train, ["contains-answer"]), data_dir, config.build)
    return data_dir


def _heldout_rows(config: PipelineConfig, heldout: list[SearchRecord]) -> tuple[list[dict], int]:
    """Tokenized SFT rows of the held-out queries (same recipe) for the held-out loss, and the pad id."""
    from transformers import AutoTokenizer

    from zerosearch.llm.models import resolve_model
    from zerosearch.sft.data import rows_from_pairs
    from zerosearch.simulator.label import label_records

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.sft.model))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples = build_examples(label_records(heldout, ["contains-answer"]), config.build)
    return rows_from_pairs(tokenizer, examples), pad


def sft_stage(config: PipelineConfig, data_dir: Path, heldout: list[SearchRecord], out: Path, log: Log
              ) -> list[dict[str, Any]]:
    """Fine-tune ``out/model`` with checkpoints every ``curve_every`` epochs; ``out/checkpoints.json``."""
    from zerosearch.sft import LoRASettings, SFTRunConfig
    from zerosearch.simulator.curve import EpochCheckpoints
    from zerosearch.simulator.tune import tune_simulator

    record_path = out / "checkpoints.json"
    if record_path.is_file() and (out / "model" / "simulator.yaml").is_file():
        return json.loads(record_path.read_text("utf-8"))["checkpoints"]
    dataset, _ = load_built(data_dir)
    s = config.sft
    rows, pad = _heldout_rows(config, heldout)
    callback = EpochCheckpoints(out / "checkpoints", len(dataset) / s.batch_size, config.evaluate.curve_every,
                                s.epochs, heldout_rows=rows, pad_id=pad)
    max_steps = callback.max_steps
    run = SFTRunConfig(model=s.model, output_dir=out / "model", overwrite=True, max_steps=max_steps,
                       batch_size=s.batch_size, learning_rate=s.learning_rate, lr_scheduler=s.lr_scheduler,
                       warmup_steps=s.warmup_steps, mixed_precision=s.mixed_precision, max_length=s.max_length,
                       lora=LoRASettings(r=s.lora_r, alpha=2 * s.lora_r) if s.lora_r else None,
                       gradient_checkpointing=False, num_threads=s.num_threads, seed=config.seed,
                       logging_steps=max(1, max_steps // 20), probe_rows=16, use_cpu=True)
    log(f"sft: {len(dataset)} rows, {s.epochs:g} epochs = {max_steps} steps of {s.batch_size}")
    result = tune_simulator(data_dir, run, log=log, max_new_tokens=s.max_new_tokens, callbacks=[callback])
    record = {"checkpoints": callback.saved, "steps": max_steps, "rows": len(dataset), "seconds": result.seconds,
              "loss_before": result.loss_before, "loss_after": result.loss_after}
    record_path.write_text(json.dumps(record, indent=1), "utf-8")
    return callback.saved


def curve_subset(heldout: list[SearchRecord], n: int, seed: int) -> list[SearchRecord]:
    """The records of ``n`` seeded (question, base query) groups of the held-out queries."""
    groups = sorted({(r.question_id, r.base_query) for r in heldout})
    chosen = set(random.Random(seed).sample(groups, min(n, len(groups))))
    return [r for r in heldout if (r.question_id, r.base_query) in chosen]


def evaluate_stage(config: PipelineConfig, splits: dict[str, list[SearchRecord]],
                   checkpoints: list[dict[str, Any]], out: Path, log: Log) -> dict[str, Any]:
    """The curve over checkpoints, the final model on both splits, the report directory."""
    from zerosearch.search.factory import build_engine
    from zerosearch.simulator.curve import curve_figure, measure_curve
    from zerosearch.simulator.evaluate import evaluate_splits, reference_rows, summarise
    from zerosearch.simulator.report import write_report
    from zerosearch.simulator.tune import load_engine_config

    ev = config.evaluate

    def engine_for(path: str | Path) -> Any:
        engine = load_engine_config(out / "model", temperature=ev.temperature, seed=config.seed)
        generator = engine.generator.model_copy(update={"model": str(path), "batch_size": ev.batch_size})
        return build_engine(engine.model_copy(update={"generator": generator}))

    subset = curve_subset(splits["heldout_queries"], ev.curve_queries, config.seed)
    curve = measure_curve(checkpoints, subset, engine_for, config.top_k, log=log)
    curve_reference = summarise(reference_rows(subset, config.top_k))
    judged = {n: r for n, r in splits.items() if n != "train"}
    result = evaluate_splits(judged, {"tuned": engine_for(out / "model")}, config.top_k,
                             batch_size=ev.batch_size, log=log)
    report = out / "report"
    write_report(result, report, title="Tuned simulator vs the real engine", per_query=True,
                 extra={"curve": curve, "curve_reference": curve_reference, "config": config.model_dump(mode="json")})
    curve_figure(curve, curve_reference, report / "curve.png")
    with (report / "report.md").open("a", encoding="utf-8") as fh:
        fh.write(curve_markdown(curve, curve_reference))
    return {"curve": curve, "curve_reference": curve_reference, "splits": result["splits"]}


def curve_markdown(curve: list[dict[str, Any]], reference: dict[str, float]) -> str:
    """The curve as a table (one row per checkpoint, the real engine last) and the figure."""
    from zerosearch.simulator.curve import CURVE_METRICS
    from zerosearch.simulator.report import format_cell

    head = "| epoch | held-out loss | " + " | ".join(k.replace("_", " ") for k in CURVE_METRICS) + " |"
    lines = ["## Quality per epoch", "", "On a fixed subset of the held-out queries.", "", head,
             "|---" * (len(CURVE_METRICS) + 2) + "|"]
    for p in curve:
        lines.append(f"| {p['epoch']:g} | {format_cell(p['heldout_loss'], 'loss')} | "
                     + " | ".join(format_cell(p[k], k) for k in CURVE_METRICS) + " |")
    lines.append("| real engine | — | " + " | ".join(format_cell(reference.get(k), k) for k in CURVE_METRICS) + " |")
    return "\n".join(["", *lines, "", "![quality per epoch](curve.png)", ""])


def _check_resume(config: PipelineConfig, out: Path) -> None:
    path = out / MANIFEST
    dumped = config.model_dump(mode="json")
    if path.is_file() and json.loads(path.read_text("utf-8")).get("config") != dumped:
        raise ValueError(f"{out} holds a pipeline run with another config; rerun with the same settings or "
                         "choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        path.write_text(json.dumps({"config": dumped, "versions": package_versions()}, indent=1), "utf-8")


def run_pipeline(config: PipelineConfig, out_dir: str | Path, *, log: Log = print) -> dict[str, Any]:
    """Run (or resume) every stage into ``out_dir``; returns the evaluation (curve and splits)."""
    out = Path(out_dir)
    _check_resume(config, out)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    splits = collect_and_split(config, out, log)
    seconds["collect"] = time.perf_counter() - start
    data_dir = build_stage(config, splits["train"], out)
    mark = time.perf_counter()
    checkpoints = sft_stage(config, data_dir, splits["heldout_queries"], out, log)
    seconds["sft"] = time.perf_counter() - mark
    mark = time.perf_counter()
    evaluation = evaluate_stage(config, splits, checkpoints, out, log)
    seconds["evaluate"] = time.perf_counter() - mark
    manifest = json.loads((out / MANIFEST).read_text("utf-8"))
    manifest.update({"seconds": seconds, "records": {n: len(r) for n, r in splits.items()},
                     "model": "model", "report": "report"})
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1), "utf-8")
    log(f"simulator in {out / 'model'}; report in {out / 'report' / 'report.md'}")
    return evaluation
