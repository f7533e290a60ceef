"""``zerosearch simulator pipeline``: every stage on real HotpotQA questions and their own paragraphs (BM25),
a tiny Llama with SmolLM2's real tokenizer as the simulator; the split of held-out queries, contrast rows,
per-epoch checkpoints and curve, the two-split report, resuming, and bad input. The tiny model's documents
are noise: the test checks the pipeline's bookkeeping, not a simulator's quality (the benchmark does that)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from train_tiny import save_tiny_llama
from typer.testing import CliRunner

from zerosearch.cli.main import app
from zerosearch.data.types import QAExample
from zerosearch.demo.stages import write_questions
from zerosearch.simulator.build import BuildConfig, build_examples
from zerosearch.simulator.collect import SearchRecord
from zerosearch.simulator.label import contains_answer, label_records
from zerosearch.simulator.pipeline import PipelineConfig, load_pipeline_config, run_pipeline
from zerosearch.simulator.queries import query_forms
from zerosearch.simulator.splits import split_queries
from zerosearch.warmstart.aligned import load_aligned, write_corpus

# The module's first test runs every stage (SFT, curve, two-split evaluation) in its fixture, which took over
# 300 s on a 2-core machine busy with training; the suite's default timeout would cut it there.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def world(shared_data, smollm2_path, tmp_path_factory):
    """10 training and 4 held-out HotpotQA questions, a 20-word-snippet corpus, a tiny Llama."""
    root = tmp_path_factory.mktemp("pipeline")
    aligned = load_aligned(shared_data / "aligned" / "hotpotqa_distractor_dev_100.json")
    examples = [e for e in aligned.examples if e.golden_answers[0].lower() not in {"yes", "no"}]
    snippets = [dataclasses.replace(p, text=" ".join(p.text.split()[:20])) for p in aligned.paragraphs]
    write_corpus(snippets, root / "corpus.jsonl")
    write_questions(examples[:10], root / "train.jsonl")
    write_questions(examples[10:14], root / "test.jsonl")
    model = save_tiny_llama(root / "tiny", smollm2_path)
    return root, model


def _config(root, model, **changes) -> PipelineConfig:
    fields = {
        "data": {"train": root / "train.jsonl", "heldout": root / "test.jsonl", "corpus": root / "corpus.jsonl"},
        "top_k": 2, "heldout_query_share": 0.3,
        "build": {"recipe": "hinted", "top_k": 2, "contrast_share": 0.5},
        "sft": {"model": str(model), "epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "mixed_precision": "no",
                "max_length": 256, "max_new_tokens": 24},
        "evaluate": {"curve_every": 0.5, "curve_queries": 2, "temperature": 0.0, "batch_size": 32},
    }
    fields.update(changes)
    return PipelineConfig.model_validate(fields)


@pytest.fixture(scope="module")
def ran(world):
    root, model = world
    out = root / "run"
    evaluation = run_pipeline(_config(root, model), out, log=lambda _: None)
    return root, model, out, evaluation


def test_held_out_queries_belong_to_training_questions_and_never_reach_sft(ran):
    _, _, out, _ = ran
    train = [json.loads(line) for line in (out / "splits" / "train" / "records.jsonl").read_text().splitlines()]
    held_path = out / "splits" / "heldout_queries" / "records.jsonl"
    held = [json.loads(line) for line in held_path.read_text().splitlines()]
    train_pairs = {(r["question_id"], r["base_query"]) for g in train for r in g["records"]}
    held_pairs = {(r["question_id"], r["base_query"]) for g in held for r in g["records"]}
    assert held_pairs and not train_pairs & held_pairs
    assert {q for q, _ in held_pairs} <= {q for q, _ in train_pairs}  # same questions, other queries
    sft_queries = {(row["question_id"], row["query"]) for row in _dataset_rows(out)}
    held_queries = {(r["question_id"], r["query"]) for g in held for r in g["records"]}
    assert not sft_queries & held_queries
    test_ids = {json.loads(line)["id"] for line in (ran[0] / "test.jsonl").read_text().splitlines()}
    questions = [json.loads(line) for line in
                 (out / "splits" / "heldout_questions" / "records.jsonl").read_text().splitlines()]
    assert {g["question_id"] for g in questions} == test_ids


def _dataset_rows(out):
    from datasets import load_from_disk

    return list(load_from_disk(str(out / "data" / "dataset")))


def test_a_checkpoint_per_half_epoch_each_measured_into_the_curve(ran):
    _, _, out, evaluation = ran
    checkpoints = json.loads((out / "checkpoints.json").read_text())["checkpoints"]
    assert [c["epoch"] for c in checkpoints] == [0.5, 1.0]
    assert all((out / "checkpoints" / f"epoch-{c['epoch']:g}" / "config.json").is_file() for c in checkpoints)
    assert [p["epoch"] for p in evaluation["curve"]] == [0.5, 1.0]
    assert all(0.0 <= p["format_valid"] <= 1.0 and p["heldout_loss"] > 0 for p in evaluation["curve"])


def test_the_report_names_each_split_and_holds_the_curve(ran):
    _, _, out, _ = ran
    report = json.loads((out / "report" / "report.json").read_text())
    assert set(report["splits"]) == {"heldout_queries", "heldout_questions"}
    for split in report["splits"].values():
        assert set(split["table"]) == {"reference", "tuned"} and split["description"]
    text = (out / "report" / "report.md").read_text()
    assert "## heldout_queries" in text and "## heldout_questions" in text and "## Quality per epoch" in text
    assert "the split RL asks about" in text or "decides whether simulated training works" in text
    for png in ("curve.png", "report-heldout_queries.png", "report-heldout_questions.png"):
        assert (out / "report" / png).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_cli_writes_a_table_per_split(ran, tmp_path):
    _, _, out, _ = ran
    result = CliRunner().invoke(app, [
        "simulator", "evaluate", "--heldout-queries", str(out / "splits" / "heldout_queries"),
        "--heldout-questions", str(out / "splits" / "heldout_questions"), "--simulator", f"tuned={out / 'model'}",
        "--top-k", "2", "--temperature", "0", "--max-new-tokens", "24", "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert result.output.count("| tuned |") == 2 and "## heldout_questions" in result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["splits"]["heldout_queries"]["table"]["reference"]["queries"] == sum(
        len(json.loads(line)["records"]) for line in
        (out / "splits" / "heldout_queries" / "records.jsonl").read_text().splitlines())


def test_a_rerun_resumes_and_another_config_is_refused(ran):
    root, model, out, _ = ran
    before = (out / "checkpoints.json").stat().st_mtime_ns
    run_pipeline(_config(root, model), out, log=lambda _: None)
    assert (out / "checkpoints.json").stat().st_mtime_ns == before  # nothing retrained
    with pytest.raises(ValueError, match="another config"):
        run_pipeline(_config(root, model, seed=1), out, log=lambda _: None)


def test_the_cli_reports_a_bad_config_key(world, tmp_path):
    root, _ = world
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"data: {{train: {root / 'train.jsonl'}, corpus: {root / 'corpus.jsonl'}}}\nsft: {{epoch: 2}}\n")
    result = CliRunner().invoke(app, ["simulator", "pipeline", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "sft.epoch" in result.output


def test_the_shipped_config_loads():
    config = load_pipeline_config("configs/simulator-smollm2-hotpotqa.yaml", {"sft.epochs": 4})
    assert config.sft.epochs == 4 and config.build.recipe == "hinted" and config.policy.samples == 1


# ---- the pieces on hand-made records ---------------------------------------------------------------------
def _record(qid: str, query: str, base: str, kind: str, documents: list[str]) -> SearchRecord:
    return SearchRecord(question_id=qid, question=f"question {qid}", golden_answers=["Paris"], query=query,
                        kind=kind, base_query=base, documents=documents, policy="custom")


def test_split_keeps_perturbations_with_their_query_and_a_query_per_question_in_training():
    records = []
    for q in range(20):
        for b in range(4):
            base = f"q{q} form {b}"
            records += [_record(str(q), base, base, "exact", ["Paris"]),
                        _record(str(q), base + " typo", base, "misspelt", ["Rome"])]
    train, held = split_queries(records, 0.5, seed=0)
    assert split_queries(records, 0.5, seed=0) == (train, held)  # deterministic
    held_bases = {(r.question_id, r.base_query) for r in held}
    assert not held_bases & {(r.question_id, r.base_query) for r in train}
    assert all(sum(1 for r in held if r.question_id == str(q) and r.kind == "misspelt")
               == sum(1 for r in held if r.question_id == str(q) and r.kind == "exact") for q in range(20))
    assert {r.question_id for r in train} == {str(q) for q in range(20)}
    assert 0.3 < len(held) / len(records) < 0.7
    with pytest.raises(ValueError, match="heldout_share"):
        split_queries(records, 1.0, seed=0)


def test_contrast_rows_ask_for_noise_on_queries_the_engine_answered():
    records = []
    for q in range(6):
        records += [_record(str(q), f"good {q}", f"good {q}", "exact", ["Paris is here"]),
                    _record(str(q), f"bad {q}", f"good {q}", "misspelt", ["Rome is there"]),
                    _record(str(q), f"other {q}", f"other {q}", "exact", ["Lyon"])]
    labelled = label_records(records, ["contains-answer"])
    examples = build_examples(labelled, BuildConfig(recipe="hinted", top_k=1, contrast_share=1.0))
    contrast = [e for e in examples if e["source"] == "contrast"]
    assert contrast and all(e["mode"] == "noisy" and e["query"].startswith("good") for e in contrast)
    assert not any(contains_answer([e["completion"]], ["Paris"]) for e in contrast)
    plain = build_examples(labelled, BuildConfig(recipe="hinted", top_k=1))
    assert not [e for e in plain if e["source"] == "contrast"]


def test_query_forms_reject_an_unknown_form():
    with pytest.raises(ValueError, match="unknown query form"):
        query_forms(QAExample("1", "q?", ("a",)), ["question", "subject"])  # type: ignore[list-item]
