"""The zerosearch agent loop inside verl 0.9.1's own machinery, on CPU.

Real parts: verl's legacy-trainer ``AgentLoopWorker`` (our step-aware subclass, called in-process instead of
as a Ray actor; verl's default V1 worker needs a TransferQueue cluster and passes ``global_steps`` itself)
built from verl's own Hydra config, a batch made by verl's ``RLHFDataset`` + ``collate_fn`` from the parquet
``zerosearch data export-verl`` writes, a tiny Llama (SmolLM2's tokenizer) and a real ``zerosearch serve`` app
on loopback whose simulated engine runs that tiny model. The one stand-in is the rollout server (vLLM/SGLang
need a GPU): :class:`TransformersServerManager` answers verl's ``generate`` call with token ids and logprobs
from the tiny model — scripted turns are teacher-forced through it, so their logprobs are the model's own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from zerosearch.curriculum import CurriculumConfig
from zerosearch.data.exporters import write_verl_parquet
from zerosearch.data.types import QAExample
from zerosearch.llm.base import Completion, SamplingParams
from zerosearch.llm.factory import GeneratorConfig
from zerosearch.llm.transformers_backend import TransformersGenerator
from zerosearch.protocol import INVALID_ACTION_MESSAGE, STOP_STRINGS
from zerosearch.rewards import extract_answer
from zerosearch.rollout import rules
from zerosearch.search.factory import SimulatedEngineConfig
from zerosearch.search.remote import document_from_item
from zerosearch.search.simulated import SimulatedSearchEngine
from zerosearch.service import ServerThread, ServiceSettings, create_app

verl = pytest.importorskip("verl")  # collected only where verl is installed (see conftest.py)
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker  # noqa: E402
from verl.protocol import DataProto  # noqa: E402
from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn  # noqa: E402
from verl.workers.rollout.replica import TokenOutput  # noqa: E402

from zerosearch.integrations.verl.reward import compute_score, policy_text  # noqa: E402
from zerosearch.integrations.verl.step import StepAwareAgentLoopWorker  # noqa: E402

VERL_CONFIG_DIR = str(Path(verl.__file__).parent / "trainer" / "config")
EXAMPLES = [
    QAExample("q0", "Where did Evan Morris work as a lobbyist?", ("Genentech", "Roche"), "nq"),
    QAExample("q1", "Where is Pavia Cathedral?", ("Pavia",), "hotpotqa"),
    QAExample("q2", "Who was Horatio Hale?", ("ethnologist",), "nq"),
]
#: Per question: the text of each policy turn (None: the tiny model samples it).
SCRIPT = {
    "Evan Morris": ["<think> look it up </think><search> Evan Morris lobbyist </search>", "<answer> Roche </answer>"],
    "Pavia": ["I am not sure.", "<search> Pavia Cathedral </search>", "<search> Pavia Cathedral location </search>"],
    "Horatio": [None],
}
STEP, CURRICULUM = 37, CurriculumConfig(p_start=0.0, p_end=0.5, total_steps=100)
MAX_NEW_TOKENS = 40


class TransformersServerManager:
    """Stand-in for verl's ``LLMServerClient`` (no GPU rollout server here), same ``generate`` contract.

    Each call records its prompt ids, sampling params and the returned ids/logprobs; ``logprobs`` are
    returned only when verl asks for them, as vLLM does.
    """

    def __init__(self, generator: TransformersGenerator, script: dict | None = None) -> None:
        self.generator = generator
        self.script = SCRIPT if script is None else script
        self.turns: dict[str, int] = {}
        self.calls: list[dict] = []

    def _text_for(self, request_id: str, prompt_ids: list[int]) -> str | None:
        context = self.generator.tokenizer.decode(prompt_ids)
        key = next(k for k in self.script if k in context)
        turn = self.turns.get(request_id, 0)
        self.turns[request_id] = turn + 1
        script = self.script[key]
        return script[turn] if turn < len(script) else None

    def _forced(self, prompt_ids: list[int], text: str, limit: int) -> Completion:
        ids = self.generator.tokenizer(text, add_special_tokens=False)["input_ids"][:limit]
        with torch.no_grad():
            logits = self.generator.model(torch.tensor([prompt_ids + ids])).logits[0, len(prompt_ids) - 1 : -1]
        logprobs = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(ids)[:, None]).squeeze(-1)
        return Completion(text=text, token_ids=ids, logprobs=logprobs.tolist())

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict, **_: object):
        text = self._text_for(request_id, list(prompt_ids))
        limit = sampling_params.get("max_tokens", 64)  # verl's tool_agent sends none: the server picks
        if text is None:
            params = SamplingParams(max_new_tokens=limit, temperature=sampling_params["temperature"],
                                    stop=tuple(sampling_params.get("stop", ())), seed=len(self.calls))
            (completion,) = self.generator.generate_ids([list(prompt_ids)], params)
        else:
            completion = self._forced(list(prompt_ids), text, limit)
        logprobs = list(completion.logprobs) if sampling_params.get("logprobs") else None
        self.calls.append({"request_id": request_id, "prompt_ids": list(prompt_ids), "params": dict(sampling_params),
                           "ids": list(completion.token_ids), "logprobs": list(completion.logprobs)})
        return TokenOutput(token_ids=list(completion.token_ids), log_probs=logprobs, stop_reason="completed")


class RecordingSimulated(SimulatedSearchEngine):
    """The real simulated engine, remembering each request it was sent and the result it gave."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list = []

    def search(self, requests):
        results = super().search(requests)
        self.seen.extend(zip(requests, results, strict=True))
        return results


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, smollm2_path) -> tuple[str, TransformersGenerator]:
    """A 2-layer Llama with SmolLM2's tokenizer (and chat template), saved where verl's HFModelConfig loads it."""
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                         vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
    model = LlamaForCausalLM(config).eval()
    path = tmp_path_factory.mktemp("tiny-policy")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path), TransformersGenerator(model, tokenizer, batch_size=1)


