"""``simulator sft`` and ``evaluate`` + ``report``: a tiny Llama (built from a config, word-level tokenizer)
tuned through TRL on a real build output, served from its ``simulator.yaml`` by ``build_engine`` and
measured on held-out records beside the real engine; the metric arithmetic on a hand-made case; bad input."""

from __future__ import annotations

import json
import math

import pytest

from zerosearch.search.base import Document, SearchResult
from zerosearch.search.bm25 import BM25SearchEngine
from zerosearch.search.factory import build_engine
from zerosearch.search.simulated import SimulatedSearchEngine
from zerosearch.sft import SFTRunConfig
from zerosearch.simulator import (
    BuildConfig,
    CollectConfig,
    SearchRecord,
    build_dataset,
    collect,
    evaluate_simulators,
    label_records,
    load_engine_config,
    read_records,
    tune_simulator,
    write_report,
)
from zerosearch.simulator.aligned import hotpotqa_aligned
from zerosearch.simulator.build import load_built
from zerosearch.simulator.evaluate import REFERENCE
from zerosearch.toyworld.model import TinyModelConfig, build_tiny_llama
from zerosearch.toyworld.tokenizer import build_spaced_tokenizer

SHAPE = TinyModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)


@pytest.fixture(scope="module")
def pipeline(shared_data, tmp_path_factory):
    """Collect (train 12 / held-out 4 questions), label, build imitate, tune a tiny Llama for 40 steps."""
    root = tmp_path_factory.mktemp("hotpot")
    questions = hotpotqa_aligned(shared_data / "aligned" / "hotpotqa_distractor_dev_100.json",
                                 corpus_out=root / "corpus.jsonl", max_words=20)
    bm25 = BM25SearchEngine(root / "corpus.jsonl", progress=False)
    train = read_records(collect(questions[:12], bm25, root / "train", CollectConfig(top_k=1), progress=False))
    held_out = read_records(collect(questions[12:16], bm25, root / "test", CollectConfig(
        top_k=1, perturbations=["misspelt"]), progress=False))
    build_dataset(label_records(train, ["contains-answer"]), root / "data", BuildConfig(recipe="imitate", top_k=1))
    dataset, _ = load_built(root / "data")
    texts = [p + c for p, c in zip(dataset["prompt"], dataset["completion"], strict=True)]
    texts += [(root / "corpus.jsonl").read_text("utf-8"), *(r.query for r in held_out), "Doc 2:"]
    tokenizer = build_spaced_tokenizer(texts)
    config = SFTRunConfig(model="tiny", output_dir=root / "sim", max_steps=40, batch_size=8, learning_rate=3e-3,
                          logging_steps=10, use_cpu=True, probe_rows=16)
    result = tune_simulator(root / "data", config, model=build_tiny_llama(tokenizer, SHAPE), tokenizer=tokenizer,
                            log=lambda _: None, max_new_tokens=40)
    return root, result, held_out


def test_tuned_simulator_is_saved_with_its_engine_settings(pipeline):
    root, result, _ = pipeline
    assert result.loss_after < result.loss_before
    config = load_engine_config(root / "sim", temperature=0.0)
    assert config.mode == "finetuned" and config.include_question_and_answer is False
    assert config.use_chat_template is False and config.temperature == 0.0
    assert config.generator.model == str((root / "sim").resolve())
    assert isinstance(build_engine(config), SimulatedSearchEngine)
    from zerosearch.cli.serve import _configs  # what `zerosearch serve --config DIR/simulator.yaml` reads

    served = _configs(root / "sim" / "simulator.yaml", None, {}, {}).engine
    assert served.mode == "finetuned" and served.generator.model == config.generator.model
    assert "'imitate'" in (root / "sim" / "simulator.yaml").read_text().splitlines()[0]


