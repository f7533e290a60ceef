"""Simulator tuning, ZeroSearch's first stage as a general tool: collect -> label -> build -> sft -> evaluate.

Bring a real engine (any :class:`~zerosearch.search.base.SearchEngine`: bm25, dense, remote, web over your
corpus) and questions; leave with a fine-tuned simulation LLM and a report on how well it simulates.
One module per stage, data flowing one way through files a user can inspect:

* ``collect``  — a policy's queries (and perturbed ones, ``perturb``) with the real engine's results
  -> ``records.jsonl`` (resumable);
* ``label``    — useful/noisy per record by named rules (outcome, judge, contains-answer) + agreement;
* ``build``    — a balanced SFT dataset (``datasets``) in the fine-tuned prompt format, recipe
  ``hinted`` (the paper) or ``imitate`` (no answer hint);
* ``tune``     — TRL SFT through :mod:`zerosearch.sft`; a ``save_pretrained`` model + ``simulator.yaml``;
* ``evaluate`` + ``report`` — useful hit, noisy leak, format, length, leniency, hits where the real
  engine misses, agreement; markdown, JSON, PNG.

The CLI (``zerosearch simulator collect|label|build|sft|evaluate``) is a thin layer over these; the toy
world's simulator (``zerosearch.toyworld.simulator``) is built by the same functions.
"""

from zerosearch.simulator.build import BuildConfig, build_dataset, build_examples, load_built
from zerosearch.simulator.collect import CollectConfig, SearchRecord, collect, read_records, write_records
from zerosearch.simulator.evaluate import evaluate_simulators, measure_engine
from zerosearch.simulator.label import contains_answer, label_collection, label_records, label_report
from zerosearch.simulator.report import write_report
from zerosearch.simulator.tune import load_engine_config, tune_simulator

__all__ = [
    "BuildConfig", "CollectConfig", "SearchRecord", "build_dataset", "build_examples", "collect", "contains_answer",
    "evaluate_simulators", "label_collection", "label_records", "label_report", "load_built", "load_engine_config",
    "measure_engine", "read_records", "tune_simulator", "write_records", "write_report",
]
