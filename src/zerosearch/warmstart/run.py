"""``zerosearch sft`` end to end: corpus, split, demonstrations from a real engine, then TRL SFT.

Stages, each writing what it made into ``output_dir`` so a run can be inspected (and its held-out
questions evaluated) afterwards:

1. ``corpus.jsonl``: the aligned questions' paragraphs, pooled (:mod:`zerosearch.warmstart.aligned`);
2. ``split/train.jsonl`` + ``split/test.jsonl``: a seeded split by question (:mod:`.split`);
3. ``demos.jsonl``: one demonstration per training question, searches answered by the engine for real
   (:mod:`.demos`), tokenised by the rollout's rules (:mod:`.tokens`);
4. ``model/``: one stage of :func:`zerosearch.warmstart.stages.run_stages` (the staged warm-start every
   world uses; here :func:`zerosearch.sft.run_sft`, TRL's SFTTrainer, loss on policy tokens only, no
   reading check), a ``save_pretrained`` directory any backend loads (``zerosearch ask --policy
   <output_dir>/model``);
5. ``warmstart.json``: the config, data counts, the SFT summary and package versions.

    result = run_warmstart(load_warmstart_config("configs/sft-smollm2-hotpotqa.yaml"))
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zerosearch.data.loaders import DataError, load_dataset
from zerosearch.data.types import QAExample
from zerosearch.provenance import package_versions
from zerosearch.sft import SFTResult
from zerosearch.warmstart.aligned import load_aligned, write_corpus
from zerosearch.warmstart.config import WarmStartConfig
from zerosearch.warmstart.demos import Demonstration, build_demonstrations
from zerosearch.warmstart.split import QuestionSplit, split_by_question
from zerosearch.warmstart.stages import Stage, run_stages
from zerosearch.warmstart.tokens import ProtocolTokenizer

RECORD_FILE = "warmstart.json"
DEMOS_FILE = "demos.jsonl"
SPLIT_DIR = "split"


@dataclass
class WarmStartData:
    """The training questions, the held-out ones, the demonstrations and their token rows."""

    train: list[QAExample]
    test: list[QAExample]
    demos: list[Demonstration]
    rows: list[dict[str, list[int]]]


@dataclass
class WarmStartResult:
    """What :func:`run_warmstart` made: the data and the SFT result (``sft.output_dir`` holds the model)."""

    data: WarmStartData
    sft: SFTResult
    record_path: Path


def training_questions(config: WarmStartConfig) -> tuple[list[QAExample], list[QAExample]]:
    """Train and held-out questions; writes the pooled corpus and the split when ``data.aligned`` is set."""
    train: list[QAExample] = []
    test: list[QAExample] = []
    if config.data.aligned is not None:
        aligned = load_aligned(config.data.aligned)
        write_corpus(aligned.paragraphs, config.corpus_path)
        split: QuestionSplit = split_by_question(aligned.examples, config.data.test_fraction, config.data.split_seed)
        split.write(config.output_dir / SPLIT_DIR)
        train, test = list(split.train), list(split.test)
    for spec in config.data.questions:
        train += load_dataset(spec, limit=config.data.questions_limit, seed=config.data.split_seed)
    if not train:
        raise DataError("no training questions after the split; check data.aligned / data.questions")
    return train, test


def protocol_tokenizer(config: WarmStartConfig, tokenizer: Any) -> ProtocolTokenizer:
    """The rollout-equivalent tokeniser for this config's prompt settings."""
    p = config.prompt
    return ProtocolTokenizer(tokenizer, template_path=p.template_path, use_chat_template=p.use_chat_template,
                             max_information_tokens=p.max_information_tokens)


