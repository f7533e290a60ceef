"""``simulator label`` and ``build`` on real records (HotpotQA over its own paragraphs, real BM25): rules,
class balance and agreement; both recipes' prompts are exactly what the serving engine renders; balance;
noisy targets; bad input."""

from __future__ import annotations

import doctest

import pytest

from zerosearch.llm.base import Completion
from zerosearch.search import simulator_prompts as prompts
from zerosearch.search.base import SearchRequest
from zerosearch.search.bm25 import BM25SearchEngine
from zerosearch.search.factory import SimulatedEngineConfig
from zerosearch.search.simulated import SimulatedSearchEngine
from zerosearch.simulator import (
    BuildConfig,
    CollectConfig,
    build_dataset,
    build_examples,
    collect,
    label_collection,
    label_records,
    load_built,
    read_records,
)
from zerosearch.simulator import label as label_mod
from zerosearch.simulator.aligned import hotpotqa_aligned
from zerosearch.simulator.build import engine_settings


@pytest.fixture(scope="module")
def records(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("hotpot")
    questions = hotpotqa_aligned(shared_data / "aligned" / "hotpotqa_distractor_dev_100.json",
                                 corpus_out=root / "corpus.jsonl", max_words=40)
    bm25 = BM25SearchEngine(root / "corpus.jsonl", progress=False)
    return read_records(collect(questions[:16], bm25, root / "collect", CollectConfig(top_k=2), progress=False))


class _Fixed:
    """Stands in for a generator (judge or simulator) that always answers ``text``; fake on purpose: these
    tests check prompts and parsing, not a model."""

    name, tokenizer = "fixed", None

    def __init__(self, text: str) -> None:
        self.text, self.prompts = text, []

    def generate(self, prompts_, params):
        self.prompts += prompts_
        return [Completion(text=self.text) for _ in prompts_]


def test_contains_answer_labels_follow_the_documents(records):
    labelled = label_records(records, ["contains-answer"])
    for r in labelled:
        hit = any(r.golden_answers[0].lower() in d.lower() for d in r.documents)
        assert (r.labels["contains-answer"] == "useful") == hit or not hit  # whole-word match is stricter
    counts = label_mod.label_report(labelled)["balance"]["contains-answer"]
    assert counts["useful"] > 0 and counts["noisy"] > 0 and counts["useful"] + counts["noisy"] == len(records)


def test_outcome_rule_needs_an_answering_policy_and_agreement_is_reported(records):
    with pytest.raises(ValueError, match="collect with --policy llm"):
        label_records(records, ["outcome"])
    answered = [r.model_copy(update={"outcome": i % 2 == 0}) if r.kind == "exact" else r
                for i, r in enumerate(records)]
    judge = _Fixed(" Yes, it does.")
    labelled = label_records(answered, ["outcome", "contains-answer", "judge"], judge=judge)
    assert all(r.labels["outcome"] is None for r in labelled if r.kind != "exact")
    assert all(r.labels["judge"] == "useful" for r in labelled)
    assert "Do these search results contain enough information" in judge.prompts[0]
    assert records[0].documents[0] in judge.prompts[0]
    report = label_mod.label_report(labelled)
    pair = report["agreement"]["contains-answer vs outcome"]
    exact = [r for r in labelled if r.kind == "exact"]
    same = sum(r.labels["outcome"] == r.labels["contains-answer"] for r in exact)
    assert pair["records"] == len(exact) and pair["share"] == pytest.approx(same / len(exact))
    assert report["agreement"]["contains-answer vs judge"]["kappa"] == pytest.approx(0.0)


def test_label_bad_input(records, tmp_path):
    with pytest.raises(ValueError, match="unknown label rule"):
        label_records(records, ["vibes"])
    with pytest.raises(ValueError, match="needs a judge model"):
        label_records(records, ["judge"])
    with pytest.raises(ValueError, match="collection is empty"):
        label_records([], ["contains-answer"])
    assert doctest.testmod(label_mod).failed == 0
    assert label_mod.parse_judgement("perhaps") is None


def _engine(recipe: str) -> SimulatedSearchEngine:
    config = SimulatedEngineConfig(generator={"model": "unused"}, **engine_settings(recipe))
    return SimulatedSearchEngine(_Fixed(""), config)


@pytest.mark.parametrize("recipe", ["hinted", "imitate"])
def test_build_prompts_are_the_engines_prompts(records, recipe):
    """Every SFT prompt is what the serving engine renders for that query and kind (with the question and
    answer for hinted, without for imitate); prompt + completion is the prompt then format_documents."""
    labelled = label_records(records, ["contains-answer"])
    examples = build_examples(labelled, BuildConfig(recipe=recipe, top_k=2))
    engine = _engine(recipe)
    by_query = {(r.question_id, r.query): r for r in labelled}
    for e in examples:
        record = by_query[(e["question_id"], e["query"])]
        request = SearchRequest(e["query"], top_k=2, question=record.question,
                                golden_answers=tuple(record.golden_answers))
        assert e["prompt"] == engine.build_prompt(request, e["mode"])
        assert (prompts.ANSWER_LABEL in e["prompt"]) == (recipe == "hinted")
        assert e["prompt"].endswith(prompts.PRIME) and e["completion"].startswith(" ")
    modes = [e["mode"] for e in examples]
    assert modes.count("noisy") == pytest.approx(len(examples) / 2, abs=1)  # balanced


def test_hinted_uses_labels_and_imitate_uses_the_engines_results(records):
    labelled = label_records(records, ["contains-answer"])
    hinted = build_examples(labelled, BuildConfig(recipe="hinted", top_k=2, seed=1))
    by_query = {(r.question_id, r.query): r for r in labelled}
    for e in hinted:
        record = by_query[(e["question_id"], e["query"])]
        assert record.labels["contains-answer"] == e["mode"]
        assert e["completion"] == prompts.format_documents(record.documents)[len(prompts.PRIME):]
    imitate = build_examples(labelled, BuildConfig(recipe="imitate", top_k=2, noisy_share=0.25, exact_repeats=2))
    useful = [e for e in imitate if e["mode"] == "useful"]
    assert len(useful) == len(labelled) + sum(r.kind == "exact" for r in labelled)
    noisy = [e for e in imitate if e["mode"] == "noisy"]
    assert len(noisy) == round(len(useful) / 3)
    for e in noisy:  # asked with the exact query, answered with a corrupted query's results, no answer
        record = by_query[(e["question_id"], e["query"])]
        assert record.kind == "exact"
        assert not label_mod.contains_answer([e["completion"]], record.golden_answers)


def test_build_saves_a_dataset_and_refuses_bad_input(records, tmp_path):
    labelled = label_records(records, ["contains-answer"])
    build_dataset(labelled, tmp_path / "data", BuildConfig(recipe="imitate", top_k=2))
    dataset, record = load_built(tmp_path / "data")
    assert set(dataset.column_names) >= {"prompt", "completion", "mode", "source", "question_id"}
    assert record["examples"] == len(dataset) and record["engine"]["include_question_and_answer"] is False
    with pytest.raises(ValueError, match="no record carries a 'judge' label"):
        build_examples(labelled, BuildConfig(recipe="hinted", rule="judge"))
    with pytest.raises(ValueError, match="no exact-query records"):
        build_examples([r for r in labelled if r.kind != "exact"], BuildConfig(recipe="imitate"))
    with pytest.raises(ValueError, match="extra"):
        BuildConfig(recipe="imitate", k=3)
    with pytest.raises(FileNotFoundError, match="not a build output"):
        load_built(tmp_path)


def test_label_collection_writes_records_and_report(records, tmp_path):
    report = label_collection(records, ["contains-answer"], tmp_path)
    assert read_records(tmp_path)[0].labels == {"contains-answer": label_records(records[:1], ["contains-answer"])[
        0].labels["contains-answer"]}
    assert (tmp_path / label_mod.REPORT_NAME).is_file() and report["records"] == len(records)
