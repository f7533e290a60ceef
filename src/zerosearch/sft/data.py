"""SFT rows: prompt/completion text pairs turned into token ids with a completion mask, and checks.

Why tokenize here and not let TRL do it: the prompt must be tokenized *alone*, the way a backend encodes
it at inference (``TransformersGenerator.encode``), so the model learns to continue exactly the ids it
will be given. TRL tokenizes ``prompt + completion`` together and looks for where it diverges from the
prompt alone, which can move the boundary by a token when tokens merge across it. Both input shapes
end as the same rows: ``input_ids`` and ``completion_mask`` (1 = trained), which TRL's SFTTrainer turns
into labels with ``completion_only_loss=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

PAIR_KEYS = ("prompt", "completion")
ROW_KEYS = ("input_ids", "completion_mask")


class SFTDataError(ValueError):
    """SFT data of the wrong shape; the message names the row and what to change."""


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Ids of ``prompt`` as a backend encodes it for generation (special tokens added unless the text
    already starts with BOS)."""
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and prompt.startswith(bos))
    return list(tokenizer(prompt, add_special_tokens=add_special)["input_ids"])


def rows_from_pairs(tokenizer: Any, pairs: Iterable[Mapping[str, str]], *, add_eos: bool = True) -> list[dict]:
    """``{"prompt", "completion"}`` pairs -> ``{"input_ids", "completion_mask"}`` rows.

    The completion is tokenized without special tokens and followed by EOS (``add_eos``), so the model
    learns where to stop; mask 1 on the completion and EOS only. An empty completion then trains EOS alone
    (a simulator learning that an engine found nothing).
    """
    eos = tokenizer.eos_token_id
    if add_eos and eos is None:
        raise SFTDataError("the tokenizer has no eos_token_id; set one or pass add_eos=False")
    rows = []
    for i, pair in enumerate(pairs):
        missing = [k for k in PAIR_KEYS if not isinstance(pair.get(k), str)]
        if missing:
            raise SFTDataError(f"pair {i} lacks text field(s) {missing}; every pair needs 'prompt' and 'completion'")
        if not pair["completion"] and not add_eos:
            raise SFTDataError(f"pair {i} has an empty completion and no EOS: there is nothing to train on; drop it")
        prompt_ids = encode_prompt(tokenizer, pair["prompt"])
        completion_ids = list(tokenizer(pair["completion"], add_special_tokens=False)["input_ids"])
        if add_eos:
            completion_ids.append(eos)
        rows.append({"input_ids": prompt_ids + completion_ids,
                     "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids)})
    return rows


def validate_rows(rows: Sequence[Mapping[str, Any]], vocab_size: int | None = None) -> None:
    """Raise :class:`SFTDataError` unless every row has equal-length ``input_ids`` and a 0/1
    ``completion_mask`` with at least one 1 (and ids below ``vocab_size`` when given)."""
    if not rows:
        raise SFTDataError("no SFT rows: the dataset is empty")
    for i, row in enumerate(rows):
        missing = [k for k in ROW_KEYS if k not in row]
        if missing:
            raise SFTDataError(f"row {i} lacks {missing}; pre-tokenized rows need 'input_ids' and 'completion_mask'")
        ids, mask = row["input_ids"], row["completion_mask"]
        if len(ids) != len(mask):
            raise SFTDataError(f"row {i}: input_ids has {len(ids)} tokens but completion_mask {len(mask)}")
        if any(m not in (0, 1) for m in mask) or 1 not in mask:
            raise SFTDataError(f"row {i}: completion_mask must be 0/1 with at least one 1 (a trained token)")
        if vocab_size is not None and any(not 0 <= t < vocab_size for t in ids):
            raise SFTDataError(f"row {i} has a token id outside the model's vocabulary (size {vocab_size})")


def _shape(first: Mapping[str, Any]) -> str:
    if all(k in first for k in ROW_KEYS):
        return "rows"
    if all(k in first for k in PAIR_KEYS):
        return "pairs"
    raise SFTDataError(
        f"SFT data has columns {sorted(first)}; expected 'prompt' + 'completion' (text pairs) or "
        "'input_ids' + 'completion_mask' (pre-tokenized rows)")


def to_rows(data: Any, tokenizer: Any) -> list[dict]:
    """Any accepted input (a list of dicts or a ``datasets.Dataset``, pairs or rows) as checked rows."""
    records = [dict(r) for r in data]
    if not records:
        raise SFTDataError("no SFT rows: the dataset is empty")
    if _shape(records[0]) == "pairs":
        rows = rows_from_pairs(tokenizer, records)
    else:
        rows = [{k: list(r[k]) for k in ROW_KEYS} for r in records]
    validate_rows(rows, len(tokenizer))
    return rows


def to_dataset(rows: Sequence[Mapping[str, Any]]) -> Any:
    """Rows as a ``datasets.Dataset`` (the form SFTTrainer takes)."""
    from datasets import Dataset

    return Dataset.from_dict({k: [list(r[k]) for r in rows] for k in ROW_KEYS})


def length_bucketed_order(lengths: Sequence[int], batch_size: int, batches: int, seed: int = 0,
                          window: int = 16) -> list[int]:
    """Row indices for ``batches`` full batches in a row: per epoch, shuffle, sort within windows of
    ``window`` batches by length, cut into batches, shuffle the batches (a short last batch is dropped).

    Read in order (a sequential sampler), each batch holds rows of similar length, so little is padded,
    while the batches of an epoch still come in random order.

    >>> order = length_bucketed_order([5, 50, 6, 51], batch_size=2, batches=3)
    >>> len(order), sorted(sorted([5, 50, 6, 51][i] for i in order[k:k + 2]) for k in (0, 2))
    (6, [[5, 6], [50, 51]])
    """
    import random

    if len(lengths) < batch_size:
        raise SFTDataError(f"{len(lengths)} rows cannot fill one batch of {batch_size}; lower batch_size")
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < batches * batch_size:
        shuffled = rng.sample(range(len(lengths)), len(lengths))
        epoch = []
        for start in range(0, len(shuffled), batch_size * window):
            chunk = sorted(shuffled[start : start + batch_size * window], key=lambda i: lengths[i])
            epoch += [chunk[i : i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)]
        rng.shuffle(epoch)
        order += [i for batch in epoch for i in batch]
    return order[: batches * batch_size]