def check_lengths(rows: list[dict[str, list[int]]], demos: list[Demonstration], max_length: int | None) -> None:
    """Refuse rows longer than the SFT's ``max_length``: cutting them would drop the answer turn."""
    if max_length is None:
        return
    long = [(d.example.id, len(r["input_ids"])) for d, r in zip(demos, rows, strict=True)
            if len(r["input_ids"]) > max_length]
    if long:
        raise DataError(f"{len(long)} demonstration(s) exceed sft.max_length={max_length} tokens (e.g. {long[:3]}); "
                        "raise sft.max_length (or set it to null), lower demos.top_k_documents / max_searches, "
                        "or set prompt.max_information_tokens")


def prepare_data(config: WarmStartConfig, tokenizer: Any, engine: Any = None) -> WarmStartData:
    """Questions, demonstrations (searching ``engine``, built from the config when None) and token rows."""
    from zerosearch.search.factory import build_engine

    train, test = training_questions(config)
    engine = engine if engine is not None else build_engine(config.engine_config())
    demos = build_demonstrations(train, engine, config.demos)
    rows = [protocol_tokenizer(config, tokenizer).tokenize(d) for d in demos]
    check_lengths(rows, demos, config.sft.max_length)
    with (config.output_dir / DEMOS_FILE).open("w", encoding="utf-8") as fh:
        for demo, row in zip(demos, rows, strict=True):
            fh.write(json.dumps({**demo.to_dict(), "tokens": len(row["input_ids"]),
                                 "policy_tokens": sum(row["completion_mask"])}, ensure_ascii=False) + "\n")
    return WarmStartData(train, test, demos, rows)


def data_summary(data: WarmStartData) -> dict[str, Any]:
    """Counts for the run record: questions, searches, grounding, tokens."""
    lengths = [len(r["input_ids"]) for r in data.rows]
    return {
        "train_questions": len(data.train), "test_questions": len(data.test), "demonstrations": len(data.demos),
        "grounded": sum(d.grounded for d in data.demos),
        "mean_searches": statistics.mean(len(d.queries) for d in data.demos),
        "mean_tokens": statistics.mean(lengths), "max_tokens": max(lengths),
        "policy_tokens": sum(sum(r["completion_mask"]) for r in data.rows),
    }


def _check_output(config: WarmStartConfig) -> None:
    model_dir = config.sft.output_dir
    if model_dir.is_dir() and any(model_dir.iterdir()) and not config.sft.overwrite:
        raise FileExistsError(f"{model_dir} is not empty; choose another output_dir or set overwrite: true")
    config.output_dir.mkdir(parents=True, exist_ok=True)


def load_tokenizer(name: str) -> Any:
    """The tokenizer of a built-in name, hub id or local directory."""
    from transformers import AutoTokenizer

    from zerosearch.llm.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(name))


def run_warmstart(
    config: WarmStartConfig, *, model: Any = None, tokenizer: Any = None, engine: Any = None, log: Any = print,
    num_threads: Any = None,
) -> WarmStartResult:
    """Build the data and run the SFT; pass ``model`` + ``tokenizer`` objects to train one not on disk.
    ``num_threads``: as :func:`~zerosearch.warmstart.stages.run_stages` takes it (an int, or a callable asked
    while training; default: ``sft.num_threads``)."""
    _check_output(config)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.sft.model)
    data = prepare_data(config, tokenizer, engine)
    summary = data_summary(data)
    log(f"warm-start data: {summary}")
    staged = run_stages([Stage("sft", data.rows, config.sft)], model=model, tokenizer=tokenizer, log=log,
                        num_threads=num_threads)
    result = staged.stages[0].sft
    record = {
        "config": config.model_dump(mode="json"), "data": summary,
        "sft": {"output_dir": str(result.output_dir), "loss_before": result.loss_before,
                "loss_after": result.loss_after, "seconds": result.seconds, "rows": result.rows,
                "trained_tokens": result.trained_tokens, "curve": result.curve},
        "versions": package_versions(),
    }
    path = config.output_dir / RECORD_FILE
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return WarmStartResult(data, result, path)
