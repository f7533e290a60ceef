"""Protocol demonstrations on real data: HotpotQA questions with their own paragraphs pooled into a corpus,
real BM25 answering the searches, the SmolLM2 tokenizer and chat template, and the real rollout.

The rollout-equivalence test replays each demonstration through :func:`zerosearch.rollout.run_rollout`
with a policy whose turns are the demonstration's texts (a TransformersGenerator over a tiny Llama built
from a config, ``generate_ids`` overridden to emit those turns): the episode the rollout builds, with the
same engine, must have exactly the demonstration's ids and mask.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from zerosearch import protocol
from zerosearch.data.loaders import DataError, load_dataset
from zerosearch.data.types import QAExample
from zerosearch.llm.base import Completion
from zerosearch.llm.transformers_backend import TransformersGenerator
from zerosearch.rollout import RolloutConfig, rules, run_rollout
from zerosearch.search.base import SearchRequest
from zerosearch.search.bm25 import BM25SearchEngine
from zerosearch.warmstart import (
    DemoConfig,
    ProtocolTokenizer,
    build_demonstrations,
    load_aligned,
    split_by_question,
    write_corpus,
)
from zerosearch.warmstart.demos import COMBINED_THINK, LAST_SEARCH, QUOTE_MAX_CHARS, answer_sentence

ALIGNED = "aligned/hotpotqa_distractor_dev_100.json"


@pytest.fixture(scope="module")
def aligned(shared_data):
    return load_aligned(shared_data / ALIGNED)


@pytest.fixture(scope="module")
def engine(aligned, tmp_path_factory):
    corpus = write_corpus(aligned.paragraphs, tmp_path_factory.mktemp("corpus") / "corpus.jsonl")
    return BM25SearchEngine(corpus, progress=False)


@pytest.fixture(scope="module")
def tokenizer(smollm2_path):
    return AutoTokenizer.from_pretrained(smollm2_path)


@pytest.fixture(scope="module")
def demos(aligned, engine):
    split = split_by_question(aligned.examples, 0.3, seed=0)
    return build_demonstrations(split.train[:8], engine, DemoConfig(top_k_documents=3, max_searches=2))


# ------------------------------------------------------------------------------------ corpus and split
def test_aligned_file_pools_paragraphs_by_title_and_keeps_supporting_titles(aligned, tmp_path):
    assert len(aligned.examples) == 100
    titles = [p.title for p in aligned.paragraphs]
    assert len(titles) == len(set(titles)) and 900 < len(titles) <= 1000
    first = aligned.examples[0]
    assert first.golden_answers == ("yes",) and first.metadata["supporting_titles"] == ["Scott Derrickson", "Ed Wood"]
    path = write_corpus(aligned.paragraphs, tmp_path / "c.jsonl")
    row = json.loads(path.read_text().splitlines()[0])
    assert row["contents"].startswith(f'"{aligned.paragraphs[0].title}"\n')


def test_split_is_seeded_disjoint_and_readable_by_the_loaders(aligned, tmp_path):
    a, b = split_by_question(aligned.examples, 0.3, seed=0), split_by_question(aligned.examples, 0.3, seed=0)
    assert [e.id for e in a.test] == [e.id for e in b.test] and (len(a.train), len(a.test)) == (70, 30)
    assert not {e.question for e in a.train} & {e.question for e in a.test}
    assert [e.id for e in split_by_question(aligned.examples, 0.3, seed=1).test] != [e.id for e in a.test]
    paths = a.write(tmp_path)
    assert [e.question for e in load_dataset(str(paths["test"]))] == [e.question for e in a.test]


def test_repeated_question_stays_on_one_side_and_empty_sides_are_refused():
    examples = [QAExample(str(i), f"question {i % 5}?", ("x",)) for i in range(10)]  # each question twice
    split = split_by_question(examples, 0.4, seed=3)
    assert not {e.question for e in split.train} & {e.question for e in split.test}
    assert len(split.test) == 4
    with pytest.raises(DataError, match="empty test side"):
        split_by_question(examples[:1], 0.3)
    with pytest.raises(DataError, match="strictly between 0 and 1"):
        split_by_question(examples, 1.0)


# ------------------------------------------------------------------------------------ demonstrations
def test_demonstrations_search_the_question_and_show_the_engines_real_results(demos, engine):
    for demo in demos:
        assert demo.queries[0] == demo.example.question
        assert len(demo.turns) == len(demo.queries) + 1 <= 3
        for query, passages, turn in zip(demo.queries, demo.documents, demo.turns, strict=False):
            action = protocol.parse_turn(turn)
            assert (action.kind.value, action.content) == ("search", query)
            real = engine.search([SearchRequest(query, top_k=3)])[0].documents
            assert passages == [d.as_passage() for d in real]
        final = protocol.parse_turn(demo.turns[-1])
        assert (final.kind.value, final.content) == ("answer", demo.example.golden_answers[0])
    # a second search goes to a supporting page the first results missed
    hops = [d for d in demos if len(d.queries) == 2]
    assert hops and all(d.queries[1] in d.example.metadata["supporting_titles"] for d in hops)
    assert any(d.grounded for d in demos)


def test_final_think_quotes_the_real_sentence_holding_the_answer(demos):
    """The answer turn copies a real sentence of a returned passage (reading, not the searched title)."""
    quoted = 0
    for demo in demos:
        think = re.match(r"<think> (.*) </think>\n<answer>", demo.turns[-1], re.S)[1]
        gold = demo.example.golden_answers[0]
        if not think.startswith("The document"):
            assert think == COMBINED_THINK.format(answer=gold)
            continue
        quoted += 1
        quote = re.fullmatch(r'The document "(.*?)" says: "(.*)" So the answer is (.*)\.', think)
        assert quote and quote[3] == gold
        passages = [p for docs in demo.documents for p in docs if p.startswith(f"(Title: {quote[1]})")]
        assert passages and quote[2].strip("… ") in passages[0]
        assert demo.grounded
    assert quoted >= len(demos) // 2


def test_answer_sentence_finds_the_sentence_the_title_or_nothing():
    passage = "(Title: Winner (band)) Winner is a boy group. It was formed in 2013 by YG Entertainment. Debut 2014."
    formed = "It was formed in 2013 by YG Entertainment."
    assert answer_sentence(passage, "YG Entertainment") == ("Winner (band)", formed)
    assert answer_sentence(passage, "Winner") == ("Winner (band)", "Winner is a boy group.")
    assert answer_sentence("(Title: Henry J. Kaiser) Henry John Kaiser was an industrialist.", "Henry J. Kaiser") == (
        "Henry J. Kaiser", "Henry John Kaiser was an industrialist.")  # the page is the answer
    assert answer_sentence(passage, "Seoul") is None
    long = "(Title: T) " + "word " * 80 + "the answer here " + "tail " * 80 + "."
    _, cut = answer_sentence(long, "answer here")
    assert "answer here" in cut and cut.startswith("… ") and cut.endswith(" …") and len(cut) <= QUOTE_MAX_CHARS + 12


def test_last_allowed_search_says_so_and_the_doc_style_names_only_the_document(aligned, engine):
    split = split_by_question(aligned.examples, 0.3, seed=0)
    hops = [d for d in build_demonstrations(split.train[:8], engine, DemoConfig(max_searches=2)) if len(d.queries) == 2]
    assert hops and all(d.turns[1].endswith(f"<search> {d.queries[1]} </search>") and LAST_SEARCH in d.turns[1]
                        for d in hops)
    assert all(LAST_SEARCH not in d.turns[0] for d in hops)
    plain = build_demonstrations(split.train[:8], engine, DemoConfig(answer_think="doc", announce_last_search=False))
    assert not any(LAST_SEARCH in t for d in plain for t in d.turns)
    assert all("says the answer" in d.turns[-1] or "Putting the documents" in d.turns[-1] for d in plain)
    one = build_demonstrations(split.train[:2], engine, DemoConfig(max_searches=1))
    assert all(len(d.queries) == 1 and LAST_SEARCH in d.turns[0] for d in one)


def test_masked_in_ids_decode_to_the_policy_text_and_the_rest_to_prompt_and_information(demos, tokenizer):
    tok = ProtocolTokenizer(tokenizer)
    for demo in demos:
        row = tok.tokenize(demo)
        ids, mask = row["input_ids"], row["completion_mask"]
        policy = [t for t, m in zip(ids, mask, strict=True) if m]
        assert tokenizer.decode(policy) == "".join(demo.turns)
        injected = [t for t, m in zip(ids, mask, strict=True) if not m]
        blocks = "".join(protocol.format_information(d) for d in demo.documents)
        assert tokenizer.decode(injected) == tokenizer.decode(tok.prompt_ids(demo.example.question)) + blocks
        assert mask[: len(tok.prompt_ids(demo.example.question))] == [0] * len(tok.prompt_ids(demo.example.question))


def test_reading_check_finds_the_answer_after_the_policys_answer_tag_with_a_subword_tokenizer(demos, tokenizer):
    """The teacher-forced reading check (``zerosearch.warmstart.reading``) is general: on SmolLM2's subword
    rows, whose chat prompt also mentions ``<answer>``, the checked token is the gold answer's first token,
    right after the answer tag the policy wrote."""
    from zerosearch.warmstart.reading import answer_prefix, blank_ids, tag_ids

    tok = ProtocolTokenizer(tokenizer)
    answer = tag_ids(tokenizer, protocol.ANSWER_OPEN)
    rows = [tok.tokenize(demo) for demo in demos]
    blank = blank_ids(tokenizer, rows)  # SmolLM2 writes " 1999" as a lone space, then digits
    for demo, row in zip(demos, rows, strict=True):
        prefix, target = answer_prefix(row["input_ids"], answer, row["completion_mask"], blank)
        gold = demo.example.golden_answers[0]
        assert gold.startswith(tokenizer.decode([target]).strip()) and tokenizer.decode([target]).strip()
        assert tokenizer.decode(prefix).rstrip().endswith(protocol.ANSWER_OPEN)
        assert len(prefix) > len(tok.prompt_ids(demo.example.question))  # not the instruction's mention


class ReplayPolicy(TransformersGenerator):
    """The real generator whose turns are the demonstrations' texts (round r -> turn r of the row's demo)."""

    def __init__(self, model, tokenizer, demos, prompt_ids) -> None:
        super().__init__(model, tokenizer, batch_size=8)
        self.by_prompt = {tuple(p): d for p, d in zip(prompt_ids, demos, strict=True)}
        self.round = 0

    def generate_ids(self, prompt_ids, params):
        out = []
        for context in prompt_ids:
            demo = next(d for p, d in self.by_prompt.items() if tuple(context[: len(p)]) == p)
            ids = self.tokenizer(demo.turns[self.round], add_special_tokens=False)["input_ids"]
            out.append(Completion(text=demo.turns[self.round], token_ids=ids, logprobs=[0.0] * len(ids)))
        self.round += 1
        return out


def test_demonstration_ids_and_mask_are_what_the_rollout_builds_for_the_same_episode(demos, tokenizer, engine):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=2, intermediate_size=64, vocab_size=len(tokenizer)))
    tok = ProtocolTokenizer(tokenizer)
    rows = [tok.tokenize(d) for d in demos]
    prompts = [tok.prompt_ids(d.example.question) for d in demos]
    policy = ReplayPolicy(model, tokenizer, demos, prompts)
    config = RolloutConfig(max_turns=2, top_k_documents=3, n_samples=1, temperature=0.0, reuse_kv_cache=False)
    episodes = run_rollout(policy, engine, [d.example for d in demos], config, seed=0)
    for demo, row, episode in zip(demos, rows, episodes, strict=True):
        assert episode.stop_reason == "answer" and episode.queries == demo.queries
        assert episode.prompt_ids + episode.response_ids == row["input_ids"]
        assert [0] * len(episode.prompt_ids) + episode.response_mask == row["completion_mask"]


def test_information_blocks_are_cut_like_the_rollouts(demos, tokenizer):
    full, cut = ProtocolTokenizer(tokenizer), ProtocolTokenizer(tokenizer, max_information_tokens=40)
    passages = demos[0].documents[0]
    whole, short = full.information_ids(passages), cut.information_ids(passages)
    tail = len(rules.encode_injected(tokenizer, rules.INFORMATION_SUFFIX))
    # the rollout's rule: cut inside the documents, the closing tag always whole
    assert len(whole) > 40 and len(short) == 40
    assert short[:-tail] == whole[: 40 - tail] and short[-tail:] == whole[-tail:]
    assert tokenizer.decode(short).rstrip().endswith("</information>")
    assert sum(cut.tokenize(demos[0])["completion_mask"]) == sum(full.tokenize(demos[0])["completion_mask"])


def test_bad_aligned_files_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_aligned(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps([{"question": "q?", "answer": "a"}]))
    with pytest.raises(DataError, match=r"missing field\(s\) \['context'\]"):
        load_aligned(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="no training questions"):
        build_demonstrations([], engine=None)


# ------------------------------------------------------------------------------------ config and questions
def test_format_only_questions_need_an_engine_and_are_all_trained_on(tmp_path):
    from pathlib import Path

    from zerosearch.warmstart import ConfigError, parse_warmstart_config
    from zerosearch.warmstart.run import training_questions

    fixtures = Path(__file__).parent / "fixtures"
    base = {"output_dir": str(tmp_path), "sft": {"max_steps": 1},
            "data": {"questions": [str(fixtures / "qa" / "nq_test_40.jsonl")], "questions_limit": 3}}
    with pytest.raises(ConfigError, match="engine is not set"):
        parse_warmstart_config(base)
    engine = {"kind": "bm25", "corpus": str(fixtures / "wiki18_sample_200.jsonl")}
    config = parse_warmstart_config({**base, "engine": engine})
    assert config.sft.output_dir == tmp_path / "model"
    train, test = training_questions(config)
    assert len(train) == 3 and test == []
    with pytest.raises(ConfigError, match=r"data: .*no training questions"):
        parse_warmstart_config({"output_dir": str(tmp_path), "sft": {}, "data": {}})
    with pytest.raises(ConfigError, match="engine"):
        parse_warmstart_config({**base, "engine": {"kind": "nosuch"}})


def test_docstring_examples_of_the_demonstration_module():
    import doctest

    import zerosearch.warmstart.demos as demos_module

    result = doctest.testmod(demos_module)
    assert result.attempted > 0 and result.failed == 0
