"""``simulator collect`` and ``perturb`` on real data: HotpotQA questions over their own pooled Wikipedia
paragraphs with real BM25 (``../shared/data/aligned``); an interrupted and resumed collection; bad input."""

from __future__ import annotations

import doctest
import json
import random

import pytest

from zerosearch.data.types import QAExample
from zerosearch.search.base import SearchRequest
from zerosearch.search.bm25 import BM25SearchEngine
from zerosearch.simulator import CollectConfig, collect, read_records
from zerosearch.simulator import perturb as perturb_mod
from zerosearch.simulator.aligned import hotpotqa_aligned
from zerosearch.simulator.collect import CONFIG_NAME, RECORDS_NAME


@pytest.fixture(scope="module")
def hotpot(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("hotpot")
    questions = hotpotqa_aligned(shared_data / "aligned" / "hotpotqa_distractor_dev_100.json",
                                 corpus_out=root / "corpus.jsonl", max_words=40)
    return questions[:9], BM25SearchEngine(root / "corpus.jsonl", progress=False)


class Counting:
    """Real BM25, counting the queries it was sent (to prove a resumed run skips finished questions)."""

    name = "bm25"

    def __init__(self, engine) -> None:
        self.engine, self.queries = engine, []

    def search(self, requests):
        self.queries += [r.query for r in requests]
        return self.engine.search(requests)


def test_records_hold_bm25_results_for_exact_and_perturbed_queries(hotpot, tmp_path):
    questions, bm25 = hotpot
    records = read_records(collect(questions, bm25, tmp_path, CollectConfig(top_k=2), progress=False))
    exact = [r for r in records if r.kind == "exact"]
    assert [r.query for r in exact] == [q.question for q in questions]  # the scripted policy
    assert {r.kind for r in records} == {"exact", "misspelt", "other_entity", "dropped_term"}
    for record in records[::3]:
        docs = [d.as_passage() for d in bm25.search([SearchRequest(record.query, top_k=2)])[0].documents]
        assert record.documents == docs and len(docs) == 2
        assert record.outcome is None and record.policy == "question"
    for record in records:
        if record.kind != "exact":
            assert record.query != record.base_query and record.base_query in {q.question for q in questions}
    assert json.loads((tmp_path / CONFIG_NAME).read_text())["config"]["top_k"] == 2


def test_interrupted_collection_resumes_where_it_stopped(hotpot, tmp_path):
    """The run dies in its third batch (and leaves a half-written line); the rerun searches only the
    questions not yet written and ends with exactly the records of an uninterrupted run."""
    questions, bm25 = hotpot
    config = CollectConfig(top_k=2, batch_size=3, seed=5)
    calls = []

    def dying_policy(batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return [[(q.question, None)] for q in batch]

    with pytest.raises(KeyboardInterrupt):
        collect(questions, bm25, tmp_path / "run", config, progress=False, policy=dying_policy)
    path = tmp_path / "run" / RECORDS_NAME
    assert len(path.read_text().splitlines()) == 6
    with path.open("a") as fh:
        fh.write('{"question_id": "half')  # a crash in the middle of a write
    counting = Counting(bm25)
    collect(questions, counting, tmp_path / "run", config, progress=False)
    resumed = read_records(path)
    assert set(counting.queries) <= {r.query for r in resumed if r.question_id in {q.id for q in questions[6:]}}
    assert questions[0].question not in counting.queries
    whole = read_records(collect(questions, bm25, tmp_path / "whole", config, progress=False))
    assert [r.model_dump(exclude={"policy"}) for r in resumed] == [r.model_dump(exclude={"policy"}) for r in whole]
    assert {r.policy for r in resumed[:6]} == {"custom"} and {r.policy for r in resumed[-3:]} == {"question"}


def test_queries_file_policy_and_concurrency(hotpot, tmp_path):
    questions, bm25 = hotpot
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"question_id": q.id, "query": q.question.split("?")[0][:40]}) + "\n"
                               for q in questions))
    config = CollectConfig(policy="queries-file", queries_file=queries, perturbations=[], batch_size=2, concurrency=3)
    records = read_records(collect(questions, bm25, tmp_path / "out", config, progress=False))
    assert [r.query for r in records] == [q.question.split("?")[0][:40] for q in questions]


