"""The evaluated methods, one signature for all: ``method(examples) -> list[QuestionRecord]``.

The paper's main table compares answering without retrieval (direct, chain-of-thought), answering after one
retrieval with the question (RAG) and the trained search agent. Each is a small class built from parts passed
in (a generator, an engine), so any backend and any engine work:

- ``direct``: instruction asking for the answer inside ``<answer>`` right away;
- ``cot``: think step by step inside ``<think>``, then ``<answer>``;
- ``rag``: retrieve the top-k documents for the question, list them in the prompt, then ``<answer>``;
- ``agent``: the policy protocol through :func:`zerosearch.rollout.run_rollout` (greedy, one sample).

Answer extraction (decided here, for every method): the prediction is the last ``<answer>…</answer>`` in the
text the model *generated* (:func:`zerosearch.rewards.extract_answer`). There is no fallback to the whole
generated text: a model that ignores the format gets ``prediction=None`` and scores 0, and the table reports
the share of questions answered in format, so format failures are visible instead of being scored leniently
(cover-EM on free text would reward rambling). The prompt is never scanned, so its example answer cannot score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from zerosearch.data.types import QAExample
from zerosearch.llm.base import Completion, SamplingParams, TextGenerator
from zerosearch.protocol import ANSWER_CLOSE, render_prompt, sanitize
from zerosearch.rewards import extract_answer, score_all
from zerosearch.search.base import SearchEngine, SearchRequest

DIRECT_TEMPLATE = (
    "Answer the question below directly, without explanation. Write only the final answer inside <answer> and "
    "</answer>, for example <answer> Beijing </answer>. Question: {question}"
)
COT_TEMPLATE = (
    "Answer the question below. First reason step by step inside <think> and </think>, then write the final "
    "answer inside <answer> and </answer> with no explanation, for example <answer> Beijing </answer>. "
    "Question: {question}"
)
RAG_TEMPLATE = (
    "Answer the question below using the documents. Write only the final answer inside <answer> and </answer> "
    "with no explanation, for example <answer> Beijing </answer>.\n\nDocuments:\n{documents}\n\n"
    "Question: {question}"
)
METHOD_NAMES = ("direct", "cot", "rag", "agent")


@dataclass
class QuestionRecord:
    """One method's result on one question (one line of ``records.jsonl``).

    ``prediction``: the extracted answer, None when the model never wrote ``<answer>…</answer>``.
    ``turns``: per-turn dicts (``kind``, ``content``, ``text``, …); one turn for single-shot methods.
    ``queries`` / ``documents``: each executed search and its passages; ``n_searches`` = ``len(queries)``.
    ``generated_tokens``: tokens the model generated (None when the backend does not report ids).
    """

    method: str
    dataset: str
    id: str
    question: str
    golds: list[str]
    prediction: str | None
    metrics: dict[str, float]
    generated_text: str = ""
    turns: list[dict[str, Any]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    documents: list[list[str]] = field(default_factory=list)
    n_searches: int = 0
    truncated: bool = False
    generated_tokens: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes a record unique in a run: (method, dataset, id)."""
        return (self.method, self.dataset, self.id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (one JSONL line)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionRecord:
        """Read a record back; unknown keys are an error (a file from another tool, or a newer version)."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown record fields {sorted(unknown)}")
        return cls(**data)


class EvalMethod(Protocol):
    """What the harness runs: a name and a call from examples to one record per example, in order."""

    name: str

    def __call__(self, examples: Sequence[QAExample]) -> list[QuestionRecord]:
        """Answer every example."""
        ...


def _scored_fields(method: str, example: QAExample, prediction: str | None) -> dict[str, Any]:
    """The record fields every method fills the same way: who, what was asked, and the scores."""
    return {
        "method": method, "dataset": example.dataset, "id": example.id, "question": example.question,
        "golds": list(example.golden_answers), "prediction": prediction,
        "metrics": score_all(prediction, example.golden_answers),
    }


def single_turn_record(
    method: str, example: QAExample, completion: Completion, *, queries: list[str], documents: list[list[str]]
) -> QuestionRecord:
    """Score one single-shot completion (direct / CoT / RAG)."""
    prediction = extract_answer(completion.text)
    return QuestionRecord(
        **_scored_fields(method, example, prediction),
        generated_text=completion.text,
        turns=[{"kind": "answer" if prediction is not None else "invalid", "content": prediction or "",
                "text": completion.text, "finish_reason": completion.finish_reason}],
        queries=queries,
        documents=documents,
        n_searches=len(queries),
        truncated=completion.finish_reason == "length",
        generated_tokens=len(completion.token_ids) if completion.token_ids is not None else None,
    )


def _check_template(template: str, *placeholders: str) -> str:
    for name in placeholders:
        if template.count("{" + name + "}") != 1:
            raise ValueError(f"method template must contain {{{name}}} exactly once: {template[:80]!r}...")
    return template


@dataclass
class PromptedAnswer:
    """Direct answer or chain-of-thought: one generation from an instruction, no retrieval."""

    name: str
    generator: TextGenerator
    template: str
    params: SamplingParams
    use_chat_template: bool | None = None

    def __post_init__(self) -> None:
        _check_template(self.template, "question")

    def prompt(self, example: QAExample) -> str:
        """The rendered prompt (chat template when the generator's tokenizer has one)."""
        tokenizer = getattr(self.generator, "tokenizer", None)
        return render_prompt(example.question, tokenizer, self.template, self.use_chat_template)

    def __call__(self, examples: Sequence[QAExample]) -> list[QuestionRecord]:
        """Generate once per example (one batched call) and score."""
        completions = self.generator.generate([self.prompt(ex) for ex in examples], self.params)
        pairs = zip(examples, completions, strict=True)
        return [single_turn_record(self.name, ex, c, queries=[], documents=[]) for ex, c in pairs]


@dataclass
class RetrieveThenAnswer:
    """RAG: search once with the question itself, list the top-k passages in the prompt, answer.

    ``pass_answers_to_engine``: hand the gold answers to the engine with the request (only a simulated
    engine reads them; at evaluation that leaks the answer, so it is off unless asked for).
    """

    generator: TextGenerator
    engine: SearchEngine
    params: SamplingParams
    top_k: int = 3
    template: str = RAG_TEMPLATE
    use_chat_template: bool | None = None
    pass_answers_to_engine: bool = False
    name: str = "rag"

    def __post_init__(self) -> None:
        _check_template(self.template, "question", "documents")

    def _request(self, example: QAExample) -> SearchRequest:
        golds = example.golden_answers if self.pass_answers_to_engine else None
        return SearchRequest(query=example.question, top_k=self.top_k, question=example.question, golden_answers=golds)

    def prompt(self, example: QAExample, passages: list[str]) -> str:
        """The rendered prompt with ``Doc i:`` lines (sanitised, so a passage cannot open a tag)."""
        listing = "\n".join(f"Doc {i}: {sanitize(p).strip()}" for i, p in enumerate(passages, start=1))
        # Fill {documents} first; a literal "{question}" inside a passage must not be substituted later.
        text = self.template.replace("{documents}", (listing or "No results.").replace("{question}", "{ question }"))
        tokenizer = getattr(self.generator, "tokenizer", None)
        return render_prompt(example.question, tokenizer, text, self.use_chat_template)

    def __call__(self, examples: Sequence[QAExample]) -> list[QuestionRecord]:
        """One batched search for all questions, then one batched generation."""
        results = self.engine.search([self._request(ex) for ex in examples])
        passages = [[d.as_passage() for d in r.documents[: self.top_k]] for r in results]
        prompts = [self.prompt(ex, docs) for ex, docs in zip(examples, passages, strict=True)]
        completions = self.generator.generate(prompts, self.params)
        return [
            single_turn_record(self.name, ex, c, queries=[ex.question], documents=[docs])
            for ex, c, docs in zip(examples, completions, passages, strict=True)
        ]


@dataclass
class SearchAgent:
    """The search agent: the policy's multi-turn protocol with the given engine (via the shared rollout).

    ``policy`` must expose token-level generation (:class:`TransformersGenerator`); ``rollout_config`` is a
    :class:`zerosearch.rollout.RolloutConfig`, greedy with one sample for evaluation by default.
    """

    policy: Any
    engine: SearchEngine
    rollout_config: Any
    seed: int = 0
    name: str = "agent"

    def __call__(self, examples: Sequence[QAExample]) -> list[QuestionRecord]:
        """Run one rollout batch and turn each episode into a record (first sample of each group)."""
        from zerosearch.rollout import run_rollout

        episodes = run_rollout(self.policy, self.engine, list(examples), self.rollout_config, seed=self.seed)
        n = self.rollout_config.n_samples
        return [episode_record(self.name, episodes[i * n]) for i in range(len(examples))]


def episode_record(method: str, episode: Any) -> QuestionRecord:
    """Score an :class:`Episode` (answer from its policy text only) into a record."""
    example: QAExample = episode.example
    turns = [{k: v for k, v in asdict(t).items() if k not in ("start", "end", "injected_start", "injected_end")}
             for t in episode.turns]
    return QuestionRecord(
        **_scored_fields(method, example, episode.answer),
        generated_text=episode.generated_text,
        turns=turns,
        queries=list(episode.queries),
        documents=[list(d) for d in episode.documents],
        n_searches=len(episode.queries),
        truncated=bool(episode.truncated),
        generated_tokens=int(sum(episode.response_mask)),
    )


@dataclass(frozen=True)
class MethodSettings:
    """Shared knobs for building the methods from names (the CLI fills these from flags)."""

    max_new_tokens: int = 256
    top_k: int = 3
    use_chat_template: bool | None = None
    pass_answers_to_engine: bool = False
    seed: int = 0
    rollout: Any = None  # a RolloutConfig for the agent; None: greedy defaults
    temperature: float = 0.0  # direct / cot / rag decoding (0: greedy, the paper's); the agent's is the rollout's
    direct_template: str = DIRECT_TEMPLATE  # e.g. a policy's own instruction, for a model trained on it
    rag_template: str = RAG_TEMPLATE

    def sampling(self) -> SamplingParams:
        """Decoding at ``temperature`` (greedy by default) that stops after ``</answer>``."""
        return SamplingParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature, stop=(ANSWER_CLOSE,),
                              seed=self.seed)


def _needs_engine(name: str, engine: SearchEngine | None) -> SearchEngine:
    if engine is None:
        raise ValueError(f"method {name!r} needs a search engine: pass --engine (and its --corpus / --url)")
    return engine


def default_rollout_config(settings: MethodSettings) -> Any:
    """Greedy, single-sample rollout settings for evaluation (the paper evaluates greedily)."""
    from zerosearch.rollout import RolloutConfig

    if settings.rollout is not None:
        return settings.rollout
    return RolloutConfig(temperature=0.0, n_samples=1, top_k_documents=settings.top_k,
                         use_chat_template=settings.use_chat_template)


_BUILDERS: dict[str, Callable[[TextGenerator, SearchEngine | None, MethodSettings], EvalMethod]] = {
    "direct": lambda g, _e, s: PromptedAnswer("direct", g, s.direct_template, s.sampling(), s.use_chat_template),
    "cot": lambda g, _e, s: PromptedAnswer("cot", g, COT_TEMPLATE, s.sampling(), s.use_chat_template),
    "rag": lambda g, e, s: RetrieveThenAnswer(g, _needs_engine("rag", e), s.sampling(), s.top_k, s.rag_template,
                                              use_chat_template=s.use_chat_template,
                                              pass_answers_to_engine=s.pass_answers_to_engine),
    "agent": lambda g, e, s: SearchAgent(g, _needs_engine("agent", e), default_rollout_config(s), seed=s.seed),
}


def build_methods(
    names: Sequence[str], generator: TextGenerator, engine: SearchEngine | None, settings: MethodSettings
) -> list[EvalMethod]:
    """Build methods by name (``direct``, ``cot``, ``rag``, ``agent``), in the order given."""
    unknown = [n for n in names if n not in _BUILDERS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHOD_NAMES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"methods repeat: {list(names)}")
    return [_BUILDERS[n](generator, engine, settings) for n in names]
