"""The simulator's prompts, in our own wording: what the LLM playing the search engine is asked.

Two modes (ZeroSearch, Sec. 3): *prompt-based* — an instruction model told to act as a search engine,
shown one worked example (a query and its "Doc i:" results), then the real query; *fine-tuned* — a short
structured prompt for a model SFT-ed on (query, question, answer, kind) -> documents.

A third rendering, :func:`reference_sft`, is not ours: it is the input format of the ZeroSearch reference's
fine-tuned simulators (``search_simulate_sft`` in its ``llm_agent/generation.py``), the format its released
simulation LLMs were trained on. ``prompt_style: reference`` sends it (see ``search/simulated.py``).

Useful results should contain what answers the user's question; noisy results stay on the query's topic
but leave the answer out. As in the reference, the prompt-based noisy request carries neither question
nor answer (the simulator cannot leak what it is not told). ``include_question_and_answer`` switches the
hint off for useful requests too (see MINIATURE-FINDINGS: a hinted simulator rewards bad queries).

Every prompt ends with ``Doc 1:`` so even a small model starts in the right format; the engine puts the
prefix back in front of the completion before parsing. Queries, questions and answers are sanitised
(``protocol.sanitize``) before they enter a prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from zerosearch.protocol import sanitize

NoiseMode = Literal["useful", "noisy"]
PRIME = "Doc 1:"
#: In plain-text prompts the next example would start with this; generation stops there.
QUERY_HEADER = "Search query:"
RESULTS_HEADER = "Results:"
QUESTION_LABEL = "The user's question:"
ANSWER_LABEL = "Correct answer:"
KIND_LABEL = "Kind of results:"
COUNT_LABEL = "Number of results:"
#: Line starts that belong to a prompt, never to a document: a model echoing them has left its results.
PROMPT_LINE_STARTS = (QUERY_HEADER, QUESTION_LABEL, ANSWER_LABEL, KIND_LABEL, COUNT_LABEL, RESULTS_HEADER)

_ROLE = "You are acting as a web search engine. Someone typed the search query shown below."
_FORMAT = (
    'Reply with exactly {k} search results and nothing else: one per line, labelled "Doc 1:" up to "Doc {k}:", '
    "each about {words} words of plain, factual text written like a snippet from a web page."
)
_USEFUL = "Make the results useful: taken together they should contain the information that answers the question."
_NOISY = (
    "Make the results noisy: they should be about the same topic as the query and read like real search "
    "results, but must not contain the information that answers it."
)

_EXAMPLE_QUERY = "apollo 11 moon landing year"
_EXAMPLE_QUESTION = "In which year did Apollo 11 land on the Moon?"
_EXAMPLE_ANSWERS = ("1969",)
_EXAMPLE_USEFUL = (
    "Apollo 11 was the NASA mission that first landed people on the Moon: Neil Armstrong and Buzz Aldrin "
    "touched down in the lunar module Eagle on July 20, 1969.",
    "The lunar module landed in the Sea of Tranquility on 20 July 1969 while Michael Collins stayed in lunar "
    "orbit aboard the command module Columbia.",
    "A Saturn V rocket launched Apollo 11 from Kennedy Space Center on July 16, 1969; the crew reached lunar "
    "orbit three days later and landed on July 20.",
    "Neil Armstrong stepped onto the Moon a few hours after the July 1969 landing, calling it one small step "
    "for a man and a giant leap for mankind.",
    "The Apollo 11 crew splashed down in the Pacific Ocean on July 24, 1969 and was recovered by the aircraft "
    "carrier USS Hornet.",
    "The 1969 landing met the goal President John F. Kennedy had set in 1961: to land a man on the Moon before "
    "the end of the decade.",
    "During the July 1969 moonwalk the astronauts spent about two and a half hours outside the lunar module and "
    "collected rock and soil samples.",
    "Hundreds of millions of people watched the live television broadcast of the Apollo 11 landing and moonwalk "
    "in July 1969.",
    "Apollo 12 followed in November 1969, so the first two crewed Moon landings both took place in 1969.",
    "In 2019 museums marked fifty years since the July 1969 Apollo 11 landing with exhibitions and events.",
)
_EXAMPLE_NOISY = (
    "The Apollo program was run by NASA and used the Saturn V, the most powerful rocket the agency had flown "
    "at the time, for its lunar missions.",
    "Buzz Aldrin was born in Glen Ridge, New Jersey, and flew combat missions as a fighter pilot before "
    "joining the astronaut corps.",
    "The surface of the Moon is covered by regolith, a layer of fine dust and broken rock formed by countless "
    "meteorite impacts.",
    "Apollo 13 had to abandon its planned landing after an oxygen tank exploded on the way to the Moon; its "
    "crew returned safely.",
    "Many films and documentaries retell the space race between the United States and the Soviet Union and "
    "the people behind it.",
    "The Sea of Tranquility is a dark plain on the Moon formed by ancient lava flows, visible from Earth "
    "without a telescope.",
    "Michael Collins later became director of the National Air and Space Museum of the Smithsonian "
    "Institution in Washington, D.C.",
    "The Soviet Luna program sent robotic probes to the Moon, including landers that brought soil samples "
    "back to Earth.",
    "Kennedy Space Center on Merritt Island, Florida, is NASA's main launch site and runs a visitor complex "
    "open to the public.",
    "Lunar samples are kept in a curation facility at the Johnson Space Center in Houston and lent to "
    "researchers around the world.",
)
MAX_EXAMPLE_DOCUMENTS = len(_EXAMPLE_USEFUL)


@dataclass(frozen=True)
class SimulatorPrompt:
    """One prompt in two renderings: chat ``messages`` (for chat templates / chat APIs) and plain ``text``.

    Neither ends with :data:`PRIME`; :func:`render` appends it when the engine renders the prompt itself.
    """

    messages: tuple[dict[str, str], ...]
    text: str


def format_documents(documents: list[str] | tuple[str, ...]) -> str:
    """The answer format the simulator is asked for (also the SFT target): ``Doc i: text`` lines.

    >>> format_documents(["a", "b"])
    'Doc 1: a\\nDoc 2: b'
    """
    return "\n".join(f"Doc {i}: {doc.strip()}" for i, doc in enumerate(documents, start=1))


def _hint(question: str | None, answers: tuple[str, ...] | None) -> str:
    """The question/answer lines, or "" when neither is known."""
    lines = []
    if question:
        lines.append(f"{QUESTION_LABEL} {sanitize(question.strip())}")
    if answers:
        lines.append(f"{ANSWER_LABEL} {' | '.join(sanitize(a.strip()) for a in answers)}")
    return "\n".join(lines)


def _instruction(query: str, k: int, mode: NoiseMode, hint: str, words: int) -> str:
    parts = [_ROLE, _FORMAT.format(k=k, words=words), _USEFUL if mode == "useful" else _NOISY]
    if mode == "useful" and hint:
        parts.append(hint)
    return "\n".join(parts) + f"\n\n{QUERY_HEADER} {sanitize(query.strip())}"


def prompt_based(
    query: str,
    k: int,
    mode: NoiseMode,
    *,
    question: str | None = None,
    answers: tuple[str, ...] | None = None,
    words: int = 30,
) -> SimulatorPrompt:
    """Instruction + one worked example (min(k, 10) documents of the requested kind) + the real query.

    ``question``/``answers`` are used only for useful requests, and only if given (pass None to leave
    them out). The example shows the same kind (useful/noisy) as the request.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    example_docs = (_EXAMPLE_USEFUL if mode == "useful" else _EXAMPLE_NOISY)[: min(k, MAX_EXAMPLE_DOCUMENTS)]
    example_hint = _hint(_EXAMPLE_QUESTION, _EXAMPLE_ANSWERS) if (question or answers) else ""
    example_user = _instruction(_EXAMPLE_QUERY, len(example_docs), mode, example_hint, words)
    example_reply = format_documents(example_docs)
    user = _instruction(query, k, mode, _hint(question, answers), words)
    messages = (
        {"role": "user", "content": example_user},
        {"role": "assistant", "content": example_reply},
        {"role": "user", "content": user},
    )
    text = f"{example_user}\n{RESULTS_HEADER}\n{example_reply}\n\n{user}\n{RESULTS_HEADER}\n"
    return SimulatorPrompt(messages=messages, text=text)


