"""``zerosearch simulator``: the help names the five commands; collect -> label -> build through the CLI on
real data (HotpotQA over its own paragraphs, real BM25); bad input exits 2 with the reason."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from zerosearch.cli.main import app
from zerosearch.simulator import load_built, read_records
from zerosearch.simulator.aligned import hotpotqa_aligned

runner = CliRunner()


@pytest.fixture(scope="module")
def data(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    questions = hotpotqa_aligned(shared_data / "aligned" / "hotpotqa_distractor_dev_100.json",
                                 corpus_out=root / "corpus.jsonl", max_words=30)
    qa = root / "questions.jsonl"
    qa.write_text("".join(json.dumps({"id": q.id, "question": q.question, "golden_answers": list(q.golden_answers)})
                          + "\n" for q in questions[:10]))
    return root, qa


def test_help_documents_the_five_commands():
    result = runner.invoke(app, ["simulator", "--help"])
    assert result.exit_code == 0
    for command in ("collect", "label", "build", "sft", "evaluate", "pipeline"):
        assert command in result.output
    assert "simulator" in runner.invoke(app, ["--help"]).output


def test_collect_label_build_through_the_cli(data):
    root, qa = data
    out = root / "run"
    result = runner.invoke(app, ["simulator", "collect", "--questions", str(qa), "--corpus", str(root / "corpus.jsonl"),
                                 "--out", str(out / "collect"), "--top-k", "2", "--perturbation", "misspelt"])
    assert result.exit_code == 0, result.output
    records = read_records(out / "collect")
    assert {r.kind for r in records} == {"exact", "misspelt"} and len({r.question_id for r in records}) == 10
    result = runner.invoke(app, ["simulator", "label", "--records", str(out / "collect"), "--out", str(out / "label")])
    assert result.exit_code == 0, result.output
    assert '"contains-answer"' in result.output
    result = runner.invoke(app, ["simulator", "build", "--records", str(out / "label"), "--recipe", "hinted",
                                 "--top-k", "2", "--out", str(out / "data")])
    assert result.exit_code == 0, result.output
    dataset, record = load_built(out / "data")
    assert record["config"]["recipe"] == "hinted" and len(dataset) == record["examples"] > 0


@pytest.mark.parametrize(("args", "message"), [
    (["collect", "--questions", "missing.jsonl", "--corpus", "c.jsonl", "--out", "o"], "neither an existing file"),
    (["collect", "--questions", "QA", "--out", "o", "--engine", "bm25"], "needs --corpus"),
    (["collect", "--questions", "QA", "--corpus", "C", "--out", "o", "--policy", "queries-file"], "queries_file"),
    (["label", "--records", "nowhere", "--out", "o"], "simulator collect"),
    (["build", "--records", "nowhere", "--out", "o"], "simulator collect"),
    (["sft", "--data", "nowhere", "--out", "o"], "not a build output"),
    (["evaluate", "--records", "nowhere", "--out", "o", "--simulator", "bad"], "NAME=DIR"),
    (["evaluate", "--records", "nowhere", "--out", "o"], "nothing to evaluate"),
    (["evaluate", "--out", "o", "--simulator", "s=nowhere"], "--heldout-queries DIR"),
    (["evaluate", "--records", "nowhere", "--heldout-queries", "nowhere", "--out", "o"], "not both"),
    (["pipeline", "--config", "nowhere", "--out", "o"], "does not exist"),
])
def test_bad_input_exits_2_with_the_reason(data, tmp_path, args, message):
    root, qa = data
    args = [str(qa) if a == "QA" else str(root / "corpus.jsonl") if a == "C" else
            str(tmp_path / a) if a in {"o", "nowhere", "missing.jsonl"} else a for a in args]
    result = runner.invoke(app, ["simulator", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
