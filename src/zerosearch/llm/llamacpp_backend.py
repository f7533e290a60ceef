"""Text generation through llama.cpp's ``llama-server``: started by zerosearch or given by URL.

Why this exists: on a CPU a small simulator decodes several times faster through llama.cpp with parallel
slots than through transformers (``benchmarks/bench_simulator_serving.py``). This backend keeps what the
simulated engine relies on equal to the transformers backend:

* the prompt is rendered here, by the model's own Hugging Face tokenizer (chat template included), and
  sent as raw text to ``/v1/completions`` — the server only tokenises it, with the GGUF's copy of the same
  vocabulary (:func:`zerosearch.llm.gguf_export.verify_tokenizer` checks it on export);
* sampling is what :class:`SamplingParams` says and nothing else: llama.cpp's own defaults (top-k 40,
  min-p 0.05) are switched off in every request, ``top_k`` 0 meaning off as in transformers.

The HTTP part is :class:`OpenAIGenerator` (bounded concurrency, deadlines, bounded retries). When zerosearch
started the server (:class:`LlamaServer`), a request that fails on a dead process is reported as the
process's death, with its log. Parallel slots = ``concurrency``: size it to the batch the rollout sends.

    generator = LlamaCppGenerator.start("sim-q8_0.gguf", tokenizer_source="runs/sim/hinted", slots=16, threads=2)
    generator.generate(prompts, SamplingParams(max_new_tokens=120, temperature=0.8, seed=0))
    generator.close()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zerosearch.llm.base import Completion, GenerationError, SamplingParams
from zerosearch.llm.llamacpp_server import LlamaServer
from zerosearch.llm.openai_backend import OpenAIGenerator

#: llama.cpp samplers that transformers does not apply: switched off in every request.
NEUTRAL_SAMPLING = {"min_p": 0.0, "typical_p": 1.0, "repeat_penalty": 1.0, "presence_penalty": 0.0,
                    "frequency_penalty": 0.0, "cache_prompt": True}


class _LlamaCppClient(OpenAIGenerator):
    """OpenAIGenerator on ``/v1/completions`` that also sends ``top_k`` when 0 (llama.cpp's default is 40)."""

    def _body(self, prompt: str, params: SamplingParams, index: int) -> dict[str, Any]:
        return {**NEUTRAL_SAMPLING, "top_k": params.top_k, **super()._body(prompt, params, index)}


class LlamaCppGenerator:
    """Batched text generation by a llama.cpp server; ``tokenizer`` renders prompts like the local backend."""

    api = "completions"

    def __init__(self, base_url: str, *, tokenizer: Any | None, model: str = "gguf", server: LlamaServer | None = None,
                 concurrency: int = 8, timeout_s: float = 600.0, max_retries: int = 1, api_key: str | None = None,
                 name: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.server = server
        self.name = name or f"llama.cpp:{model}@{base_url}"
        self._client = _LlamaCppClient(base_url, model, api="completions", api_key=api_key, concurrency=concurrency,
                                       timeout_s=timeout_s, max_retries=max_retries, name=self.name)

    @classmethod
    def start(cls, gguf: str | Path, *, tokenizer_source: str | Path | None, slots: int, timeout_s: float = 600.0,
              max_retries: int = 1, **server_args: Any) -> LlamaCppGenerator:
        """Start a :class:`LlamaServer` on ``gguf`` (``slots`` parallel slots) and connect to it.

        ``tokenizer_source``: the Hugging Face model (directory or built-in name) the GGUF was exported
        from; its tokenizer renders prompts. ``server_args`` go to :class:`LlamaServer`.
        """
        tokenizer = load_tokenizer(tokenizer_source)
        server = LlamaServer(gguf, slots=slots, **server_args)
        url = server.start()
        return cls(url, tokenizer=tokenizer, model=Path(gguf).name, server=server, concurrency=slots,
                   timeout_s=timeout_s, max_retries=max_retries, name=f"llama.cpp:{Path(gguf).name}")

    @property
    def base_url(self) -> str:
        """The server's ``/v1/completions`` endpoint."""
        return self._client.endpoint

    def generate(self, prompts: list[str], params: SamplingParams) -> list[Completion]:
        """Complete text prompts concurrently; a dead managed server is reported with its log."""
        if self.server is not None:
            self.server.check_alive()
        try:
            return self._client.generate(prompts, params)
        except GenerationError as err:
            if self.server is not None and not self.server.alive:
                self.server.check_alive("while answering")  # raises with the exit code and the log
            raise GenerationError(f"{self.name}: {err}") from err

    def close(self) -> None:
        """Stop the server if zerosearch started it."""
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> LlamaCppGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_tokenizer(source: str | Path | None) -> Any | None:
    """The Hugging Face tokenizer of ``source`` (directory, built-in name or hub id); None for None."""
    if source is None:
        return None
    from transformers import AutoTokenizer

    from zerosearch.llm.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(str(source)))