@pytest.fixture(scope="module")
def service(tiny):
    """``zerosearch serve``'s app with a simulated engine on the tiny model, on a loopback port."""
    path, generator = tiny
    engine = RecordingSimulated(generator, SimulatedEngineConfig(generator=GeneratorConfig(model=path),
                                                                 max_new_tokens=12, seed=0))
    with ServerThread(create_app(engine, ServiceSettings(batch_window_ms=5, curriculum=CURRICULUM))) as srv:
        srv.engine = engine
        yield srv


def verl_config(model_path: str, service_url: str, *, response_length: int = 600, curriculum: bool = True):
    """verl's own ppo_trainer config, composed by Hydra, with the zerosearch section added."""
    overrides = [
        f"actor_rollout_ref.model.path={model_path}",
        "actor_rollout_ref.rollout.name=vllm",
        "actor_rollout_ref.rollout.prompt_length=1024",
        f"actor_rollout_ref.rollout.response_length={response_length}",
        "actor_rollout_ref.rollout.calculate_log_probs=true",
        "actor_rollout_ref.rollout.agent.default_agent_loop=zerosearch_agent",
        "data.return_raw_chat=true",
        f"+zerosearch.service_url={service_url}",
        "+zerosearch.top_k_documents=2",
        "+zerosearch.max_turns=2",
        f"+zerosearch.max_new_tokens={MAX_NEW_TOKENS}",
        f"+zerosearch.curriculum={str(curriculum).lower()}",
    ]
    with initialize_config_dir(config_dir=VERL_CONFIG_DIR, version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


def dataset_batch(config, tokenizer, tmp_path: Path) -> DataProto:
    """The generation batch verl's trainer would build: RLHFDataset over export-verl's parquet, collated."""
    parquet = write_verl_parquet(EXAMPLES, tmp_path / "train.parquet", split="train")
    dataset = RLHFDataset(data_files=[str(parquet)], tokenizer=tokenizer, config=config.data)
    batch = DataProto.from_single_dict(collate_fn([dataset[i] for i in range(len(dataset))]))
    batch.meta_info["global_steps"] = STEP
    return batch


def run_worker(worker_cls, config, manager, batch) -> DataProto:
    worker = worker_cls(config, llm_client=manager)
    return asyncio.run(worker.generate_sequences(batch))


@pytest.fixture(scope="module")
def rollout(tiny, service, tmp_path_factory):
    path, generator = tiny
    config = verl_config(path, f"{service.url}/retrieve")
    batch = dataset_batch(config, generator.tokenizer, tmp_path_factory.mktemp("data"))
    manager = TransformersServerManager(generator)
    output = run_worker(StepAwareAgentLoopWorker, config, manager, batch)
    return output, manager, generator.tokenizer


def unpadded(output: DataProto, i: int) -> tuple[list[int], list[int], list[float]]:
    """Row i's response ids, mask and rollout logprobs without verl's right padding."""
    n = int(output.batch["attention_mask"][i, output.batch["prompts"].shape[1]:].sum())
    return (output.batch["responses"][i, :n].tolist(), output.batch["response_mask"][i, :n].tolist(),
            output.batch["rollout_log_probs"][i, :n].tolist())


def row_of(output: DataProto, word: str) -> int:
    return next(i for i, text in enumerate(output.non_tensor_batch["zerosearch_generated_text"])
                if word in str(output.non_tensor_batch["raw_prompt"][i]))


def test_ids_masks_and_logprobs_are_the_servers_and_the_services(rollout, service):
    """Every mask-1 run is exactly what the rollout server returned (ids and logprobs, never re-encoded);
    every mask-0 run is the invalid-action message or the information block of what the service answered."""
    output, manager, tokenizer = rollout
    by_request: dict[str, list[dict]] = {}
    for call in manager.calls:
        by_request.setdefault(call["request_id"], []).append(call)
    assert len(by_request) == len(EXAMPLES)
    for calls in by_request.values():
        i = row_of(output, next(k for k in SCRIPT if k in tokenizer.decode(calls[0]["prompt_ids"])))
        ids, mask, logprobs = unpadded(output, i)
        prompt = output.batch["prompts"][i][output.batch["attention_mask"][i, : output.batch["prompts"].shape[1]] == 1]
        assert calls[0]["prompt_ids"] == prompt.tolist()
        pos = 0
        for call in calls:
            assert call["prompt_ids"] == prompt.tolist() + ids[:pos]  # each turn continues the exact ids
            assert call["params"]["stop"] == list(STOP_STRINGS) and call["params"]["include_stop_str_in_output"]
            n = len(call["ids"][: call["params"]["max_tokens"]])
            assert ids[pos : pos + n] == call["ids"][:n] and mask[pos : pos + n] == [1] * n
            assert logprobs[pos : pos + n] == pytest.approx(call["logprobs"][:n], abs=1e-6)
            pos += n
            injected = pos
            while injected < len(mask) and mask[injected] == 0:
                injected += 1
            if injected > pos:
                segment = ids[pos:injected]
                assert all(lp == 0.0 for lp in logprobs[pos:injected])
                assert segment in (rules.invalid_action_ids(tokenizer), *information_blocks(service, tokenizer))
            pos = injected
        assert pos == len(ids)


def information_blocks(service, tokenizer) -> list[list[int]]:
    """The information ids each result the engine gave would become, after the HTTP round trip."""
    blocks = []
    for _, result in service.engine.seen:
        docs = [document_from_item({"document": {"id": "x", "contents": d.contents}}, "") for d in result.documents]
        blocks.append(rules.information_ids(tokenizer, [d.as_passage() for d in docs]))
    return blocks


def test_turns_follow_the_rollout_rules(rollout):
    output, manager, tokenizer = rollout
    nt = output.non_tensor_batch
    q0, q1, q2 = (row_of(output, w) for w in ("Evan Morris", "Pavia", "Horatio"))
    # q0: search, information, answer
    assert nt["zerosearch_stop_reason"][q0] == "answer" and nt["zerosearch_queries"][q0] == ["Evan Morris lobbyist"]
    assert nt["__num_turns__"][q0] == 1 + 2 + 1
    # q1: invalid turn (message injected), a search, then the final turn whose search is not executed
    assert nt["zerosearch_stop_reason"][q1] == "max_turns"
    assert nt["zerosearch_queries"][q1] == ["Pavia Cathedral"]
    assert nt["__num_turns__"][q1] == 1 + 3 + 2
    assert INVALID_ACTION_MESSAGE.strip() in tokenizer.decode(unpadded(output, q1)[0], skip_special_tokens=True)
    # q2: the tiny model samples random tokens; whatever it did, the rules bounded it
    assert nt["zerosearch_stop_reason"][q2] in {"max_new_tokens", "max_turns", "max_response_tokens", "answer"}
    turns_q2 = sum(1 for c in manager.calls if c["request_id"] == manager.calls[-1]["request_id"])
    assert turns_q2 <= 3


def test_service_saw_step_derived_noise_probability_and_each_rows_question(rollout, service):
    output, _, _ = rollout
    assert list(output.non_tensor_batch["zerosearch_step"]) == [STEP] * len(EXAMPLES)
    requests = [request for request, _ in service.engine.seen]
    assert {r.query for r in requests} >= {"Evan Morris lobbyist", "Pavia Cathedral"}
    expected_p = CURRICULUM.probability(STEP)
    assert all(r.noise_probability == pytest.approx(expected_p) for r in requests)
    by_query = {r.query: r for r in requests}
    assert by_query["Evan Morris lobbyist"].question == EXAMPLES[0].question
    assert by_query["Evan Morris lobbyist"].golden_answers == EXAMPLES[0].golden_answers
    assert by_query["Pavia Cathedral"].golden_answers == ("Pavia",)
    q0 = row_of(output, "Evan Morris")
    assert output.non_tensor_batch["zerosearch_noise_probabilities"][q0] == [pytest.approx(expected_p)]
    assert output.non_tensor_batch["zerosearch_noise_modes"][q0][0] in ("useful", "noisy")


def test_compute_score_on_the_outputs(rollout):
    """verl's reward input is the decoded response (information blocks and invalid-action message included);
    compute_score reads the answer from the policy's text either way."""
    output, _, tokenizer = rollout
    nt = output.non_tensor_batch
    scores = {}
    for word in ("Evan Morris", "Pavia"):
        i = row_of(output, word)
        ids, _, _ = unpadded(output, i)
        solution = tokenizer.decode(ids, skip_special_tokens=True)
        gt = nt["reward_model"][i]["ground_truth"]
        from_text = compute_score(nt["data_source"][i], solution, gt, dict(nt["extra_info"][i]))
        with_fields = compute_score(nt["data_source"][i], solution, gt,
                                    {"zerosearch_generated_text": nt["zerosearch_generated_text"][i]})
        with_answer = compute_score(nt["data_source"][i], solution, gt,
                                    {"zerosearch_answer": nt["zerosearch_answer"][i]})
        assert from_text == with_fields == with_answer
        scores[word] = from_text
    assert scores["Evan Morris"] == {"score": 1.0, "f1": 1.0, "em": 1.0, "cover_em": 1.0, "answered": 1.0}
    assert scores["Pavia"]["score"] == 0.0 and scores["Pavia"]["answered"] == 0.0
    pavia = tokenizer.decode(unpadded(output, row_of(output, "Pavia"))[0], skip_special_tokens=True)
    assert extract_answer(pavia) == "and"  # the injected message's literal tags, had we not stripped them
    assert extract_answer(policy_text(pavia)) is None


def test_response_budget_cuts_injected_ids_and_ends_the_episode(tiny, service, tmp_path):
    path, generator = tiny
    config = verl_config(path, f"{service.url}/retrieve", response_length=30)
    batch = dataset_batch(config, generator.tokenizer, tmp_path)
    output = run_worker(StepAwareAgentLoopWorker, config, TransformersServerManager(generator), batch)
    i = row_of(output, "Pavia")  # its first turn is invalid: the 30-token budget cuts the injected message
    ids, mask, _ = unpadded(output, i)
    assert len(ids) == 30 and output.non_tensor_batch["zerosearch_stop_reason"][i] == "max_response_tokens"
    assert bool(output.non_tensor_batch["zerosearch_truncated"][i])
    assert mask[-1] == 0 and output.batch["responses"].shape[1] == 30


def test_legacy_worker_without_the_step_route_fails_clearly(tiny, service, tmp_path):
    """verl's legacy AgentLoopWorker keeps the step in meta_info; without our subclass the loop says how to fix it."""
    path, generator = tiny
    config = verl_config(path, f"{service.url}/retrieve")
    batch = dataset_batch(config, generator.tokenizer, tmp_path)
    with pytest.raises(ValueError, match=r"use_v1=false set actor_rollout_ref\.rollout\.agent\.agent_loop_manager"):
        run_worker(AgentLoopWorker, config, TransformersServerManager(generator), batch)


def test_curriculum_off_sends_no_step(tiny, service, tmp_path):
    path, generator = tiny
    config = verl_config(path, f"{service.url}/retrieve", curriculum=False)
    batch = dataset_batch(config, generator.tokenizer, tmp_path)
    before = len(service.engine.seen)
    output = run_worker(AgentLoopWorker, config, TransformersServerManager(generator), batch)
    new = [request for request, _ in service.engine.seen[before:]]
    assert new and all(r.noise_probability is None for r in new)
    assert np.all(output.non_tensor_batch["zerosearch_step"] == None)  # noqa: E711


# ------------------------------------------------------------------------------ verl's stock tool path
TOOL_SCRIPT = {
    "Evan Morris": ["<answer> Roche </answer>"],
    "Pavia": ['<tool_call>\n{"name": "search", "arguments": {"query": "Pavia Cathedral"}}\n</tool_call>',
              "<answer> Pavia </answer>"],
    "Horatio": ["<answer> ethnologist </answer>"],
}


def test_stock_tool_agent_with_the_shipped_tool_config(tiny, service, tmp_path, monkeypatch):
    """verl's own ToolAgentLoop, hermes tool calls, the shipped tool config: the search reaches the service with
    the row's question and gold answers (from tools_kwargs) and the documents come back as the tool message."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from zerosearch.data.exporters import verl_rows

    path, generator = tiny
    monkeypatch.setenv("ZEROSEARCH_SERVICE_URL", f"{service.url}/retrieve")
    rows = verl_rows(EXAMPLES, split="train")
    for row in rows:
        row["extra_info"]["tools_kwargs"] = {"search": {"create_kwargs": {
            "question": row["question"], "golden_answers": row["golden_answers"]}}}
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    config = verl_config(path, f"{service.url}/retrieve")
    shipped = Path(__file__).resolve().parents[2] / "configs" / "verl" / "tool_config.yaml"
    for override in (("agent", "default_agent_loop", "tool_agent"), ("multi_turn", "enable", True),
                     ("multi_turn", "tool_config_path", str(shipped)), ("multi_turn", "format", "hermes"),
                     ("multi_turn", "max_tool_response_length", 4096), ("multi_turn", "max_assistant_turns", 3)):
        config.actor_rollout_ref.rollout[override[0]][override[1]] = override[2]
    dataset = RLHFDataset(data_files=[str(tmp_path / "train.parquet")], tokenizer=generator.tokenizer,
                          config=config.data)
    batch = DataProto.from_single_dict(collate_fn([dataset[i] for i in range(len(dataset))]))
    before = len(service.engine.seen)
    output = run_worker(AgentLoopWorker, config, TransformersServerManager(generator, TOOL_SCRIPT), batch)

    [(request, _)] = service.engine.seen[before:]
    assert (request.query, request.question, request.golden_answers) == (
        "Pavia Cathedral", "Where is Pavia Cathedral?", ("Pavia",))
    assert request.noise_probability is None  # the stock path gives the tool no step: no curriculum
    i = next(j for j, p in enumerate(output.non_tensor_batch["raw_prompt"]) if "Pavia" in str(p))
    n = int(output.batch["attention_mask"][i, output.batch["prompts"].shape[1]:].sum())
    ids, mask = output.batch["responses"][i, :n].tolist(), output.batch["response_mask"][i, :n].tolist()
    tool_text = generator.tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m == 0])
    assert "Doc 1:" in tool_text or "No results." in tool_text
    assert "(truncated)" not in tool_text
    text = generator.tokenizer.decode(ids, skip_special_tokens=True)
    assert compute_score("hotpotqa", text, {"target": ["Pavia"]})["score"] == 1.0


def test_base_model_without_chat_template_gets_the_raw_instruction(tiny, service, tmp_path):
    """A tokenizer without a chat template (a base model): the prompt is the raw instruction, as
    zerosearch.protocol.render_prompt writes it for the single-machine rollout."""
    from zerosearch.protocol import render_prompt

    path, generator = tiny
    base_dir = tmp_path / "base-model"
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = None
    generator.model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    (base_dir / "chat_template.jinja").unlink(missing_ok=True)
    config = verl_config(str(base_dir), f"{service.url}/retrieve")
    batch = dataset_batch(config, tokenizer, tmp_path)
    manager = TransformersServerManager(generator)
    output = run_worker(StepAwareAgentLoopWorker, config, manager, batch)
    i = row_of(output, "Pavia")
    content = output.non_tensor_batch["raw_prompt"][i][0]["content"]
    expected = tokenizer(render_prompt(content, tokenizer, "{question}", use_chat_template=False))["input_ids"]
    prompt = output.batch["prompts"][i][output.batch["attention_mask"][i, : output.batch["prompts"].shape[1]] == 1]
    assert prompt.tolist() == list(expected)
    assert "<|im_start|>" not in tokenizer.decode(prompt.tolist())
