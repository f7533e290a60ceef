"""Batched multi-turn rollout: an explicit state machine over rows (one row = one episode).

Every row is ACTIVE (its next policy turn is due), SEARCHING (its query awaits the engine) or DONE.
Each loop step runs one handler per state over all rows in it:

* ACTIVE: one batched generation for every active row (``policy.generate_ids`` or its KV-cached twin;
  stop at ``</search>`` or ``</answer>``); each row's turn is judged by ``rules.decide_turn`` (the rules
  shared with the verl agent loop): an answer, a length cut or the final turn ends the row; a search moves
  it to SEARCHING; an invalid turn (by default also one that ended on EOS without a tag) gets the
  invalid-action message (mask 0) and stays ACTIVE.
* SEARCHING: all pending queries go to the engine in ONE ``engine.search`` call (each request with its
  own row's question, gold answers and the step's noise probability); each row gets its
  ``<information>`` block (``rules.information_ids``: cut inside the documents, closing tag kept)
  appended (mask 0) and becomes ACTIVE again.

Everything stays in token ids: the context of a row is prompt ids + generated ids + injected ids,
never re-tokenised from decoded text. After ``max_turns`` rounds a row has one last generation whose
search is not executed (the engine is not called).

Cost: with ``reuse_kv_cache=False`` each turn hands the backend the row's whole context, which it
prefills again. On CPU with SmolLM2 and wiki passages that re-prefill, not the loop, is most of the time
(``benchmarks/bench_rollout.py``); the loop's own Python and the engine call are well under 1%. With
``reuse_kv_cache=True`` the turns go through ``llm/continuation.py``'s ``CachedContinuation``, which keeps
each row's KV cache across turns and prefills only the new tokens (same ids, masks and logprobs). Run::

    episodes = run_rollout(policy, engine, examples, RolloutConfig(n_samples=5), noise_probability=0.1, seed=0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from zerosearch.data.types import QAExample
from zerosearch.llm.base import Completion, GenerationError, SamplingParams
from zerosearch.protocol import INVALID_ACTION_MESSAGE, STOP_STRINGS, load_template, render_prompt
from zerosearch.rollout import rules
from zerosearch.rollout.config import RolloutConfig
from zerosearch.rollout.episode import Episode, Turn
from zerosearch.search.base import SearchEngine, SearchError, SearchRequest, SearchResult

if TYPE_CHECKING:
    from zerosearch.llm.transformers_backend import TransformersGenerator


class RowState(str, Enum):
    """Where a row is in its episode."""

    ACTIVE = "active"
    SEARCHING = "searching"
    DONE = "done"


@dataclass
class Row:
    """The mutable state of one episode while it is being sampled."""

    episode: Episode
    state: RowState = RowState.ACTIVE
    generations: int = 0
    pending_query: str | None = None
    context_ids: list[int] = field(default_factory=list)

    def finish(self, reason: str | None, *, truncated: bool = False) -> None:
        """End the episode; ``truncated`` marks a length limit as the reason."""
        self.state = RowState.DONE
        self.episode.stop_reason = reason
        self.episode.truncated = self.episode.truncated or truncated


def round_seed(seed: int | None, generation_round: int) -> int | None:
    """An independent sampling seed for each generation round of a rollout seeded with ``seed``."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, generation_round]).generate_state(1)[0])


