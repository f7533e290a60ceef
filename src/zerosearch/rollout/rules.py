"""The turn rules of a search-agent episode, in token ids, shared by every rollout driver.

``zerosearch.rollout.machine`` (the single-machine trainer's rollout) and the verl agent loop both apply
these functions, so max turns, length limits, invalid actions and ``<information>`` blocks follow ONE set
of rules. Everything here is pure: it takes text, ids, flags and a Hugging Face tokenizer, never a policy,
an engine or a model, and holds no state.

The stable API (names and signatures are kept; add keyword arguments with defaults only):

``is_final_turn(turn_index, max_turns) -> bool``
    Turn ``turn_index`` (0-based count of policy generations so far) is the last one: after ``max_turns``
    action rounds the policy gets one more generation whose search is never executed.

``length_stop_reason(turn_limit, max_new_tokens) -> str``
    The stop reason of a turn cut by a token limit: ``"max_response_tokens"`` when the whole-response
    budget, not the per-turn limit, bounded the turn; ``"max_new_tokens"`` otherwise.

``ends_on_eos(ids, eos_ids) -> bool``
    The turn's last generated id is one of ``eos_ids``.

``decide_turn(text, *, ended_on_eos, length_cut, final_turn, room_left=None, length_reason="max_new_tokens",
eos_ends_episode=False) -> TurnDecision``
    What a finished policy turn means. ``text`` is the turn's decoded text (special tokens skipped);
    ``length_cut``: a token limit stopped the turn (finish reason "length", or the driver trimmed its ids);
    ``room_left``: tokens left in the response budget after the turn (None: no budget). The rules, first
    match wins:

    1. a complete ``<answer> … </answer>`` ends the episode (stop reason "answer");
    2. a search on a non-final turn is executed (``TurnNext.SEARCH``) unless the response budget is spent;
    3. a turn cut by a length limit without a complete action ends the episode, ``truncated=True``;
    4. a turn that is neither search nor answer and ended on EOS: with ``eos_ends_episode`` the episode
       ends ("eos"); by default (the reference's behaviour) it is an invalid action like any other;
    5. the final turn ends the episode ("max_turns") whatever it did;
    6. anything else is an invalid action: the driver injects :func:`invalid_action_ids` (mask 0) and the
       policy gets another turn (``TurnNext.INVALID``), unless the response budget is spent.

    "Response budget spent" (``room_left <= 0``) ends the episode with "max_response_tokens", truncated.

``encode_injected(tokenizer, text) -> list[int]``
    Ids of text the driver injects (information blocks, the invalid-action message): no BOS/EOS added and
    no special-token parsing, so a document that contains the literal string ``<|im_end|>`` stays text
    and cannot end the policy's turn or fake a chat role.

``invalid_action_ids(tokenizer) -> list[int]``
    ``encode_injected`` of :data:`zerosearch.protocol.INVALID_ACTION_MESSAGE`.

``information_ids(tokenizer, documents, max_tokens=None) -> list[int]``
    The ids of :func:`zerosearch.protocol.format_information` of ``documents``. With ``max_tokens``, a
    longer block is cut inside its documents: the opening ``\\n\\n<information>`` and the closing
    ``</information>\\n\\n`` are always whole, so the policy always sees the block end. A ``max_tokens``
    smaller than the two tags is an error. The three parts are encoded separately, so a cut block and a
    whole one share the same tag ids.

``information_overhead(tokenizer) -> int``
    Tokens of the two tags: the smallest useful ``max_tokens``.

``prompt_ids(tokenizer, prompt_text, *, chat_template_applied) -> list[int]``
    Ids of a rendered prompt (``protocol.render_prompt``): a chat template writes its own special tokens
    (BOS included) as text, so they are parsed and none are added; a raw prompt gets them added.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from zerosearch.protocol import (
    INFORMATION_CLOSE,
    INFORMATION_OPEN,
    INVALID_ACTION_MESSAGE,
    Action,
    ActionKind,
    format_information,
    parse_turn,
)

#: Text before the documents and after them in every information block (see ``format_information``).
INFORMATION_PREFIX = f"\n\n{INFORMATION_OPEN}"
INFORMATION_SUFFIX = f"{INFORMATION_CLOSE}\n\n"


class TurnNext(str, Enum):
    """What the driver does after a policy turn."""

    SEARCH = "search"  # send ``action.content`` to the engine, inject the information block, continue
    INVALID = "invalid"  # inject the invalid-action message, continue
    END = "end"  # the episode is over (``stop_reason`` says why)


@dataclass(frozen=True)
class TurnDecision:
    """The verdict on one policy turn: its parsed action, what happens next and, when it ends, why."""

    action: Action
    next: TurnNext
    stop_reason: str | None = None
    truncated: bool = False


def is_final_turn(turn_index: int, max_turns: int) -> bool:
    """True for the generation after ``max_turns`` action rounds (0-based ``turn_index``)."""
    return turn_index >= max_turns


def length_stop_reason(turn_limit: int, max_new_tokens: int) -> str:
    """Which limit a length-cut turn hit: the response budget when it was tighter than the per-turn one."""
    return "max_response_tokens" if turn_limit < max_new_tokens else "max_new_tokens"


def ends_on_eos(ids: Sequence[int], eos_ids: Collection[int]) -> bool:
    """The turn's last id is an end-of-sequence id."""
    return bool(ids) and ids[-1] in eos_ids


