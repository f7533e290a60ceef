"""``prompt_style: reference``: the ZeroSearch reference's fine-tuned-simulator format, byte for byte.

The expected strings below were written by hand from the format of ``search_simulate_sft`` in the reference's
``llm_agent/generation.py`` (github.com/Alibaba-NLP/ZeroSearch, commit 2d4cdca033ee2c11b1fcfc7fc448b902d7cf8bf5):
an f-string whose lines are "You are the Google search engine." / "Given a query, you need to generate five
useful documents for the query." / "" / 'The user is trying to answer the question: "{problem}" whose answer
is {ground_truth}.' / "Each document should contain about 30 words, and these documents should contain useful
information." / "" / "Query: {query}" / "Useful Output:" and a final newline (noisy: "noisy" twice and "Noisy
Output:"); ``ground_truth`` is the FIRST gold answer (``ground_truth[index][0]``); ``ask_llm`` sends
``[{"role": "system", "content": ""}, {"role": "user", ...}]`` with ``max_tokens=600``; the output is cut with
``.split(f'Doc {topk+1}')[0]``.

The engine tests talk over real HTTP to a recording OpenAI-compatible server on loopback: it stands in for
SGLang / vLLM serving a released simulator (Simulation_LLM_google_14B_V2 and kin), which cannot run here, and
lets the test read exactly what the engine sent. The local-model test uses the real SmolLM2 tokenizer and model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from pydantic import ValidationError

from zerosearch.llm.factory import GeneratorConfig
from zerosearch.search import simulator_prompts as sp
from zerosearch.search.base import SearchRequest
from zerosearch.search.factory import SimulatedEngineConfig, build_engine, engine_config_from_flags

QUESTION = "who got the first nobel prize in physics"
ANSWERS = ("Wilhelm Conrad Röntgen", "Röntgen")
QUERY = "first nobel prize in physics winner"

EXPECTED_USEFUL = (
    "You are the Google search engine.\n"
    "Given a query, you need to generate five useful documents for the query.\n"
    "\n"
    'The user is trying to answer the question: "who got the first nobel prize in physics" whose answer is '
    "Wilhelm Conrad Röntgen.\n"
    "Each document should contain about 30 words, and these documents should contain useful information.\n"
    "\n"
    "Query: first nobel prize in physics winner\n"
    "Useful Output:\n"
)
EXPECTED_NOISY = (
    "You are the Google search engine.\n"
    "Given a query, you need to generate five noisy documents for the query.\n"
    "\n"
    'The user is trying to answer the question: "who got the first nobel prize in physics" whose answer is '
    "Wilhelm Conrad Röntgen.\n"
    "Each document should contain about 30 words, and these documents should contain noisy information.\n"
    "\n"
    "Query: first nobel prize in physics winner\n"
    "Noisy Output:\n"
)


@pytest.mark.parametrize(("mode", "expected"), [("useful", EXPECTED_USEFUL), ("noisy", EXPECTED_NOISY)])
def test_reference_sft_is_the_references_text_character_by_character(mode, expected):
    got = sp.reference_sft(QUERY, 5, mode, question=QUESTION, answers=ANSWERS)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"character {i}: {g!r} != {e!r} in {got[max(0, i - 20):i + 20]!r}"


def test_only_the_first_gold_answer_and_surrounding_space_is_stripped():
    got = sp.reference_sft(f"  {QUERY}\n", 5, "useful", question=f" {QUESTION} ", answers=(" Röntgen ", "W. Röntgen"))
    assert "whose answer is Röntgen.\n" in got and "W. Röntgen" not in got
    assert got.endswith(f"Query: {QUERY}\nUseful Output:\n")
    assert f'question: "{QUESTION}" whose' in got


def test_count_follows_k_and_is_five_in_the_references_setting():
    assert "generate three useful documents" in sp.reference_sft(QUERY, 3, "useful", question=QUESTION,
                                                                   answers=ANSWERS)
    assert "generate 12 noisy documents" in sp.reference_sft(QUERY, 12, "noisy", question=QUESTION, answers=ANSWERS)
    assert sp.reference_cut(5) == "Doc 6" and sp.reference_cut(3) == "Doc 4"


def test_protocol_tags_in_the_inputs_are_neutralised():
    got = sp.reference_sft("x </information><answer>", 5, "useful", question="<search> q", answers=("<answer> a",))
    assert "<answer>" not in got and "</information>" not in got and "<search>" not in got


@pytest.mark.parametrize(("question", "answers"), [(None, ANSWERS), (QUESTION, None), (QUESTION, ()), ("  ", ANSWERS),
                                                   (QUESTION, ("",))])
def test_missing_question_or_answer_is_a_clear_error(question, answers):
    with pytest.raises(ValueError, match="needs the user's question and at least one gold answer"):
        sp.reference_sft(QUERY, 5, "useful", question=question, answers=answers)


def test_reference_prompt_has_the_empty_system_message_first():
    prompt = sp.reference_prompt(QUERY, 5, "noisy", question=QUESTION, answers=ANSWERS)
    assert prompt.messages == ({"role": "system", "content": ""}, {"role": "user", "content": EXPECTED_NOISY})
    assert prompt.text == EXPECTED_NOISY


# ------------------------------------------------------------------ config


def _served(**engine: object) -> SimulatedEngineConfig:
    generator = {"backend": "openai", "model": "Simulation_LLM_google_14B", "base_url": "http://127.0.0.1:9"}
    return SimulatedEngineConfig.model_validate({"generator": generator, "mode": "finetuned", **engine})


def test_reference_style_gives_a_served_generator_the_empty_system_message():
    assert _served(prompt_style="reference").generator.system_prompt == ""
    assert _served().generator.system_prompt is None  # our own style sends no system message
    flags = engine_config_from_flags("simulated", model="sim", url="http://127.0.0.1:9", mode="finetuned",
                                     prompt_style="reference")
    assert flags.prompt_style == "reference" and flags.generator.system_prompt == ""


@pytest.mark.parametrize(("engine", "generator", "message"), [
    ({"mode": "prompt"}, {}, "set mode: finetuned"),
    ({"include_question_and_answer": False}, {}, "include_question_and_answer: true"),
    ({"use_chat_template": False}, {}, "leave use_chat_template unset"),
    ({}, {"api": "completions"}, "api: chat"),
    ({}, {"system_prompt": "You are Qwen."}, "drop the generator's system_prompt"),
])
def test_reference_style_rejects_what_would_change_the_format(engine, generator, message):
    data = {"generator": {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9", **generator},
            "mode": "finetuned", "prompt_style": "reference", **engine}
    with pytest.raises(ValidationError, match=message):
        SimulatedEngineConfig.model_validate(data)


# ------------------------------------------------------------------ over HTTP, against a recording server


class _Recorder(ThreadingHTTPServer):
    """Answers every chat completion with ``reply`` (vLLM's shape, stop string reported) and keeps the bodies."""

    reply = "Doc 1: one\nDoc 2: two\n\nDoc 3: three\nDoc 4: four\nDoc 5: five\n"

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.bodies.append(body)
        stop = body.get("stop") or []
        payload = {"choices": [{"message": {"role": "assistant", "content": self.server.reply},
                                "finish_reason": "stop", "stop_reason": stop[0] if stop else None}]}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _reference_engine(recorder: _Recorder, **engine: object):
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    return build_engine(engine_config_from_flags("simulated", model="Simulation_LLM_google_14B", url=url,
                                                 mode="finetuned", prompt_style="reference", **engine))


def test_engine_sends_the_references_messages_tokens_and_cut(recorder):
    engine = _reference_engine(recorder, temperature=0.8, noise_probability=0.0)
    [result] = engine.search([SearchRequest(QUERY, top_k=5, question=QUESTION, golden_answers=ANSWERS)])
    [body] = recorder.bodies
    assert body["messages"] == [{"role": "system", "content": ""}, {"role": "user", "content": EXPECTED_USEFUL}]
    assert body["max_tokens"] == sp.REFERENCE_MAX_NEW_TOKENS == 600
    assert body["stop"] == ["Doc 6"]
    assert body["temperature"] == 0.8
    assert result.mode == "useful"
    assert [d.text for d in result.documents] == ["one", "two", "three", "four", "five"]


def test_engine_cuts_at_the_largest_k_and_keeps_k_per_query(recorder):
    engine = _reference_engine(recorder)
    requests = [SearchRequest(QUERY, top_k=2, question=QUESTION, golden_answers=ANSWERS, mode="noisy"),
                SearchRequest("nobel physics 1901", top_k=4, question=QUESTION, golden_answers=ANSWERS)]
    results = engine.search(requests)
    assert [b["stop"] for b in recorder.bodies] == [["Doc 5"], ["Doc 5"]]
    by_user = {b["messages"][1]["content"] for b in recorder.bodies}
    assert EXPECTED_NOISY.replace("five", "two") in by_user
    assert [len(r.documents) for r in results] == [2, 4]


def test_engine_refuses_a_request_without_question_or_answers(recorder):
    engine = _reference_engine(recorder)
    with pytest.raises(ValueError, match="needs each query's question and gold answers"):
        engine.search([SearchRequest(QUERY, top_k=5, question=QUESTION)])
    assert recorder.bodies == []


def test_engine_refuses_a_chat_generator_without_the_empty_system_message(recorder):
    from zerosearch.llm.openai_backend import OpenAIGenerator
    from zerosearch.search.simulated import SimulatedSearchEngine

    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    config = _served(prompt_style="reference")
    with pytest.raises(ValueError, match="empty system message"):
        SimulatedSearchEngine(OpenAIGenerator(url, "m"), config)
    with pytest.raises(ValueError, match="needs chat roles"):
        SimulatedSearchEngine(OpenAIGenerator(url, "m", api="completions"), config)


def test_service_answers_with_questions_and_422s_without(recorder):
    from zerosearch.service import ServerThread, ServiceSettings, create_app

    engine = _reference_engine(recorder)
    with ServerThread(create_app(engine, ServiceSettings(batch_window_ms=5))) as srv:
        ok = httpx.post(f"{srv.url}/retrieve", timeout=30, json={
            "queries": [QUERY], "topk": 5, "questions": [QUESTION], "golden_answers": [list(ANSWERS)],
            "mode": "noisy"})
        bad = httpx.post(f"{srv.url}/retrieve", timeout=30, json={"queries": [QUERY, "x"], "topk": 5,
                                                                  "questions": [QUESTION, None]})
        reference_shape = httpx.post(f"{srv.url}/search", timeout=30, json={"query": QUERY, "top_k": 5})
    assert ok.status_code == 200, ok.text
    assert [d["contents"] for d in ok.json()["result"][0]] == ["one", "two", "three", "four", "five"]
    assert recorder.bodies[0]["messages"][1]["content"] == EXPECTED_NOISY
    assert bad.status_code == 422 and bad.json()["error"] == "missing_steering" and bad.json()["queries"] == [0, 1]
    assert reference_shape.status_code == 422 and "golden_answers" in reference_shape.json()["detail"]
    assert len(recorder.bodies) == 1  # the refused requests never reached the simulator


def test_serve_cli_builds_the_reference_engine_config(tmp_path):
    from zerosearch.cli.serve import _configs

    flags = {"model": "Simulation_LLM_google_7B", "url": "http://127.0.0.1:6001", "mode": "finetuned",
             "prompt_style": "reference"}
    config = _configs(None, "simulated", flags, {})
    assert config.engine.prompt_style == "reference" and config.engine.mode == "finetuned"
    assert config.engine.generator.system_prompt == ""
    yaml_file = tmp_path / "serve.yaml"
    yaml_file.write_text("engine:\n  kind: simulated\n  mode: finetuned\n  prompt_style: reference\n"
                         "  generator: {backend: openai, model: sim, base_url: 'http://127.0.0.1:6001'}\n")
    assert _configs(yaml_file, None, {}, {}).engine.generator.system_prompt == ""


@pytest.mark.slow
def test_local_simulator_renders_the_messages_with_its_chat_template_unprimed(smollm2_path):
    """The real SmolLM2 tokenizer and model: the prompt is the chat template over (empty system, user message)
    with the generation prompt and nothing after it (the reference's simulators write "Doc 1:" themselves)."""
    from transformers import AutoTokenizer

    from zerosearch.llm.transformers_backend import TransformersGenerator

    generator = TransformersGenerator.from_pretrained(smollm2_path, device="cpu", dtype="float32")
    config = SimulatedEngineConfig(generator=GeneratorConfig(model=smollm2_path, device="cpu"), mode="finetuned",
                                   prompt_style="reference", max_new_tokens=8)
    engine = build_engine(config, generator=generator)
    request = SearchRequest(QUERY, top_k=5, question=QUESTION, golden_answers=ANSWERS)
    rendered = engine.build_prompt(request, "useful")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    expected = tokenizer.apply_chat_template(
        [{"role": "system", "content": ""}, {"role": "user", "content": EXPECTED_USEFUL}],
        tokenize=False, add_generation_prompt=True)
    assert rendered == expected and not rendered.endswith(sp.PRIME)
    assert "SmolLM" not in rendered  # the empty system message replaced the template's default one
    [result] = engine.search([request])
    assert result.extra["raw_output"] is not None and result.mode in ("useful", "noisy")


def test_the_shipped_serve_config_for_released_simulators():
    """configs/verl/serve_released_simulator.yaml: what docs/gpu.md and the verl cluster configs point at."""
    from pathlib import Path

    from zerosearch.cli.serve import _configs

    path = Path(__file__).resolve().parents[1] / "configs" / "verl" / "serve_released_simulator.yaml"
    config = _configs(path, None, {}, {"port": 8000})
    engine = config.engine
    assert (engine.mode, engine.prompt_style, engine.max_new_tokens, engine.temperature) == (
        "finetuned", "reference", 600, 0.8)
    assert engine.generator.api == "chat" and engine.generator.system_prompt == ""
    assert config.service.default_top_k == 5 and config.service.curriculum.p_end == 0.5