class RolloutRun:
    """One call of :func:`run_rollout`: the policy, engine and rows, and one handler per row state."""

    def __init__(self, policy: TransformersGenerator, engine: SearchEngine, config: RolloutConfig,
                 noise_probability: float | None, seed: int | None, reveal_answers: bool = True) -> None:
        self.policy, self.engine, self.config = policy, engine, config
        self.tokenizer = policy.tokenizer
        self.noise_probability = noise_probability
        self.reveal_answers = reveal_answers
        self.seed = seed
        self.template = load_template(config.template_path)
        has_chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.use_chat_template = has_chat if config.use_chat_template is None else config.use_chat_template
        self.eos_ids = eos_token_ids(policy)
        from zerosearch.llm.continuation import continuation_for  # torch: imported only when a rollout runs

        self.continuation = continuation_for(policy, config.reuse_kv_cache)
        self.invalid_ids = rules.invalid_action_ids(self.tokenizer)
        info_limit = config.max_information_tokens
        if info_limit is not None and info_limit < rules.information_overhead(self.tokenizer):
            rules.information_ids(self.tokenizer, [], info_limit)  # raises the error naming the setting
        self.generation_round = 0
        self.search_round = 0
        self.handlers: dict[RowState, Callable[[list[Row]], None]] = {
            RowState.ACTIVE: self.handle_active,
            RowState.SEARCHING: self.handle_searching,
        }

    # ---- setup -------------------------------------------------------------------------------------
    def decode(self, ids: list[int]) -> str:
        """Text of ids, special tokens skipped (as the backend decodes completions)."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def prompt(self, example: QAExample) -> tuple[str, list[int]]:
        """Render and tokenize the prompt of ``example`` once; check it against ``max_prompt_tokens``."""
        text = render_prompt(example.question, self.tokenizer, self.template, self.use_chat_template)
        ids = rules.prompt_ids(self.tokenizer, text, chat_template_applied=self.use_chat_template)
        limit = self.config.max_prompt_tokens
        if limit is not None and len(ids) > limit:
            raise ValueError(
                f"prompt of example {example.id!r} ({example.dataset}) has {len(ids)} tokens, more than "
                f"max_prompt_tokens={limit}; raise max_prompt_tokens or drop long questions"
            )
        return text, ids

    def make_rows(self, examples: list[QAExample]) -> list[Row]:
        """``n_samples`` rows per example, group-major (example i, sample j at index i * n + j)."""
        rows = []
        for group, example in enumerate(examples):
            text, ids = self.prompt(example)
            for sample in range(self.config.n_samples):
                ep = Episode(example=example, group=group, sample=sample, prompt_ids=ids, prompt_text=text,
                             noise_probability=self.noise_probability)
                rows.append(Row(episode=ep, context_ids=list(ids)))
        return rows

    # ---- budget ------------------------------------------------------------------------------------
    def room(self, row: Row) -> int | None:
        """Tokens left in the response budget (None: no budget)."""
        limit = self.config.max_response_tokens
        return None if limit is None else limit - len(row.episode.response_ids)

    def turn_limit(self, row: Row) -> int:
        """How many new tokens this row may generate in its next turn."""
        room = self.room(row)
        return self.config.max_new_tokens if room is None else min(self.config.max_new_tokens, room)

    # ---- ACTIVE ------------------------------------------------------------------------------------
    def handle_active(self, rows: list[Row]) -> None:
        """One batched generation for all active rows, then one transition per row."""
        limits = [self.turn_limit(r) for r in rows]
        params = SamplingParams(
            max_new_tokens=max(limits), temperature=self.config.temperature, top_p=self.config.top_p,
            top_k=self.config.top_k, stop=STOP_STRINGS, seed=round_seed(self.seed, self.generation_round),
        )
        keys = [(r.episode.group, r.episode.sample) for r in rows]
        completions = self.continuation.generate(keys, [r.context_ids for r in rows], params)
        if len(completions) != len(rows):
            raise GenerationError(f"policy returned {len(completions)} completions for {len(rows)} prompts")
        for row, completion, limit in zip(rows, completions, limits, strict=True):
            self.apply_completion(row, completion, limit)
        self.generation_round += 1

    def apply_completion(self, row: Row, completion: Completion, limit: int) -> None:
        """Append the generated ids of one turn and move the row to its next state (``rules.decide_turn``)."""
        ids, logprobs = checked_ids(completion)
        cut = len(ids) > limit
        if cut:
            ids, logprobs = ids[:limit], logprobs[:limit]
        text = self.decode(ids) if cut else completion.text
        ep = row.episode
        start = len(ep.response_ids)
        self.append(row, ids, logprobs, generated=True)
        end = len(ep.response_ids)
        room = self.room(row)
        decision = rules.decide_turn(
            text,
            ended_on_eos=rules.ends_on_eos(ids, self.eos_ids),
            length_cut=cut or completion.finish_reason == "length",
            final_turn=rules.is_final_turn(row.generations, self.config.max_turns),
            room_left=room,
            length_reason=rules.length_stop_reason(limit, self.config.max_new_tokens),
            eos_ends_episode=self.config.eos_ends_episode,
        )
        action = decision.action
        ep.turns.append(Turn(kind=action.kind.value, content=action.content, text=text, start=start, end=end,
                             injected_start=end, injected_end=end, finish_reason=completion.finish_reason))
        ep.generated_text += text
        row.generations += 1
        if decision.next is rules.TurnNext.END:
            row.finish(decision.stop_reason, truncated=decision.truncated)
        elif decision.next is rules.TurnNext.SEARCH:
            row.pending_query, row.state = action.content, RowState.SEARCHING
        else:
            self.inject(row, self.invalid_ids, INVALID_ACTION_MESSAGE)

    # ---- SEARCHING ---------------------------------------------------------------------------------
    def handle_searching(self, rows: list[Row]) -> None:
        """All pending queries of the batch in ONE engine call; each row gets its information block."""
        modes = self.draw_modes(len(rows))
        requests = [
            SearchRequest(query=r.pending_query or "", top_k=self.config.top_k_documents,
                          question=r.episode.example.question,
                          golden_answers=r.episode.example.golden_answers if self.reveal_answers else (),
                          noise_probability=self.noise_probability, mode=mode)
            for r, mode in zip(rows, modes, strict=True)
        ]
        results = self.search(requests, rows)
        for row, request, result in zip(rows, requests, results, strict=True):
            passages = [doc.as_passage() for doc in result.documents]
            ep = row.episode
            ep.queries.append(request.query)
            ep.documents.append(passages)
            ep.noise_modes.append(result.mode)
            ep.turns[-1].searched = True
            row.pending_query, row.state = None, RowState.ACTIVE
            ids = rules.information_ids(self.tokenizer, passages, self.config.max_information_tokens)
            self.inject(row, ids, self.decode(ids))
        self.search_round += 1

    def draw_modes(self, count: int) -> list[str | None]:
        """Useful/noisy draws for this round's searches, seeded by (seed, round) when the rollout is seeded.

        Drawing here rather than in a simulated engine ties the draws to the rollout seed (derived from the
        trainer's step), so a resumed run sees exactly the documents an uninterrupted one would; engines
        that do not simulate ignore the mode. Unseeded rollouts leave the draw to the engine.
        """
        if self.seed is None or self.noise_probability is None:
            return [None] * count
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.search_round, 1]))
        return ["noisy" if u < self.noise_probability else "useful" for u in rng.random(count)]

    def search(self, requests: list[SearchRequest], rows: list[Row]) -> list[SearchResult]:
        """Call the engine once; a failure propagates, naming the round, the query and the examples."""
        try:
            results = self.engine.search(requests)
        except SearchError as err:
            ids = sorted({r.episode.example.id for r in rows})
            raise SearchError(
                f"engine {getattr(self.engine, 'name', type(self.engine).__name__)!r} failed in search round "
                f"{self.search_round} on {len(requests)} queries (first {requests[0].query!r}; examples "
                f"{ids[:5]}{'…' if len(ids) > 5 else ''}): {err}"
            ) from err
        if len(results) != len(requests):
            raise SearchError(
                f"engine returned {len(results)} results for {len(requests)} requests in search round "
                f"{self.search_round}; an engine must answer every request in order"
            )
        return results

    # ---- shared ------------------------------------------------------------------------------------
    def append(self, row: Row, ids: list[int], logprobs: list[float] | None, *, generated: bool) -> None:
        """Extend the row's response (and context) with ids, their mask and sampling logprobs."""
        ep = row.episode
        ep.response_ids.extend(ids)
        ep.response_mask.extend([1 if generated else 0] * len(ids))
        ep.sampling_logprobs.extend(logprobs if generated and logprobs is not None else [0.0] * len(ids))
        row.context_ids.extend(ids)

    def inject(self, row: Row, ids: list[int], text: str) -> None:
        """Append injected ids (mask 0) after the last turn, cut to the response budget."""
        room = self.room(row)
        if room is not None and len(ids) >= room:
            if len(ids) > room:
                ids, text = ids[:room], self.decode(ids[:room])
            row.finish("max_response_tokens", truncated=True)
        self.append(row, ids, None, generated=False)
        turn = row.episode.turns[-1]
        turn.injected_end = len(row.episode.response_ids)
        turn.injected_text = text

    def run(self, examples: list[QAExample], progress: bool = False) -> list[Episode]:
        """Drive every row to DONE and return the episodes, group-major."""
        rows = self.make_rows(examples)
        bar = progress_bar(progress, self.config.max_turns + 1)
        while True:
            busy = False
            for state, handler in self.handlers.items():
                in_state = [r for r in rows if r.state is state]
                if in_state:
                    busy = True
                    handler(in_state)
            if not busy:
                break
            if bar is not None:
                bar.update(1)
                bar.set_postfix(active=sum(r.state is not RowState.DONE for r in rows))
        if bar is not None:
            bar.close()
        for row in rows:
            row.episode.answer = final_answer(row.episode)
        return [r.episode for r in rows]


def final_answer(episode: Episode) -> str | None:
    """The content of the episode's answer turn as the parser read it, or None.

    Only the turn that ``rules.decide_turn`` ended on an answer counts: an ``<answer>`` opened in one
    turn and closed in a later one is not an answer (a regex over the joined turn texts would read
    ``<answer> foo <search> q </search>…</answer>`` as one).
    """
    answers = [t.content for t in episode.turns if t.kind == "answer"]
    return answers[-1] if answers else None


def checked_ids(completion: Completion) -> tuple[list[int], list[float]]:
    """The completion's token ids and logprobs; a text-only backend cannot drive an RL rollout."""
    if completion.token_ids is None or completion.logprobs is None:
        raise GenerationError(
            "the policy returned no token_ids/logprobs; the rollout needs a local backend such as "
            "TransformersGenerator (generate_ids)"
        )
    if len(completion.token_ids) != len(completion.logprobs):
        raise GenerationError(
            f"policy returned {len(completion.token_ids)} token ids but {len(completion.logprobs)} logprobs"
        )
    return list(completion.token_ids), [float(x) for x in completion.logprobs]


def eos_token_ids(policy: Any) -> frozenset[int]:
    """Every id that ends generation: the tokenizer's EOS and the model's generation-config EOS."""
    ids: set[int] = set()
    if policy.tokenizer.eos_token_id is not None:
        ids.add(int(policy.tokenizer.eos_token_id))
    gen_config = getattr(getattr(policy, "model", None), "generation_config", None)
    extra = getattr(gen_config, "eos_token_id", None)
    if extra is not None:
        ids.update(int(i) for i in (extra if isinstance(extra, list | tuple) else [extra]))
    return frozenset(ids)


def progress_bar(enabled: bool, total: int) -> Any:
    """A tqdm bar over generation rounds, or None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="rollout rounds", unit="round")


def run_rollout(
    policy: TransformersGenerator,
    engine: SearchEngine,
    examples: list[QAExample],
    config: RolloutConfig | None = None,
    *,
    noise_probability: float | None = None,
    seed: int | None = None,
    progress: bool = False,
    reveal_answers: bool = True,
) -> list[Episode]:
    """Sample ``config.n_samples`` multi-turn episodes per example (group-major order).

    ``policy`` must offer ``tokenizer`` and ``generate_ids`` (``TransformersGenerator``); ``engine`` any
    :class:`SearchEngine`. ``noise_probability`` (from the curriculum at the trainer's step) goes into
    every search request and onto every episode. ``seed`` makes the sampling repeatable.
    ``reveal_answers=False`` sends no gold answers to the engine (validation: a simulator shown the answer
    would write it into its documents and inflate the score).
    """
    if not examples:
        raise ValueError("run_rollout needs at least one example")
    if noise_probability is not None and not 0.0 <= noise_probability <= 1.0:
        raise ValueError(f"noise_probability must be in [0, 1], got {noise_probability}")
    if not hasattr(policy, "generate_ids"):
        raise TypeError(f"{type(policy).__name__} has no generate_ids; use a local TransformersGenerator policy")
    run = RolloutRun(policy, engine, config or RolloutConfig(), noise_probability, seed, reveal_answers)
    return run.run(list(examples), progress)