def test_evaluate_tuned_simulator_beside_the_real_engine_and_write_the_report(pipeline, tmp_path):
    root, _, held_out = pipeline
    engine = build_engine(load_engine_config(root / "sim", temperature=0.0, max_new_tokens=40))
    result = evaluate_simulators(held_out, {"tiny imitate": engine}, top_k=1, log=lambda _: None)
    table = result["table"]
    assert list(table) == [REFERENCE, "tiny imitate"]
    row = table["tiny imitate"]
    for key in ("useful_hit", "noisy_leak", "format_valid", "leniency", "agreement"):
        assert 0.0 <= row[key] <= 1.0, (key, row)
    assert row["exact_queries"] == 4 and row["perturbed_queries"] == sum(r.kind != "exact" for r in held_out)
    assert row["reference_leniency"] == table[REFERENCE]["leniency"]
    assert math.isnan(table[REFERENCE]["noisy_leak"])
    assert table[REFERENCE]["format_valid"] == 1.0
    out = write_report(result, tmp_path / "report", title="tiny")
    assert (out / "report.png").stat().st_size > 1000
    assert "| tiny imitate |" in (out / "report.md").read_text() and "| reference |" in (out / "report.md").read_text()
    saved = json.loads((out / "report.json").read_text())
    assert saved["table"]["tiny imitate"]["useful_hit"] == row["useful_hit"] and "transformers" in saved["versions"]


class _Scripted:
    """A hand-made engine: fixed documents per (query, mode). Fake on purpose: it pins the arithmetic of the
    metrics, not a simulator's behaviour."""

    name = "scripted"

    def __init__(self, docs: dict) -> None:
        self.docs = docs

    def search(self, requests):
        out = []
        for r in requests:
            docs = self.docs.get((r.query, r.mode), [])
            out.append(SearchResult(r.query, [Document("", d) for d in docs], mode=r.mode, recovered=len(docs),
                                    extra={"numbered": True}))
        return out


def _record(qid: str, query: str, kind: str, docs: list[str]) -> SearchRecord:
    return SearchRecord(question_id=qid, question=f"q {qid}?", golden_answers=["paris"], query=query, kind=kind,
                        base_query=query if kind == "exact" else "a", documents=docs, policy="question")


def test_metrics_on_a_hand_made_case():
    """Two exact queries (reference hits both), two misspelt (reference hits one). The simulator hits one exact
    query, leaks on one noisy draw, hits both misspelt ones (one where the reference missed)."""
    records = [_record("1", "a", "exact", ["paris is big"]), _record("2", "b", "exact", ["in paris"]),
               _record("1", "a2", "misspelt", ["paris"]), _record("2", "b2", "misspelt", ["rome"])]
    engine = _Scripted({("a", "useful"): ["paris!"], ("b", "useful"): ["rome"], ("a", "noisy"): ["paris"],
                        ("b", "noisy"): ["london"], ("a2", "useful"): ["paris"], ("b2", "useful"): ["Paris, France"]})
    table = evaluate_simulators(records, {"s": engine}, top_k=1, log=lambda _: None)["table"]
    s, ref = table["s"], table[REFERENCE]
    assert (s["useful_hit"], s["noisy_leak"], s["useful_minus_leak"]) == (0.5, 0.5, 0.0)
    assert (s["leniency"], s["reference_leniency"], ref["leniency"]) == (1.0, 0.5, 0.5)
    assert s["hit_when_reference_misses"] == 1.0 and s["agreement"] == 0.5 and s["format_valid"] == 1.0
    assert ref["useful_hit"] == 1.0 and ref["hit_when_reference_misses"] == 0.0


def test_evaluate_and_sft_bad_input(pipeline, tmp_path):
    _, _, held_out = pipeline
    with pytest.raises(ValueError, match="another name"):
        evaluate_simulators(held_out, {REFERENCE: _Scripted({})}, top_k=1)
    with pytest.raises(ValueError, match="no exact-query records"):
        evaluate_simulators([r for r in held_out if r.kind != "exact"], {"s": _Scripted({})}, top_k=1)
    with pytest.raises(FileNotFoundError, match="not a build output"):
        tune_simulator(tmp_path, SFTRunConfig(output_dir=tmp_path / "x"))
    with pytest.raises(FileNotFoundError, match="simulator sft"):
        load_engine_config(tmp_path)
