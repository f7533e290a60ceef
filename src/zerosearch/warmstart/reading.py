"""Teacher-forced measurements of a warm-started policy: does it read the answer, does it search first?

Both work on token rows (``input_ids`` + ``completion_mask``, as :class:`~zerosearch.warmstart.tokens.
ProtocolTokenizer` or the toy world's demonstrations make them) and the protocol's tags, so every world's
warm-start uses them:

* :func:`reading_accuracy`: on *correct* demonstrations about questions the warm-start never trained on,
  feed the demonstrated searches and results in and ask whether the model's top next token after the final
  ``<answer>`` is the demonstrated answer's first token, per question kind. The answer is in the last
  ``<information>`` block and nowhere in the weights, so this isolates *reading* (chance: one over the
  number of candidates). It is cheap (one forward pass per row) and moves long before sampled EM does.
* :func:`action_probability`: the probability that the policy's first turn opens with a tag
  (``<search>``), the share of episodes in which a freshly warm-started policy searches at all.

    rows = [{"input_ids": [...], "completion_mask": [...]}, ...]       # correct episodes, held out
    reading_accuracy(model, tokenizer, rows, kinds)   # {'born_in': 1.0, 'works_for': 0.95, ...}
    action_probability(model, tokenizer, prompt_rows, protocol.SEARCH_OPEN)   # e.g. 0.45
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from zerosearch import protocol

Row = dict[str, list[int]]


@dataclass
class ReadingCheck:
    """Correct demonstrations about held-out questions (token rows), their kinds, and when to stop."""

    rows: Sequence[Row]
    kinds: Sequence[str]
    every: int = 250
    target: float = 0.9


def tag_ids(tokenizer: Any, tag: str) -> list[int]:
    """The ids of ``tag`` as it appears inside an episode (no special tokens)."""
    ids = list(tokenizer(tag, add_special_tokens=False)["input_ids"])
    if not ids:
        raise ValueError(f"the tokenizer encodes {tag!r} as no tokens")
    return ids


def answer_prefix(
    ids: Sequence[int], answer_ids: Sequence[int], mask: Sequence[int] | None = None,
    skip_ids: Collection[int] = frozenset(),
) -> tuple[list[int], int]:
    """Ids up to and including the last ``answer_ids`` run written by the policy (``mask`` 1 on it and on the
    id after it: the instruction's own mention of ``<answer>`` does not count), and the id after it; ids in
    ``skip_ids`` (a subword tokenizer's lone space before digits) join the prefix instead of being checked.

    >>> answer_prefix([5, 1, 2, 9, 1, 2, 7, 3], [1, 2])
    ([5, 1, 2, 9, 1, 2], 7)
    >>> answer_prefix([1, 2, 7, 1, 2, 8], [1, 2], mask=[0, 0, 0, 1, 1, 1])
    ([1, 2, 7, 1, 2], 8)
    >>> answer_prefix([1, 2, 0, 8], [1, 2], skip_ids={0})
    ([1, 2, 0], 8)
    """
    n = len(answer_ids)
    policy = mask if mask is not None else [1] * len(ids)
    for start in range(len(ids) - n - 1, -1, -1):
        if list(ids[start : start + n]) == list(answer_ids) and all(policy[start : start + n + 1]):
            end = start + n
            while ids[end] in skip_ids and end + 1 < len(ids) and policy[end + 1]:
                end += 1
            return list(ids[:end]), ids[end]
    raise ValueError(f"no {protocol.ANSWER_OPEN} turn followed by an answer token in a row of {len(ids)} ids; "
                     "reading is checked on demonstrations that end in an answer turn")


def blank_ids(tokenizer: Any, rows: Sequence[Row]) -> frozenset[int]:
    """The ids in ``rows`` that decode to whitespace only (skipped before the checked answer token)."""
    return frozenset(i for i in {i for r in rows for i in r["input_ids"]} if not tokenizer.decode([i]).strip())


def last_token_logits(model: Any, rows: Sequence[Sequence[int]], pad_id: int, batch_size: int = 64) -> Any:
    """Next-token logits after the last id of each row, ``(N, V)``, right-padded batches, no gradient."""
    import torch

    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            width = max(len(r) for r in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)  # (B, T)
            attention = torch.zeros_like(ids)  # (B, T)
            for i, r in enumerate(chunk):
                ids[i, : len(r)], attention[i, : len(r)] = torch.tensor(list(r), dtype=torch.long), 1
            logits = model(input_ids=ids.to(model.device), attention_mask=attention.to(model.device)).logits
            last = torch.tensor([len(r) - 1 for r in chunk], device=logits.device)
            out.append(logits[torch.arange(len(chunk), device=logits.device), last].float().cpu())  # (B, V)
    model.train(was_training)
    return torch.cat(out)


def reading_accuracy(
    model: Any, tokenizer: Any, rows: Sequence[Row], kinds: Sequence[str], batch_size: int = 64
) -> dict[str, float]:
    """Per kind (``kinds[i]`` is row ``i``'s), the share of rows whose top next token after the final
    ``<answer>`` tag (and any whitespace-only tokens) is the demonstrated answer's first token, teacher-forced
    (see module doc)."""
    if len(rows) != len(kinds) or not rows:
        raise ValueError(f"reading_accuracy needs one kind per row and at least one row (got {len(rows)} rows, "
                         f"{len(kinds)} kinds)")
    answer_ids, blank = tag_ids(tokenizer, protocol.ANSWER_OPEN), blank_ids(tokenizer, rows)
    prefixes, targets = zip(*(answer_prefix(r["input_ids"], answer_ids, r.get("completion_mask"), blank)
                              for r in rows), strict=True)
    predicted = last_token_logits(model, prefixes, tokenizer.pad_token_id, batch_size).argmax(-1).tolist()
    hits: dict[str, list[bool]] = {}
    for kind, guess, target in zip(kinds, predicted, targets, strict=True):
        hits.setdefault(kind, []).append(guess == target)
    return {kind: sum(v) / len(v) for kind, v in sorted(hits.items())}


def action_probability(
    model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], tag: str = protocol.SEARCH_OPEN,
    batch_size: int = 64,
) -> float:
    """Mean probability that the policy's first turn after each prompt (token ids, as the rollout encodes
    them) begins with ``tag``'s first token. For a tokenizer that spells the tag in one token (the toy
    world's) this is the probability of searching first; for a subword tokenizer it is an upper bound."""
    if not prompts:
        raise ValueError("action_probability needs at least one prompt")
    first = tag_ids(tokenizer, tag)[0]
    probs = last_token_logits(model, prompts, tokenizer.pad_token_id, batch_size).softmax(-1)  # (N, V)
    return float(probs[:, first].mean())


def format_reading(reading: dict[str, float]) -> str:
    """``kind value`` pairs of a reading check, for logs.

    >>> format_reading({"born_in": 1.0, "works_for": 0.5})
    'born_in 1.00, works_for 0.50'
    """
    return ", ".join(f"{kind} {value:.2f}" for kind, value in reading.items())