def test_bad_input_is_refused_with_the_reason(hotpot, tmp_path):
    questions, bm25 = hotpot
    with pytest.raises(ValueError, match="needs queries_file"):
        CollectConfig(policy="queries-file")
    with pytest.raises(ValueError, match="needs policy_model"):
        CollectConfig(policy="llm")
    collect(questions[:2], bm25, tmp_path, CollectConfig(top_k=2), progress=False)
    with pytest.raises(ValueError, match="another config"):
        collect(questions[:2], bm25, tmp_path, CollectConfig(top_k=3), progress=False)
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question_id": "x"}\n')
    with pytest.raises(ValueError, match="'question_id' and 'query'"):
        collect(questions[:1], bm25, tmp_path / "b", CollectConfig(policy="queries-file", queries_file=bad))
    with pytest.raises(ValueError, match="unique id"):
        collect([questions[0], questions[0]], bm25, tmp_path / "c", progress=False)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / RECORDS_NAME).write_text("not json\n{}\n")
    with pytest.raises(ValueError, match="not a collect record line"):
        read_records(tmp_path / "d")


def test_perturbations_change_the_query_as_named():
    rng = random.Random(0)
    query = "Which city was Kovani Tesu born in?"
    typo = perturb_mod.misspell(query, rng)
    changed = [(a, b) for a, b in zip(query.split(), typo.split(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0] in {"Kovani", "Tesu"}
    assert sum(x != y for x, y in zip(*changed[0], strict=True)) == 1
    assert perturb_mod.other_entity(query, rng, ["Bavoru Lim"]) == "Which city was Bavoru Lim born in?"
    assert perturb_mod.other_entity("no names here", rng, ["X"]) is None
    assert "Kovani" not in perturb_mod.drop_key_term(query, rng)
    assert perturb_mod.misspell("a", rng) is None
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb_mod.perturb(query, "reversed", rng)  # type: ignore[arg-type]
    assert doctest.testmod(perturb_mod).failed == 0


def test_an_example_without_names_gets_no_other_entity(hotpot, tmp_path):
    _, bm25 = hotpot
    q = QAExample("lower", "what is the tallest mountain on earth", ("everest",))
    records = read_records(collect([q], bm25, tmp_path, CollectConfig(top_k=1), progress=False))
    assert "other_entity" not in {r.kind for r in records}


def test_llm_policy_queries_and_outcomes_come_from_the_rollout(hotpot, tmp_path):
    """A tiny Llama (word-level tokenizer) is first taught, with ``zerosearch.sft``, to search "Scott
    Derrickson" and, once information is back, to answer the first question's gold answer. Collected with
    ``policy: llm`` through the real rollout, its query and each trajectory's exact-match outcome land in
    the records (true only for the first question), and the ``outcome`` rule can label them."""
    from zerosearch import protocol
    from zerosearch.rollout.config import RolloutConfig
    from zerosearch.sft import SFTRunConfig, run_sft
    from zerosearch.simulator import label_records
    from zerosearch.toyworld.model import TinyModelConfig, build_tiny_llama
    from zerosearch.toyworld.tokenizer import build_tokenizer

    questions, bm25 = hotpot
    questions = questions[:3]
    answer = questions[0].golden_answers[0]
    search = f" {protocol.SEARCH_OPEN} Scott Derrickson {protocol.SEARCH_CLOSE}"
    info = protocol.format_information([d.as_passage() for d in bm25.search([SearchRequest("Scott Derrickson", 1)])[
        0].documents])
    prompts = [protocol.render_prompt(q.question, None, protocol.load_template(), False) for q in questions]
    pairs = [{"prompt": p, "completion": search} for p in prompts]
    pairs += [{"prompt": p + search + info, "completion": f" {protocol.ANSWER_OPEN} {answer} {protocol.ANSWER_CLOSE}"}
              for p in prompts]
    tokenizer = build_tokenizer([p["prompt"] + p["completion"] for p in pairs])
    model = build_tiny_llama(tokenizer, TinyModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                        intermediate_size=128))
    run_sft(SFTRunConfig(output_dir=tmp_path / "policy", max_steps=80, batch_size=6, learning_rate=3e-3,
                         probe_rows=0, use_cpu=True), pairs * 4, model=model, tokenizer=tokenizer, log=lambda _: None)
    config = CollectConfig(policy="llm", policy_model={"model": str(tmp_path / "policy"), "device": "cpu"}, top_k=1,
                           perturbations=["misspelt"], rollout=RolloutConfig(n_samples=1, max_turns=1,
                                                                             max_new_tokens=12, temperature=0.0))
    records = read_records(collect(questions, bm25, tmp_path / "run", config, progress=False))
    exact = [r for r in records if r.kind == "exact"]
    assert [r.query for r in exact] == ["Scott Derrickson"] * 3 and {r.policy for r in records} == {"llm"}
    assert [r.outcome for r in exact] == [True, False, False]
    assert all(r.outcome is None for r in records if r.kind == "misspelt")
    labels = [r.labels["outcome"] for r in label_records(exact, ["outcome"])]
    assert labels == ["useful", "noisy", "noisy"]
