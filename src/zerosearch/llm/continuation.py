"""Multi-turn generation that keeps every row's KV cache between turns, so a turn prefills only new tokens.

Why this exists: in a multi-turn rollout each turn's context is the previous turn's context plus the
tokens generated and injected since. ``TransformersGenerator.generate_ids`` prefills that whole growing
context again every turn; on CPU with SmolLM2 that re-prefill was most of the rollout's time
(``benchmarks/bench_rollout.py``). :class:`CachedContinuation` keeps, per row (an episode, named by a
caller's key), the keys/values of the context it has already seen, and each turn feeds the model only
the rest: the injected block and, at most, the last token generated in the previous turn.

Semantics are those of ``generate_ids`` (same stop strings per row, EOS, ``max_new_tokens``, logprobs
under the sampling distribution, seed, longest-first batches of ``batch_size``): it calls the
generator's own ``_warpers`` / ``_complete`` / ``_cut``, so a subclass's logits processors apply too.

Cache layout (why positions stay right). Between turns a row's cache is stored compact: keys and values
``(layers, kv_heads, T, head_dim)`` for exactly its first ``T`` context tokens, no padding. A turn:

1. rows are batched like ``generate_ids``; a batch cache of width ``C`` (the longest cached prefix) is
   assembled with each row right-aligned (a left gap of ``C - c_b`` zero columns);
2. each row's uncached tokens (always >= 1, so the next-token logits exist) are left-padded to width
   ``W``. ``input_ids`` (B, C + W) holds each row's real context right-aligned (only the last ``W``
   columns are fed; the earlier ones let stop strings and logits processors see the same tail as the
   uncached path) and ``attention_mask`` is 1 exactly on real tokens. HF generate derives position ids
   as ``cumsum(mask) - 1``, which for every real token is its index in its row's context: the position
   the uncached path gives it, and the one its cached keys were rotated with;
3. after generate, each row's real columns are gathered back: cached + new tokens, plus the generated
   tokens it kept whose keys were computed (generate never feeds its last sampled token). Columns of
   tokens generated after a row stopped (generate keeps feeding pads to finished rows, mask 1) and of
   tokens cut off by ``_cut`` are dropped: they never become context.

Measured (``benchmarks/bench_rollout.py --reuse-kv-cache both --threads 1 --repeats 2``, quiet CPU, batch 8,
2 searches + answer, sampled at temperature 1, identical token ids in both modes): SmolLM2-135M rollouts
1.43x faster with 128-token information blocks (overhead over raw ``model.generate`` +72% -> +21%) and
1.31x with whole wiki passages (+151% -> +92%). What remains is prefilling the injected blocks themselves
(with whole passages 4.8x as many tokens as the policy generates): against one ``generate`` over the same
prefilled and decoded tokens the cached rollout is 7-19% faster (``docs/benchmarks.md``).

Rows whose key is missing from a call are released (their episode ended), so memory follows the active
batch. Only models whose ``DynamicCache`` has plain full-attention layers are supported (Llama, Qwen2,
SmolLM2, ...); others get a clear error at construction. Run (see ``tests/test_llm_continuation.py``)::

    session = CachedContinuation(generator)
    first = session.generate(["a", "b"], [ids_a, ids_b], params)
    second = session.generate(["a"], [ids_a + first[0].token_ids + injected], params)  # "b" released
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from zerosearch.llm.base import Completion, SamplingParams
from zerosearch.llm.transformers_backend import TransformersGenerator, _inference_mode, _seeded


class Continuation(Protocol):
    """How a rollout generates one turn for its active rows (each named by a key stable across turns)."""

    def generate(
        self, keys: Sequence[Hashable], contexts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[Completion]:
        """One completion per context, in order."""
        ...


class FreshContinuation:
    """No cache across turns: every turn is a plain ``policy.generate_ids`` of the whole contexts."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def generate(
        self, keys: Sequence[Hashable], contexts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[Completion]:
        """``policy.generate_ids(contexts, params)``; ``keys`` are not needed."""
        del keys
        return self.policy.generate_ids(contexts, params)


@dataclass
class _RowCache:
    """The stored prefix of one row: its token ids and their keys/values."""

    ids: list[int]
    keys: torch.Tensor  # (L, H, T, D)
    values: torch.Tensor  # (L, H, T, D)


