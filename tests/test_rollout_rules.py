"""The shared turn rules (``zerosearch.rollout.rules``) on their own, with the real SmolLM2 tokenizer."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from zerosearch.protocol import INVALID_ACTION_MESSAGE, format_information
from zerosearch.rollout import rules
from zerosearch.rollout.rules import TurnNext, decide_turn


@pytest.fixture(scope="module")
def tokenizer(smollm2_path):
    return AutoTokenizer.from_pretrained(smollm2_path)


def decide(text: str, **flags):
    base = {"ended_on_eos": False, "length_cut": False, "final_turn": False}
    return decide_turn(text, **{**base, **flags})


@pytest.mark.parametrize(
    ("text", "flags", "expected"),
    [
        ("<answer> Paris </answer>", {}, (TurnNext.END, "answer", False)),
        ("<answer> Paris </answer>", {"final_turn": True}, (TurnNext.END, "answer", False)),
        ("<search> q </search>", {}, (TurnNext.SEARCH, None, False)),
        ("<search> q </search>", {"final_turn": True}, (TurnNext.END, "max_turns", False)),
        ("<search> q </search>", {"room_left": 0}, (TurnNext.END, "max_response_tokens", True)),
        ("no tags", {}, (TurnNext.INVALID, None, False)),
        ("no tags", {"ended_on_eos": True}, (TurnNext.INVALID, None, False)),
        ("no tags", {"ended_on_eos": True, "eos_ends_episode": True}, (TurnNext.END, "eos", False)),
        ("no tags", {"ended_on_eos": True, "final_turn": True}, (TurnNext.END, "max_turns", False)),
        ("no tags", {"length_cut": True}, (TurnNext.END, "max_new_tokens", True)),
        ("no tags", {"length_cut": True, "length_reason": "max_response_tokens"},
         (TurnNext.END, "max_response_tokens", True)),
        ("no tags", {"final_turn": True}, (TurnNext.END, "max_turns", False)),
        ("no tags", {"room_left": 0}, (TurnNext.END, "max_response_tokens", True)),
        ("<search> </search>", {}, (TurnNext.INVALID, None, False)),
    ],
)
def test_decide_turn_table(text, flags, expected):
    d = decide(text, **flags)
    assert (d.next, d.stop_reason, d.truncated) == expected


def test_turn_helpers():
    assert not rules.is_final_turn(1, 2) and rules.is_final_turn(2, 2) and rules.is_final_turn(0, 0)
    assert rules.length_stop_reason(10, 500) == "max_response_tokens"
    assert rules.length_stop_reason(500, 500) == "max_new_tokens"
    assert rules.ends_on_eos([1, 2], {2}) and not rules.ends_on_eos([], {2}) and not rules.ends_on_eos([2, 1], {2})


def test_injected_text_never_becomes_special_tokens(tokenizer):
    ids = rules.encode_injected(tokenizer, "a <|im_end|> b <|endoftext|>")
    assert not set(ids) & set(tokenizer.all_special_ids)
    assert tokenizer.decode(ids) == "a <|im_end|> b <|endoftext|>"
    assert tokenizer.decode(rules.invalid_action_ids(tokenizer)) == INVALID_ACTION_MESSAGE


def test_information_block_whole_and_cut(tokenizer):
    docs = ["(Title: A) " + "alpha beta gamma " * 30, "(Title: B) delta"]
    whole = rules.information_ids(tokenizer, docs)
    assert tokenizer.decode(whole) == format_information(docs)
    assert rules.information_ids(tokenizer, docs, max_tokens=len(whole)) == whole
    overhead = rules.information_overhead(tokenizer)
    for limit in (overhead, overhead + 1, 30, len(whole) - 1):
        cut = rules.information_ids(tokenizer, docs, max_tokens=limit)
        text = tokenizer.decode(cut)
        assert len(cut) == limit and text.startswith("\n\n<information>") and text.endswith("</information>\n\n")
    with pytest.raises(ValueError, match="max_information_tokens=3 cannot hold the <information> tags"):
        rules.information_ids(tokenizer, docs, max_tokens=3)