def decide_turn(
    text: str,
    *,
    ended_on_eos: bool,
    length_cut: bool,
    final_turn: bool,
    room_left: int | None = None,
    length_reason: str = "max_new_tokens",
    eos_ends_episode: bool = False,
) -> TurnDecision:
    """Apply the turn rules (module docstring) to one finished policy turn.

    >>> decide_turn("<answer> Paris </answer>", ended_on_eos=False, length_cut=False, final_turn=False).stop_reason
    'answer'
    >>> decide_turn("I give up.", ended_on_eos=True, length_cut=False, final_turn=False).next.value
    'invalid'
    """
    action = parse_turn(text)
    spent = room_left is not None and room_left <= 0
    searches = action.kind is ActionKind.SEARCH and not final_turn
    in_order: tuple[tuple[bool, TurnNext, str | None, bool], ...] = (  # (applies, next, stop reason, truncated)
        (action.kind is ActionKind.ANSWER, TurnNext.END, "answer", False),
        (searches and spent, TurnNext.END, "max_response_tokens", True),
        (searches, TurnNext.SEARCH, None, False),
        (length_cut, TurnNext.END, length_reason, True),
        (ended_on_eos and eos_ends_episode, TurnNext.END, "eos", False),
        (final_turn, TurnNext.END, "max_turns", False),
        (spent, TurnNext.END, "max_response_tokens", True),
    )
    for applies, next_step, reason, truncated in in_order:
        if applies:
            return TurnDecision(action, next_step, reason, truncated)
    return TurnDecision(action, TurnNext.INVALID)


def encode_injected(tokenizer: Any, text: str) -> list[int]:
    """Ids of injected text: no special tokens added, none parsed from the text."""
    return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])


def invalid_action_ids(tokenizer: Any) -> list[int]:
    """Ids of the invalid-action message."""
    return encode_injected(tokenizer, INVALID_ACTION_MESSAGE)


def information_overhead(tokenizer: Any) -> int:
    """Tokens taken by the block's opening and closing tags (with their blank lines)."""
    return len(encode_injected(tokenizer, INFORMATION_PREFIX)) + len(encode_injected(tokenizer, INFORMATION_SUFFIX))


def information_ids(tokenizer: Any, documents: list[str], max_tokens: int | None = None) -> list[int]:
    """Ids of the information block for ``documents``, cut inside the documents to ``max_tokens``."""
    block = format_information(documents)
    body = block[len(INFORMATION_PREFIX) : -len(INFORMATION_SUFFIX)]
    head = encode_injected(tokenizer, INFORMATION_PREFIX)
    tail = encode_injected(tokenizer, INFORMATION_SUFFIX)
    body_ids = encode_injected(tokenizer, body)
    if max_tokens is not None:
        room = max_tokens - len(head) - len(tail)
        if room < 0:
            raise ValueError(
                f"max_information_tokens={max_tokens} cannot hold the <information> tags "
                f"({len(head) + len(tail)} tokens with this tokenizer); raise it (Search-R1 uses 500)"
            )
        body_ids = body_ids[:room]
    return head + body_ids + tail


def prompt_ids(tokenizer: Any, prompt_text: str, *, chat_template_applied: bool) -> list[int]:
    """Ids of a rendered prompt, tokenised once (every driver and the warm-start's demonstrations agree)."""
    return list(tokenizer(prompt_text, add_special_tokens=not chat_template_applied)["input_ids"])
