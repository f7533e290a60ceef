"""The ZeroSearch agent loop for verl 0.9.1, registered as ``zerosearch_agent``.

One episode per ``run()`` call, all in token ids (never re-encoding decoded text):

1. the prompt: verl's Continuous-Token builder (the tokenizer's chat template, as verl's own loops do) or,
   for a tokenizer without a chat template (a base model), the raw instruction as
   :func:`zerosearch.protocol.render_prompt` writes it; a prompt longer than ``rollout.prompt_length`` is an
   error naming the row (verl's loops would silently left-truncate it);
2. a policy turn through verl's server manager (vLLM / SGLang), stopping at ``</search>`` / ``</answer>``,
   with the sampling logprobs kept (mask 1);
3. the turn is judged by :func:`zerosearch.rollout.rules.decide_turn`, the rules the single-machine rollout
   applies (max turns, length limits, invalid actions); a search goes to ``zerosearch serve`` with the row's
   own question and gold answers and the training step (the service turns the step into p with its
   curriculum), and the ``<information>`` ids from :func:`zerosearch.rollout.rules.information_ids` are
   appended with mask 0; an invalid turn gets :func:`~zerosearch.rollout.rules.invalid_action_ids` (mask 0);
4. the whole response is bounded by ``rollout.response_length`` (injected ids are cut to it, and the episode
   ends with ``max_response_tokens`` as in the rollout).

The loop needs the dataset columns ``question`` and ``golden_answers`` (``zerosearch data export-verl``
writes them) and, with ``zerosearch.curriculum`` on, the ``global_steps`` kwarg: verl's V1 trainer (the
default) passes it; for the legacy trainer :class:`~zerosearch.integrations.verl.step.StepAwareAgentLoopManager`
adds it (see :mod:`zerosearch.integrations.verl.step`).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register

from zerosearch.integrations.verl.reward import ANSWER_KEY, GENERATED_TEXT_KEY, gold_answers
from zerosearch.integrations.verl.settings import ZeroSearchVerlSettings
from zerosearch.protocol import STOP_STRINGS, ActionKind, render_prompt
from zerosearch.rollout import rules
from zerosearch.rollout.machine import eos_token_ids
from zerosearch.search.base import SearchRequest, SearchResult
from zerosearch.search.remote import RemoteSearchEngine

#: How each rollout backend is told to stop at our tags and keep the tag in the returned tokens.
STOP_KWARGS: dict[str, dict[str, Any]] = {
    "vllm": {"stop": list(STOP_STRINGS), "include_stop_str_in_output": True},
    "sglang": {"stop": list(STOP_STRINGS), "no_stop_trim": True},
}


@functools.cache
def _engine(settings_json: str) -> RemoteSearchEngine:
    """One HTTP client per settings per process (verl builds a new agent loop object for every sample)."""
    s = ZeroSearchVerlSettings.model_validate_json(settings_json)
    return RemoteSearchEngine(s.service_url, timeout_s=s.timeout_s, max_retries=s.max_retries,
                              backoff_s=s.backoff_s, concurrency=s.max_concurrent_searches,
                              bearer_token=s.bearer_token())


@functools.cache
def _executor(max_workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="zerosearch-search")


class InjectedEncoder:
    """Encodes injected text with a private copy of the tokenizer, one thread at a time.

    ``rules.encode_injected`` asks the fast tokenizer not to parse special tokens, which flips a flag on the
    Rust tokenizer; done on verl's shared tokenizer while verl encodes another episode's prompt in a worker
    thread, that raises "Already borrowed". A private copy behind a lock keeps both apart.
    """

    _lock = threading.Lock()
    _copies: ClassVar[dict[int, Any]] = {}

    def __init__(self, tokenizer: Any) -> None:
        with self._lock:
            if id(tokenizer) not in self._copies:
                self._copies[id(tokenizer)] = (tokenizer, copy.deepcopy(tokenizer))  # keep the original alive
            self.tokenizer = self._copies[id(tokenizer)][1]

    def invalid_action(self) -> list[int]:
        """``rules.invalid_action_ids``."""
        with self._lock:
            return rules.invalid_action_ids(self.tokenizer)

    def information(self, passages: list[str], max_tokens: int | None) -> list[int]:
        """``rules.information_ids``."""
        with self._lock:
            return rules.information_ids(self.tokenizer, passages, max_tokens)


@dataclass
class Trajectory:
    """The growing response of one episode."""

    prompt_ids: list[int]
    response_ids: list[int] = field(default_factory=list)
    response_mask: list[int] = field(default_factory=list)
    logprobs: list[float] | None = field(default_factory=list)
    generated_text: str = ""
    generations: int = 0
    injections: int = 0
    queries: list[str] = field(default_factory=list)
    noise_modes: list[str | None] = field(default_factory=list)
    noise_probabilities: list[float | None] = field(default_factory=list)
    stop_reason: str | None = None
    truncated: bool = False
    answer: str | None = None

    def append(self, ids: list[int], logprobs: list[float] | None, *, generated: bool) -> None:
        """Extend the response with ids, their mask, and (policy tokens) the sampling logprobs."""
        self.response_ids.extend(ids)
        self.response_mask.extend([1 if generated else 0] * len(ids))
        if self.logprobs is not None:
            if generated and logprobs is None:
                raise ValueError("the rollout server returned no logprobs; set "
                                 "actor_rollout_ref.rollout.calculate_log_probs=True")
            self.logprobs.extend(logprobs if generated else [0.0] * len(ids))


def _as_text_list(value: Any) -> list[Any]:
    return list(value.tolist() if hasattr(value, "tolist") else value)


@register("zerosearch_agent")
class ZeroSearchAgentLoop(AgentLoopBase):
    """Search-R1 / ZeroSearch protocol (``<search>``, ``<information>``, ``<answer>``) over verl's servers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = ZeroSearchVerlSettings.from_trainer_config(self.config)
        self.prompt_length = int(self.rollout_config.prompt_length)
        self.response_length = int(self.rollout_config.response_length)
        name = str(self.rollout_config.name)
        if name not in STOP_KWARGS:
            raise ValueError(f"zerosearch_agent supports rollout.name in {sorted(STOP_KWARGS)}, got {name!r}")
        self.stop_kwargs = STOP_KWARGS[name]
        self.eos_ids = eos_token_ids(self)  # reads self.tokenizer (and no model: the servers hold it)
        self.encoder = InjectedEncoder(self.tokenizer)
        self.invalid_ids = self.encoder.invalid_action()
        if self.settings.max_information_tokens is not None:
            self.encoder.information([], self.settings.max_information_tokens)  # checks the limit

    # ---- prompt ------------------------------------------------------------------------------------
    async def prompt_ids(self, messages: list[dict], row: str) -> list[int]:
        """Prompt ids: chat template through verl's builder, or the raw instruction for a base model."""
        if getattr(self.tokenizer, "chat_template", None):
            ids = await self.loop.run_in_executor(
                None, lambda: list(self.continuous_token_builder.build_initial_tokens(messages)))
        else:
            if len(messages) != 1 or messages[0].get("role") != "user":
                raise ValueError(f"row {row}: a tokenizer without a chat template needs one user message, got "
                                 f"{[m.get('role') for m in messages]}")
            text = render_prompt(messages[0]["content"], self.tokenizer, "{question}", use_chat_template=False)
            ids = list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        if len(ids) > self.prompt_length:
            raise ValueError(f"row {row}: prompt has {len(ids)} tokens, more than rollout.prompt_length="
                             f"{self.prompt_length}; raise data.max_prompt_length / rollout.prompt_length")
        return ids

    # ---- one episode -------------------------------------------------------------------------------
    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        """Sample one multi-turn episode (see the module docstring)."""
        row = f"index={kwargs.get('index')!r}"
        question, golds = self._question_and_answers(kwargs, row)
        step = self._step(kwargs, row)
        traj = Trajectory(prompt_ids=await self.prompt_ids(list(kwargs["raw_prompt"]), row))
        request_id = uuid4().hex  # one id per episode: verl routes every turn to the same server
        timing = {"generate_sequences": 0.0, "tool_calls": 0.0}
        while traj.stop_reason is None:
            t0 = time.perf_counter()
            decision = await self._policy_turn(traj, sampling_params, request_id)
            timing["generate_sequences"] += time.perf_counter() - t0
            if decision.next is rules.TurnNext.END:
                traj.stop_reason, traj.truncated = decision.stop_reason, decision.truncated
                if decision.action.kind is ActionKind.ANSWER:
                    traj.answer = decision.action.content
            elif decision.next is rules.TurnNext.SEARCH:
                t0 = time.perf_counter()
                result = await self._search(decision.action.content, question, golds, step)
                timing["tool_calls"] += time.perf_counter() - t0
                traj.queries.append(decision.action.content)
                traj.noise_modes.append(result.mode)
                traj.noise_probabilities.append(result.extra.get("noise_probability"))
                passages = [doc.as_passage() for doc in result.documents]
                self._inject(traj, self.encoder.information(passages, self.settings.max_information_tokens))
            else:
                self._inject(traj, self.invalid_ids)
        return self._output(traj, step, timing)

    def _question_and_answers(self, kwargs: dict[str, Any], row: str) -> tuple[str, tuple[str, ...]]:
        question = kwargs.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"row {row} has no 'question' column; export the data with `zerosearch data "
                             "export-verl` (it writes question and golden_answers beside prompt)")
        golds = kwargs.get("golden_answers")
        if golds is None:
            golds = gold_answers(kwargs.get("reward_model", {}).get("ground_truth"))
        return question, tuple(str(g) for g in _as_text_list(golds))

    def _step(self, kwargs: dict[str, Any], row: str) -> int | None:
        if not self.settings.curriculum:
            return None
        step = kwargs.get("global_steps")
        if step is None:
            raise ValueError(
                f"row {row}: no global_steps kwarg, so the noise curriculum cannot follow training. verl's V1 "
                "trainer (trainer.use_v1=true, the default) passes it; with trainer.use_v1=false set "
                "actor_rollout_ref.rollout.agent.agent_loop_manager_class="
                "zerosearch.integrations.verl.step.StepAwareAgentLoopManager (see docs/verl.md), or set "
                "zerosearch.curriculum=false to use the service's fixed --noise-probability")
        return int(step)

    async def _policy_turn(
        self, traj: Trajectory, sampling_params: dict[str, Any], request_id: str
    ) -> rules.TurnDecision:
        room = self.response_length - len(traj.response_ids)
        limit = min(self.settings.max_new_tokens, room)
        params = {**sampling_params, **self.stop_kwargs, "max_tokens": limit}
        output = await self.server_manager.generate(
            request_id=request_id, prompt_ids=traj.prompt_ids + traj.response_ids, sampling_params=params)
        if getattr(output, "stop_reason", None) == "aborted":
            raise RuntimeError(f"rollout server aborted request {request_id}; partial rollouts are not supported")
        ids = list(output.token_ids)[:limit]
        logprobs = None if output.log_probs is None else [float(x) for x in output.log_probs][:limit]
        if logprobs is not None and len(logprobs) != len(ids):
            raise ValueError(f"rollout server returned {len(ids)} ids but {len(logprobs)} logprobs")
        if not traj.response_ids and logprobs is None:
            traj.logprobs = None  # the server does not report logprobs at all (calculate_log_probs off)
        traj.append(ids, logprobs, generated=True)
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        traj.generated_text += text
        ended_on_eos = rules.ends_on_eos(ids, self.eos_ids)
        stopped = any(s in text for s in STOP_STRINGS)
        decision = rules.decide_turn(
            text,
            ended_on_eos=ended_on_eos,
            length_cut=len(ids) >= limit and not stopped and not ended_on_eos,
            final_turn=rules.is_final_turn(traj.generations, self.settings.max_turns),
            room_left=self.response_length - len(traj.response_ids),
            length_reason=rules.length_stop_reason(limit, self.settings.max_new_tokens),
            eos_ends_episode=self.settings.eos_ends_episode,
        )
        traj.generations += 1
        return decision

    def _inject(self, traj: Trajectory, ids: list[int]) -> None:
        """Append injected ids (mask 0), cut to the response budget; hitting it ends the episode."""
        room = self.response_length - len(traj.response_ids)
        if len(ids) >= room:
            ids = ids[:room]
            traj.stop_reason, traj.truncated = "max_response_tokens", True
        traj.append(ids, None, generated=False)
        traj.injections += 1

    async def _search(self, query: str, question: str, golds: tuple[str, ...], step: int | None) -> SearchResult:
        engine = _engine(self.settings.model_dump_json())
        request = SearchRequest(query=query, top_k=self.settings.top_k_documents, question=question,
                                golden_answers=golds)
        call = functools.partial(engine.search, [request], step=step, total_steps=self.settings.total_steps)
        (result,) = await asyncio.get_running_loop().run_in_executor(
            _executor(self.settings.max_concurrent_searches), call)
        return result

    def _output(self, traj: Trajectory, step: int | None, timing: dict[str, float]) -> AgentLoopOutput:
        return AgentLoopOutput(
            prompt_ids=traj.prompt_ids,
            response_ids=traj.response_ids,
            response_mask=traj.response_mask,
            response_logprobs=traj.logprobs,
            num_turns=1 + traj.generations + traj.injections,  # user + assistant turns + injected turns
            metrics=timing,
            extra_fields={
                GENERATED_TEXT_KEY: traj.generated_text,
                ANSWER_KEY: traj.answer,
                "zerosearch_queries": traj.queries,
                "zerosearch_noise_modes": traj.noise_modes,
                "zerosearch_noise_probabilities": traj.noise_probabilities,
                "zerosearch_stop_reason": traj.stop_reason,
                "zerosearch_truncated": traj.truncated,
                "zerosearch_step": step,
                "turn_scores": [],
                "tool_rewards": [],
            },
        )