def finetuned(
    query: str,
    k: int,
    mode: NoiseMode,
    *,
    question: str | None = None,
    answers: tuple[str, ...] | None = None,
) -> SimulatorPrompt:
    """The short prompt of a fine-tuned simulator: query, optional question/answer, kind and k.

    Unlike the prompt-based mode, the hint is given for noisy requests too: the tuned model learned to
    keep the answer out when the kind says noisy. SFT data should be built with this function and
    :func:`format_documents` as the target, so training and serving share one format.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    lines = [f"{QUERY_HEADER} {sanitize(query.strip())}"]
    hint = _hint(question, answers)
    if hint:
        lines.append(hint)
    lines += [f"{KIND_LABEL} {mode}", f"{COUNT_LABEL} {k}"]
    user = "\n".join(lines)
    return SimulatorPrompt(messages=({"role": "user", "content": user},), text=f"{user}\n{RESULTS_HEADER}\n")


def has_chat_template(tokenizer: Any | None) -> bool:
    """True when ``tokenizer`` can render chat messages."""
    return tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))


def render(prompt: SimulatorPrompt, tokenizer: Any | None, use_chat_template: bool, prime: bool = True) -> str:
    """The final prompt string: the chat template applied to ``messages``, or the plain ``text``.

    With ``prime`` the string ends with ``Doc 1:`` (the assistant's reply already begun).
    """
    if use_chat_template:
        if not has_chat_template(tokenizer):
            raise ValueError("use_chat_template is on but the simulator's tokenizer has no chat template; turn it off")
        rendered = tokenizer.apply_chat_template(list(prompt.messages), tokenize=False, add_generation_prompt=True)
    else:
        rendered = prompt.text
    return rendered + PRIME if prime else rendered


#: Fine-tuning recipes and whether their prompts carry the question and gold answers (the paper's hint).
#: ``hinted``: query + question + answer + kind -> documents (ZeroSearch); ``imitate``: query + kind ->
#: what the real engine returned (no hint; MINIATURE-FINDINGS, "Second round").
RECIPE_HINT = {"hinted": True, "imitate": False}


def finetuned_sft_pair(
    query: str,
    k: int,
    mode: NoiseMode,
    documents: list[str] | tuple[str, ...],
    *,
    question: str | None = None,
    answers: tuple[str, ...] | None = None,
) -> tuple[str, str]:
    """One SFT pair for a fine-tuned simulator: (the prompt exactly as the engine renders it in
    ``finetuned`` mode without a chat template, ending in ``Doc 1:``; the completion that follows).

    ``prompt + completion`` is the un-primed prompt followed by :func:`format_documents`; with no
    documents the completion is empty (the model learns to stop, like an engine with no result).

    >>> finetuned_sft_pair("x y", 2, "useful", ["a", "b"])
    ('Search query: x y\\nKind of results: useful\\nNumber of results: 2\\nResults:\\nDoc 1:', ' a\\nDoc 2: b')
    """
    prompt = render(finetuned(query, k, mode, question=question, answers=answers), None, use_chat_template=False)
    target = format_documents(list(documents)) if documents else PRIME
    return prompt, target[len(PRIME) :]


# ---------------------------------------------------------------------------------------------------------
# The reference's fine-tuned-simulator format (Alibaba-NLP/ZeroSearch, llm_agent/generation.py,
# search_simulate_sft, commit 2d4cdca033ee2c11b1fcfc7fc448b902d7cf8bf5). Its released simulation LLMs
# (Simulation_LLM_{google,wiki}_{3B,7B,14B}_V2) were tuned on exactly this text, sent as the user message
# after an EMPTY system message; their output is cut before "Doc k+1". Written here from that format.

#: The reference's system message: present, and empty (a chat template then writes no default system prompt).
REFERENCE_SYSTEM_PROMPT = ""
#: The reference asked its server for at most this many new tokens (``max_tokens=600``).
REFERENCE_MAX_NEW_TOKENS = 600
_REFERENCE_TEMPLATE = (
    "You are the Google search engine.\n"
    "Given a query, you need to generate {count} {kind} documents for the query.\n"
    "\n"
    'The user is trying to answer the question: "{question}" whose answer is {answer}.\n'
    "Each document should contain about 30 words, and these documents should contain {kind} information.\n"
    "\n"
    "Query: {query}\n"
    "{label} Output:\n"
)
_COUNT_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _count_word(k: int) -> str:
    """The number of documents as the reference writes it ("five"); digits above ten."""
    return _COUNT_WORDS[k - 1] if k <= len(_COUNT_WORDS) else str(k)


def reference_sft(
    query: str,
    k: int,
    mode: NoiseMode,
    *,
    question: str | None = None,
    answers: tuple[str, ...] | None = None,
) -> str:
    """The user message of the reference's fine-tuned simulator: its wording, the question in quotes, the
    FIRST gold answer, and "useful" or "noisy" in three places.

    The reference always wrote "five" (every released script ran with TOPK 5); here the count is ``k`` in
    words, so at k = 5 the text is the reference's byte for byte, and another k asks for that many instead
    of asking for five and cutting. Both useful and noisy requests carry the question and answer, as in the
    reference: the tuned model learned to leave the answer out when asked for noisy documents. Query,
    question and answer are stripped and sanitised (``protocol.sanitize`` changes only protocol tags).

    >>> print(reference_sft("capital of france", 5, "noisy", question="What is the capital of France?",
    ...                     answers=("Paris", "Paris, France")))
    You are the Google search engine.
    Given a query, you need to generate five noisy documents for the query.
    <BLANKLINE>
    The user is trying to answer the question: "What is the capital of France?" whose answer is Paris.
    Each document should contain about 30 words, and these documents should contain noisy information.
    <BLANKLINE>
    Query: capital of france
    Noisy Output:
    <BLANKLINE>
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if mode not in ("useful", "noisy"):
        raise ValueError(f"mode must be 'useful' or 'noisy', got {mode!r}")
    if not question or not question.strip() or not answers or not answers[0].strip():
        raise ValueError(
            "the reference's simulator prompt needs the user's question and at least one gold answer "
            f"(got question={question!r}, answers={answers!r}); send them with every search "
            "(service: 'questions' and 'golden_answers'), or use prompt_style 'ours'"
        )
    return _REFERENCE_TEMPLATE.format(
        count=_count_word(k),
        kind=mode,
        question=sanitize(question.strip()),
        answer=sanitize(answers[0].strip()),
        query=sanitize(query.strip()),
        label=mode.capitalize(),
    )


def reference_cut(k: int) -> str:
    """Where the reference cuts the simulator's output: everything from ``Doc {k+1}`` on is dropped.

    >>> reference_cut(5)
    'Doc 6'
    """
    return f"Doc {k + 1}"


def reference_prompt(
    query: str,
    k: int,
    mode: NoiseMode,
    *,
    question: str | None = None,
    answers: tuple[str, ...] | None = None,
) -> SimulatorPrompt:
    """:func:`reference_sft` with the reference's chat roles: an empty system message, then the user message.

    ``text`` is the user message alone (what an OpenAI-compatible chat API sends after the system message).
    """
    user = reference_sft(query, k, mode, question=question, answers=answers)
    messages = ({"role": "system", "content": REFERENCE_SYSTEM_PROMPT}, {"role": "user", "content": user})
    return SimulatorPrompt(messages=messages, text=user)