class CachedContinuation:
    """Per-rollout KV cache of the active rows of a :class:`TransformersGenerator` (module docstring)."""

    def __init__(self, generator: TransformersGenerator) -> None:
        self.generator = generator
        self.model = generator.model
        self.rows: dict[Hashable, _RowCache] = {}
        probe = DynamicCache(config=self.model.config)
        kinds = {type(layer).__name__ for layer in probe.layers}
        if not probe.layers or any(type(layer) is not DynamicLayer for layer in probe.layers):
            raise ValueError(
                f"{type(self.model).__name__} uses cache layers {sorted(kinds) or ['(none)']}; cross-turn KV "
                "reuse supports full-attention DynamicLayer caches only. Set reuse_kv_cache=False"
            )

    def generate(
        self, keys: Sequence[Hashable], contexts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[Completion]:
        """Complete every row's context, reusing its cached prefix; rows not named in ``keys`` are released.

        A key seen before must come with a context that starts with everything it was given and kept
        before (its previous context + the completion's token ids); a new key is prefilled in full.
        """
        self._check(keys, contexts)
        wanted = set(keys)
        self.release([k for k in self.rows if k not in wanted])
        order = sorted(range(len(contexts)), key=lambda i: -len(contexts[i]))
        results: list[Completion | None] = [None] * len(contexts)
        size = self.generator.batch_size
        with _inference_mode(self.model), _seeded(params.seed, self.generator.device):
            for start in range(0, len(order), size):
                chunk = order[start : start + size]
                completions = self._generate_batch([keys[i] for i in chunk], [contexts[i] for i in chunk], params)
                for i, completion in zip(chunk, completions, strict=True):
                    results[i] = completion
        return [r for r in results if r is not None]

    def seed_prefix(self, keys: Sequence[Hashable], prefix_ids: Sequence[int]) -> None:
        """Prefill ``prefix_ids`` once and make it the cached prefix of every row in ``keys``.

        Rows share the same key/value tensors (batches copy them into place), so a long common prompt
        prefix, such as a simulator's one-shot example, costs one prefill instead of one per row.
        """
        ids = torch.tensor([list(prefix_ids)], dtype=torch.long, device=self.generator.device)  # (1, P)
        with _inference_mode(self.model):
            out = self.model(input_ids=ids, use_cache=True)
        cache = out.get("cache")  # transformers 5.x names it "cache"; older releases "past_key_values"
        if cache is None:
            cache = out.past_key_values
        prefix_keys = torch.stack([layer.keys[0] for layer in cache.layers])  # (L, H, P, D)
        prefix_values = torch.stack([layer.values[0] for layer in cache.layers])  # (L, H, P, D)
        for key in keys:
            self.rows[key] = _RowCache(ids=list(prefix_ids), keys=prefix_keys, values=prefix_values)

    def release(self, keys: Sequence[Hashable] | None = None) -> None:
        """Forget the cache of ``keys`` (all rows when None)."""
        for key in list(self.rows) if keys is None else keys:
            self.rows.pop(key, None)

    def cached_tokens(self, key: Hashable) -> int:
        """How many context tokens of row ``key`` are cached (0 for an unknown key)."""
        row = self.rows.get(key)
        return 0 if row is None else len(row.ids)

    # ------------------------------------------------------------------ internals

    def _check(self, keys: Sequence[Hashable], contexts: Sequence[Sequence[int]]) -> None:
        if len(keys) != len(contexts):
            raise ValueError(f"got {len(keys)} keys for {len(contexts)} contexts; pass one key per row")
        if len(set(keys)) != len(keys):
            raise ValueError("keys must be unique: each names one row (episode) of the rollout")
        for key, context in zip(keys, contexts, strict=True):
            if len(context) == 0:
                raise ValueError(f"context of row {key!r} is empty: every row needs at least one token")
            row = self.rows.get(key)
            if row is not None and list(context[: len(row.ids)]) != row.ids:
                raise ValueError(
                    f"context of row {key!r} does not extend its cached prefix of {len(row.ids)} tokens; a row's "
                    "context may only grow (append), or use a new key for a new row"
                )

    def _generate_batch(
        self, keys: list[Hashable], contexts: list[Sequence[int]], params: SamplingParams
    ) -> list[Completion]:
        # cached tokens per row; at least the last context token is fed so its next-token logits exist
        cached = [min(self.cached_tokens(k), len(c) - 1) for k, c in zip(keys, contexts, strict=True)]
        width_cached = max(cached)
        width_new = max(len(c) - n for c, n in zip(contexts, cached, strict=True))
        input_ids, mask = self._inputs(contexts, cached, width_cached, width_new)  # (B, C + W) each
        cache = self._assemble(keys, cached, width_cached)
        completions = self.generator._complete(input_ids, mask, params, cache=cache)
        steps = cache.get_seq_length() - input_ids.shape[1] + 1  # N: generate never feeds its last token
        self._store(keys, contexts, mask, cache, [list(c.token_ids or []) for c in completions], steps)
        return completions

    def _inputs(
        self, contexts: list[Sequence[int]], cached: list[int], width_cached: int, width_new: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-aligned real contexts (B, C + W) and the mask of real tokens (gap, cached, pad, new)."""
        width = width_cached + width_new
        ids = torch.full((len(contexts), width), self.generator.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(contexts), width), dtype=torch.long)
        for row, (context, n_cached) in enumerate(zip(contexts, cached, strict=True)):
            tail = list(context[-width:])
            ids[row, width - len(tail) :] = torch.tensor(tail, dtype=torch.long)
            mask[row, width_cached - n_cached : width_cached] = 1  # cached prefix, right-aligned
            mask[row, width - (len(context) - n_cached) :] = 1  # new tokens, left-padded
        device = self.generator.device
        return ids.to(device), mask.to(device)

    def _assemble(self, keys: list[Hashable], cached: list[int], width: int) -> DynamicCache:
        """A batch DynamicCache of ``width`` columns holding each row's first ``cached[b]`` tokens, right-aligned."""
        if width == 0:
            return DynamicCache(config=self.model.config)
        sample = next(self.rows[k].keys for k, n in zip(keys, cached, strict=True) if n > 0)
        layers, heads, _, dim = sample.shape
        shape = (layers, len(keys), heads, width, dim)
        batch_keys = sample.new_zeros(shape)  # (L, B, H, C, D)
        batch_values = sample.new_zeros(shape)  # (L, B, H, C, D)
        for b, (key, n) in enumerate(zip(keys, cached, strict=True)):
            if n > 0:
                row = self.rows[key]
                batch_keys[:, b, :, width - n :] = row.keys[:, :, :n]
                batch_values[:, b, :, width - n :] = row.values[:, :, :n]
        data = [(batch_keys[layer], batch_values[layer]) for layer in range(layers)]
        return DynamicCache(ddp_cache_data=data, config=self.model.config)

    def _store(
        self, keys: list[Hashable], contexts: list[Sequence[int]], mask: torch.Tensor, cache: DynamicCache,
        kept: list[list[int]], steps: int,
    ) -> None:
        """Keep each row's real columns: its context and the kept generated tokens whose keys exist.

        Layer tensors are (B, H, C + W + N - 1, D); each row's columns are copied out layer by layer, so the
        peak memory is the batch cache plus the rows' compact copies.
        """
        width = mask.shape[1]
        for b, key in enumerate(keys):
            fed = min(len(kept[b]), steps - 1)  # generated tokens of this row whose keys were computed
            generated = torch.arange(width, width + fed, device=mask.device)
            columns = torch.cat([mask[b].nonzero().squeeze(1), generated])  # (T_b,)
            self.rows[key] = _RowCache(
                ids=list(contexts[b]) + kept[b][:fed],
                keys=torch.stack([layer.keys[b].index_select(1, columns) for layer in cache.layers]),  # (L, H, T_b, D)
                values=torch.stack([layer.values[b].index_select(1, columns) for layer in cache.layers]),
            )


def continuation_for(policy: Any, reuse_kv_cache: bool) -> Continuation:
    """The rollout's generation path: the cached one when asked for and the policy decodes as
    ``TransformersGenerator`` does; a policy overriding ``generate_ids`` (a scripted test policy, a custom
    decoder) keeps being called through its own ``generate_ids`` every turn.
    """
    own_decoding = (
        isinstance(policy, TransformersGenerator)
        and type(policy).generate_ids is TransformersGenerator.generate_ids
    )
    return CachedContinuation(policy) if reuse_kv_cache and own_decoding else FreshContinuation(policy)


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest prefix shared by all ``sequences``.

    >>> common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]])
    2
    """
    first, shortest = sequences[0], min(len(s) for s in sequences)
    for i in range(shortest):
        if any(s[i] != first[i] for s in sequences):
            return i
    return shortest


def generate_sharing_prefix(
    generator: TransformersGenerator, prompt_ids: Sequence[Sequence[int]], params: SamplingParams,
    *, min_shared: int = 32,
) -> list[Completion]:
    """``generator.generate_ids`` where prompts that share a long prefix prefill it once.

    Prompts are grouped by their first ``min_shared`` tokens; each group of two or more gets its common
    prefix prefilled once (:meth:`CachedContinuation.seed_prefix`) and only the rest is fed per row. The
    simulator's prompts repeat a several-hundred-token instruction and one-shot example for every query,
    so on CPU this removes most of a batched simulation's prefill. Results follow ``generate_ids``'s
    semantics (same stop handling, logprobs and seed); without a group worth sharing it simply calls it.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, ids in enumerate(prompt_ids):
        groups.setdefault(tuple(ids[:min_shared]), []).append(i)
    try:
        session = CachedContinuation(generator)
    except ValueError:  # a cache layout we cannot splice (e.g. sliding window): same results, no sharing
        return generator.generate_ids(prompt_ids, params)
    for members in groups.values():
        rows = [prompt_ids[i] for i in members]
        shared = min(common_prefix_length(rows), min(len(r) for r in rows) - 1)
        if len(members) > 1 and shared >= min_shared:
            session.seed_prefix(members, rows[0][:shared])
    if not session.rows:
        return generator.generate_ids(prompt_ids, params)
    try:
        return session.generate(list(range(len(prompt_ids))), prompt_ids, params)
    finally:
        session.release()
