"""The simulated search engine: an LLM writes the k results for each query (ZeroSearch's core idea).

For a batch of requests the engine (1) draws useful or noisy per request — ``request.mode`` forces it,
else noisy with probability ``request.noise_probability`` or the config default — from a seeded numpy
Generator, so a run repeats exactly; (2) builds each request's prompt from its *own* query, question and
gold answers (the reference mixed them up across a batch); (3) sends all prompts in ONE
``generator.generate`` call; (4) parses each completion into at most k documents and records how many
were recovered. A failing generator raises :class:`SearchError`; nothing is padded or made up.

``prompt_style: reference`` sends the ZeroSearch reference's own format instead of ours, for its released
simulators: an empty system message, :func:`~zerosearch.search.simulator_prompts.reference_sft` as the user
message (through a local chat template or an OpenAI-compatible chat API), no pre-filled ``Doc 1:``, and
the output cut at ``Doc k+1``.

    engine = SimulatedSearchEngine(TransformersGenerator.from_pretrained("smollm2-135m-instruct"), config)
    engine.search([SearchRequest("apollo 11 landing", top_k=3, question=..., golden_answers=("1969",))])
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from zerosearch.llm.base import Completion, GenerationError, SamplingParams, TextGenerator
from zerosearch.search import simulator_prompts as prompts
from zerosearch.search.base import Document, NoiseMode, SearchError, SearchRequest, SearchResult
from zerosearch.search.simulator_parse import parse_documents

if TYPE_CHECKING:
    from zerosearch.search.engine_config import SimulatedEngineConfig

logger = logging.getLogger(__name__)

#: Errors a backend may raise that mean "this batch could not be generated".
_BACKEND_ERRORS = (GenerationError, RuntimeError, OSError, ValueError)


def draw_modes(requests: list[SearchRequest], default_p: float, rng: np.random.Generator) -> list[NoiseMode]:
    """One useful/noisy draw per request: forced by ``mode``, else noisy with probability p.

    One uniform number is consumed per request, forced or not, so forcing one request's mode does not
    shift the draws of the others.
    """
    uniforms = rng.random(len(requests))  # (N,)
    modes: list[NoiseMode] = []
    for request, u in zip(requests, uniforms, strict=True):
        if request.mode is not None:
            modes.append(request.mode)
            continue
        p = default_p if request.noise_probability is None else request.noise_probability
        modes.append("noisy" if u < p else "useful")
    return modes


class SimulatedSearchEngine:
    """Search results written by an LLM, useful or noisy on request; one batched generation per call."""

    name = "simulated"

    def __init__(self, generator: TextGenerator, config: SimulatedEngineConfig) -> None:
        self.generator = generator
        self.config = config
        self.tokenizer: Any | None = getattr(generator, "tokenizer", None)
        chat_api = self.tokenizer is None and getattr(generator, "api", None) == "chat"
        use_chat = config.use_chat_template
        if use_chat is None:
            use_chat = prompts.has_chat_template(self.tokenizer)
        elif use_chat and not prompts.has_chat_template(self.tokenizer):
            raise ValueError(
                f"use_chat_template=True but generator {generator.name!r} has no tokenizer with a chat template; "
                "leave it unset (auto) or set it to False"
            )
        self.use_chat_template = bool(use_chat)
        self.reference_style = config.prompt_style == "reference"
        if self.reference_style:
            _check_reference_generator(generator, self.use_chat_template, chat_api)
        # A chat API wraps our text into a user message itself; there we cannot pre-fill the reply. The
        # reference's format is never pre-filled: its simulators were tuned to write "Doc 1:" themselves.
        self.prime = not chat_api and not self.reference_style
        self._rng = np.random.default_rng(config.seed)
        self._lock = threading.Lock()

    @property
    def requires_question_and_answers(self) -> bool:
        """Whether every request must carry its question and gold answers (the reference's format does)."""
        return self.reference_style

    def state_dict(self) -> dict[str, Any]:
        """The random state of the draws and seeds (a trainer checkpoint keeps it, so resume is exact)."""
        with self._lock:
            return {"rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        with self._lock:
            self._rng.bit_generator.state = state["rng"]

    def build_prompt(self, request: SearchRequest, mode: NoiseMode) -> str:
        """The rendered prompt for one request (its own question/answers, if configured)."""
        use_hint = self.config.include_question_and_answer
        question = request.question if use_hint else None
        answers = request.golden_answers if use_hint else None
        if self.reference_style:
            prompt = prompts.reference_prompt(request.query, request.top_k, mode, question=question, answers=answers)
        elif self.config.mode == "finetuned":
            prompt = prompts.finetuned(request.query, request.top_k, mode, question=question, answers=answers)
        else:
            prompt = prompts.prompt_based(
                request.query,
                request.top_k,
                mode,
                question=question,
                answers=answers,
                words=self.config.words_per_document,
            )
        return prompts.render(prompt, self.tokenizer, self.use_chat_template, prime=self.prime)

    def _sampling(self, requests: list[SearchRequest], seed: int) -> SamplingParams:
        k = max(r.top_k for r in requests)  # a stop after the largest k is safe for every k in the batch
        # the reference's cut drops everything from "Doc k+1" on; ours stops at the next "Doc k+1:" marker
        stop = [prompts.reference_cut(k)] if self.reference_style else [f"Doc {k + 1}:"]
        if not self.use_chat_template and not self.reference_style:
            stop.append(prompts.QUERY_HEADER)  # a plain-text model would go on with a new example
        return SamplingParams(
            max_new_tokens=self.config.max_new_tokens,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            stop=tuple(stop),
            seed=seed,
        )

    def search(self, requests: list[SearchRequest]) -> list[SearchResult]:
        """Simulate results for every request in one generation call; raises SearchError on failure.

        With ``prompt_style: reference`` a request without its question or gold answers is a ValueError
        naming it (nothing is drawn or generated for the batch).
        """
        if not requests:
            return []
        if self.reference_style:
            missing = [i for i, r in enumerate(requests) if not r.question or not r.golden_answers]
            if missing:
                raise ValueError(
                    f"prompt_style 'reference' needs each query's question and gold answers; requests {missing[:5]} "
                    "lack them (send 'questions' and 'golden_answers' with every search)"
                )
        with self._lock:  # draws and seeds in call order, so runs repeat
            modes = draw_modes(requests, self.config.noise_probability, self._rng)
            seed = int(self._rng.integers(2**31 - 1))
        batch = [self.build_prompt(r, m) for r, m in zip(requests, modes, strict=True)]
        try:
            completions = self._generate(batch, self._sampling(requests, seed))
        except _BACKEND_ERRORS as err:
            raise SearchError(f"simulator {self.generator.name!r} failed on {len(batch)} queries: {err}") from err
        if len(completions) != len(batch):
            raise SearchError(
                f"simulator {self.generator.name!r} returned {len(completions)} completions for {len(batch)} prompts"
            )
        return [self._result(r, m, c) for r, m, c in zip(requests, modes, completions, strict=True)]

    def _generate(self, prompts: list[str], params: SamplingParams) -> list[Completion]:
        """One batched generation. A local transformers simulator prefills the prompts' shared prefix (the
        instruction and one-shot example) once for the batch (``share_prompt_prefix``); servers such as
        vLLM cache prefixes themselves, so other generators get the prompts as they are."""
        if self.config.share_prompt_prefix and hasattr(self.generator, "generate_ids") and hasattr(
            self.generator, "encode"
        ):
            from zerosearch.llm.continuation import generate_sharing_prefix

            return generate_sharing_prefix(self.generator, [self.generator.encode(p) for p in prompts], params)
        return self.generator.generate(prompts, params)

    def _result(self, request: SearchRequest, mode: NoiseMode, completion: Completion) -> SearchResult:
        text = completion.text
        if completion.stop_string and text.endswith(completion.stop_string):
            text = text[: -len(completion.stop_string)]
        if self.prime:
            text = prompts.PRIME + text
        parsed = parse_documents(text, request.top_k)
        if parsed.recovered < request.top_k:
            logger.info("simulator wrote %d of %d documents for %r", parsed.recovered, request.top_k, request.query)
        documents = [Document(title="", text=doc) for doc in parsed.documents]
        extra = {"finish_reason": completion.finish_reason, "numbered": parsed.numbered, "raw_output": completion.text}
        return SearchResult(
            query=request.query, documents=documents, mode=mode, recovered=parsed.recovered, extra=extra
        )


def _check_reference_generator(generator: TextGenerator, use_chat_template: bool, chat_api: bool) -> None:
    """The reference's format needs its chat roles: a local chat template, or a chat API that sends the
    empty system message (``system_prompt=""``) before our user message."""
    if chat_api:
        if getattr(generator, "system_prompt", None) != prompts.REFERENCE_SYSTEM_PROMPT:
            raise ValueError(
                f"prompt_style 'reference' needs generator {generator.name!r} to send the reference's empty system "
                "message: build it with system_prompt='' (build_engine does this from the engine config)"
            )
        return
    if not use_chat_template:
        raise ValueError(
            f"prompt_style 'reference' needs chat roles (an empty system message, then the user message), but "
            f"generator {generator.name!r} has neither a tokenizer with a chat template nor a chat API; serve the "
            "simulator behind an OpenAI-compatible /v1/chat/completions (api: chat) or load one with a chat template"
        )
