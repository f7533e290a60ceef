"""Stage 3, ``build``: a balanced SFT dataset in the fine-tuned simulator's prompt format.

Prompts and targets come from ``simulator_prompts.finetuned_sft_pair``, the function that mirrors what
the serving engine renders in ``finetuned`` mode, so training and serving share one format. Two recipes:

* ``hinted`` (the paper): query + question + gold answer + kind -> documents, where the kind is the
  record's label under ``rule`` (useful documents for useful, noisy ones for noisy); balanced by
  down-sampling the larger class.
* ``imitate`` (``MINIATURE-FINDINGS.md``, "Second round"): no hint. Useful mode: query -> what the real
  engine returned for it, for exact and perturbed queries alike (so a bad query gets bad results).
  Noisy mode: an exact query -> the engine's results for a *corrupted* query (a perturbed query of the
  same question whose results hold no gold answer, else another question's results that hold none of
  this question's answers). ``noisy_share`` sets the mix (0.5: balanced).

The dataset (columns ``prompt``, ``completion``, ``mode``, ``source``, ``question_id``, ``query``) is saved
with ``datasets``' ``save_to_disk``; ``build_record.json`` beside it holds the config, counts, versions and
how to serve the model tuned on it (``engine``).

    zerosearch simulator build --records runs/sim/label --recipe imitate --out runs/sim/data-imitate
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zerosearch.provenance import package_versions
from zerosearch.search import simulator_prompts as prompts
from zerosearch.simulator.collect import SearchRecord
from zerosearch.simulator.label import contains_answer

BUILD_RECORD = "build_record.json"
DATA_DIR = "dataset"


class BuildConfig(BaseModel):
    """Recipe, labels and mix of the SFT dataset."""

    model_config = ConfigDict(extra="forbid")

    recipe: Literal["hinted", "imitate"] = Field("imitate", description="hinted: the paper; imitate: no answer hint")
    rule: str = Field("contains-answer", description="label rule whose labels the hinted recipe uses")
    top_k: int = Field(3, ge=1, description="'Number of results' in the prompt (use collect's top_k)")
    noisy_share: float = Field(0.5, gt=0.0, lt=1.0, description="share of noisy-mode examples (0.5: balanced)")
    exact_repeats: int = Field(1, ge=1, description="imitate: copies of each exact query's useful example")
    contrast_share: float = Field(
        0.0, ge=0.0, le=1.0, description="hinted: share of the noisy examples that are contrast pairs: a query whose "
        "real results hold the answer, asked for noisy results, answered with the engine's results for a corrupted "
        "query. Without them every noisy example comes from a query the engine failed on, so the model learns "
        "'good query -> answer' whatever the kind asks, and leaks the answer into noisy results")
    seed: int = Field(0, description="seeds balancing, corrupted-query choice and shuffling")


def _example(record: SearchRecord, mode: str, documents: Sequence[str], config: BuildConfig, source: str) -> dict:
    hint = prompts.RECIPE_HINT[config.recipe]
    prompt, completion = prompts.finetuned_sft_pair(
        record.query, config.top_k, mode, list(documents),  # type: ignore[arg-type]
        question=record.question if hint else None, answers=tuple(record.golden_answers) if hint else None)
    return {"prompt": prompt, "completion": completion, "mode": mode, "source": source,
            "question_id": record.question_id, "query": record.query}


def hinted_examples(records: Sequence[SearchRecord], config: BuildConfig, rng: random.Random) -> list[dict]:
    """The paper's recipe: each labelled record, its label as the kind; classes balanced by down-sampling."""
    decided = [r for r in records if r.labels.get(config.rule)]
    if not decided:
        raise ValueError(f"no record carries a '{config.rule}' label: run `simulator label --rule {config.rule}` "
                         "first, or pick a rule the records were labelled with")
    useful = [r for r in decided if r.labels[config.rule] == "useful"]
    noisy = [r for r in decided if r.labels[config.rule] == "noisy"]
    if not useful or not noisy:
        raise ValueError(f"rule '{config.rule}' labelled every record {'noisy' if noisy else 'useful'}: "
                         "the hinted recipe needs both classes (collect more questions or use another rule)")
    n_noisy = min(len(noisy), round(len(useful) * config.noisy_share / (1 - config.noisy_share)))
    n_useful = min(len(useful), round(n_noisy * (1 - config.noisy_share) / config.noisy_share))
    n_contrast = round(n_noisy * config.contrast_share)
    chosen = [(r, "useful") for r in rng.sample(useful, n_useful)]
    chosen += [(r, "noisy") for r in rng.sample(noisy, n_noisy - n_contrast)]
    examples = [_example(r, mode, r.documents, config, r.kind) for r, mode in chosen]
    return examples + contrast_examples(records, useful, n_contrast, config, rng)


def contrast_examples(records: Sequence[SearchRecord], useful: Sequence[SearchRecord], n: int, config: BuildConfig,
                      rng: random.Random) -> list[dict]:
    """``n`` noisy-mode examples for exact queries the engine answered, with a corrupted query's results."""
    if n == 0:
        return []
    candidates = [r for r in useful if r.kind == "exact"]
    if not candidates:
        raise ValueError("contrast_share needs exact queries whose results hold the answer; there are none "
                         "(set contrast_share: 0 or collect more questions)")
    out = corrupted_examples(records, candidates, n, config, rng, "contrast")
    if len(out) < n:
        raise ValueError(f"found corrupted results for only {len(out)} of {n} contrast examples; lower "
                         "contrast_share or collect perturbations")
    return out


def corrupted_examples(records: Sequence[SearchRecord], candidates: Sequence[SearchRecord], n: int,
                       config: BuildConfig, rng: random.Random, source: str) -> list[dict]:
    """Up to ``n`` noisy-mode examples: a random candidate's query answered with the engine's results for a
    corrupted query that hold none of its answers (:func:`_noisy_target`); 3n bounded tries."""
    by_question: dict[str, list[SearchRecord]] = {}
    for r in records:
        by_question.setdefault(r.question_id, []).append(r)
    exact = [r for r in records if r.kind == "exact"]
    out: list[dict] = []
    for _ in range(n * 3):
        if len(out) == n:
            break
        record = rng.choice(candidates)
        target = _noisy_target(record, by_question[record.question_id], exact, rng)
        if target is not None:
            out.append(_example(record, "noisy", target, config, source))
    return out


def _noisy_target(record: SearchRecord, same_question: list[SearchRecord], others: list[SearchRecord],
                  rng: random.Random) -> list[str] | None:
    """The engine's results for a corrupted version of ``record``'s query that hold none of its answers."""
    own = [r for r in same_question if r.kind != "exact" and r.documents
           and not contains_answer(r.documents, record.golden_answers)]
    if own:
        return rng.choice(own).documents
    for _ in range(20):
        other = rng.choice(others)
        if other.question_id != record.question_id and other.documents and not contains_answer(
                other.documents, record.golden_answers):
            return other.documents
    return None


def imitate_examples(records: Sequence[SearchRecord], config: BuildConfig, rng: random.Random) -> list[dict]:
    """No hint: useful = the engine's results for every (exact or perturbed) query; noisy = the engine's
    results for a corrupted query, asked for with the exact query."""
    exact = [r for r in records if r.kind == "exact"]
    if not exact:
        raise ValueError("no exact-query records: the imitate recipe needs the policy's own queries")
    useful = [_example(r, "useful", r.documents, config, r.kind)
              for r in records for _ in range(config.exact_repeats if r.kind == "exact" else 1)]
    n_noisy = round(len(useful) * config.noisy_share / (1 - config.noisy_share))
    noisy = corrupted_examples(records, exact, n_noisy, config, rng, "corrupted")
    if len(noisy) < n_noisy:
        raise ValueError(f"found corrupted results for only {len(noisy)} of {n_noisy} noisy examples: every "
                         "candidate holds the gold answer; collect perturbations or more questions")
    return useful + noisy


def build_examples(records: Sequence[SearchRecord], config: BuildConfig) -> list[dict]:
    """The recipe's examples, shuffled with ``config.seed``."""
    if not records:
        raise ValueError("no records to build from: the collection is empty")
    rng = random.Random(config.seed)
    recipe = hinted_examples if config.recipe == "hinted" else imitate_examples
    examples = recipe(records, config, rng)
    rng.shuffle(examples)
    return examples


def engine_settings(recipe: str) -> dict[str, Any]:
    """How to serve a model tuned on a ``recipe`` dataset (fields of ``SimulatedEngineConfig``)."""
    return {"mode": "finetuned", "include_question_and_answer": prompts.RECIPE_HINT[recipe],
            "use_chat_template": False}


def build_dataset(records: Sequence[SearchRecord], out_dir: str | Path, config: BuildConfig) -> Path:
    """Build, save (``out_dir/dataset``, ``save_to_disk``) and record; returns ``out_dir``."""
    from datasets import Dataset

    examples = build_examples(records, config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(examples).save_to_disk(str(out / DATA_DIR))
    counts: dict[str, int] = {}
    for e in examples:
        counts[f"{e['mode']}/{e['source']}"] = counts.get(f"{e['mode']}/{e['source']}", 0) + 1
    record = {"config": config.model_dump(mode="json"), "examples": len(examples), "counts": counts,
              "questions": len({e["question_id"] for e in examples}), "engine": engine_settings(config.recipe),
              "versions": package_versions()}
    (out / BUILD_RECORD).write_text(json.dumps(record, indent=1), "utf-8")
    return out


def load_built(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """(the saved ``datasets.Dataset``, its build record) of a ``build`` output directory."""
    from datasets import load_from_disk

    path = Path(path)
    if not (path / BUILD_RECORD).is_file() or not (path / DATA_DIR).is_dir():
        raise FileNotFoundError(f"{path} is not a build output (no {BUILD_RECORD} / {DATA_DIR}/): run "
                                "`zerosearch simulator build` first")
    return load_from_disk(str(path / DATA_DIR)), json.loads((path / BUILD_RECORD).read_text("utf-8"))
