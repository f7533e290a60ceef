"""Text generation through any OpenAI-compatible HTTP server (vLLM, SGLang, llama.cpp server, ...).

Why this exists: the simulated search engine and the evaluation harness can use a model served
elsewhere, shared by many workers. Requests for a batch go out concurrently (``concurrency`` at a
time per event loop), each with a hard per-request deadline (``timeout_s``). Connection errors,
timeouts, HTTP 429 and 5xx are retried ``max_retries`` times with exponential backoff (plus jitter,
honouring ``Retry-After``); other 4xx answers fail at once. Either way the failure is a
:class:`GenerationError` naming the endpoint and the last error.

Stop strings: OpenAI-compatible servers drop the matched stop string from the text and mostly do not
say which one matched. When the server reports it (vLLM ``stop_reason``, SGLang ``matched_stop``), it
is appended back so the text ends with it, as :class:`SamplingParams` promises, and
``Completion.stop_string`` is set; otherwise ``stop_string`` stays None (EOS and stop look alike).

``seed``: request ``i`` of a batch is sent ``seed + i`` so repeated prompts in one batch still differ
while the whole batch is repeatable (on servers that honour seeds). ``top_k`` is sent only when > 0
(the OpenAI API rejects it); server-specific knobs go in ``extra_body``.

Try it against a local llama.cpp server::

    python -m llama_cpp.server --model "$(python -c 'from zerosearch.llm.models import \\
        smollm2_gguf_path as p; print(p())')" --host 127.0.0.1 --port 8080 &
    python -m zerosearch.llm.openai_backend http://127.0.0.1:8080 "What is the capital of France?"
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import sys
import time
import weakref
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx

from zerosearch.llm.base import Completion, GenerationError, SamplingParams

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0


class _Retryable(Exception):
    """A failure worth another attempt (connect error, timeout, 429, 5xx); ``delay`` overrides backoff."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


def endpoint_url(base_url: str, api: Literal["chat", "completions"]) -> str:
    """``http://host:port`` or ``http://host:port/v1`` -> ``.../v1/chat/completions`` (or ``/completions``)."""
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"base_url must look like http://host:port[/v1], got {base_url!r}")
    root = base_url.rstrip("/")
    if parts.path.rstrip("/") == "":
        root += "/v1"
    return f"{root}/chat/completions" if api == "chat" else f"{root}/completions"


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class OpenAIGenerator:
    """Batched generation through ``/v1/chat/completions`` (``api="chat"``) or ``/v1/completions``.

    With ``api="chat"`` each prompt is sent as one user message (after ``system_prompt`` unless it is None;
    an empty one is sent as an empty system message);
    with ``api="completions"`` it is sent as raw text.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api: Literal["chat", "completions"] = "chat",
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        system_prompt: str | None = None,
        extra_body: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if api not in {"chat", "completions"}:
            raise ValueError(f"api must be 'chat' or 'completions', got {api!r}")
        if concurrency < 1 or timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise ValueError(
                "need concurrency >= 1, timeout_s > 0, max_retries >= 0 and backoff_s >= 0; got "
                f"{concurrency=}, {timeout_s=}, {max_retries=}, {backoff_s=}"
            )
        self.endpoint = endpoint_url(base_url, api)
        self.model = model
        self.api = api
        self.name = name or f"{model}@{self.endpoint}"
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.system_prompt = system_prompt
        self.extra_body = dict(extra_body or {})
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._rng = random.Random(0)

    # ------------------------------------------------------------------ public API

    def generate(self, prompts: list[str], params: SamplingParams) -> list[Completion]:
        """Sync wrapper around :meth:`agenerate` (safe from any thread, loop running or not)."""
        return _run_sync(self.agenerate(prompts, params))

    async def agenerate(self, prompts: list[str], params: SamplingParams) -> list[Completion]:
        """Complete all prompts concurrently (bounded); same order as ``prompts``."""
        if not prompts:
            return []
        timeout = httpx.Timeout(self.timeout_s)
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers) as client:
            tasks = [
                asyncio.ensure_future(self._complete(client, self._body(p, params, i))) for i, p in enumerate(prompts)
            ]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:  # one prompt failed (or we were cancelled): stop the others, re-raise
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    # ------------------------------------------------------------------ internals

    def _body(self, prompt: str, params: SamplingParams, index: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if self.api == "chat":
            # an empty system prompt is still sent: it is not the same as none (chat templates add a default)
            system = [] if self.system_prompt is None else [{"role": "system", "content": self.system_prompt}]
            body["messages"] = [*system, {"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed + index
        if params.top_k > 0:
            body["top_k"] = params.top_k
        return {**body, **self.extra_body}

    def _semaphore(self) -> asyncio.Semaphore:
        """One semaphore per event loop, shared by every concurrent call on that loop."""
        loop = asyncio.get_running_loop()
        if loop not in self._semaphores:
            self._semaphores[loop] = asyncio.Semaphore(self.concurrency)
        return self._semaphores[loop]

    async def _complete(self, client: httpx.AsyncClient, body: dict[str, Any]) -> Completion:
        """One request with bounded retries; raises GenerationError naming the endpoint."""
        attempts = self.max_retries + 1
        last_error = "no attempt made"
        for attempt in range(attempts):
            try:
                async with self._semaphore():
                    payload = await asyncio.wait_for(self._post(client, body), timeout=self.timeout_s)
                return self._parse(payload, body.get("stop", ()))
            except _Retryable as error:
                last_error = str(error)
                if attempt + 1 < attempts:
                    await asyncio.sleep(self._delay(attempt, error.delay))
            except asyncio.TimeoutError:
                last_error = f"no answer within timeout_s={self.timeout_s}"
                if attempt + 1 < attempts:
                    await asyncio.sleep(self._delay(attempt, None))
        raise GenerationError(f"{self.endpoint}: failed after {attempts} attempts; last error: {last_error}")

    def _delay(self, attempt: int, server_delay: float | None) -> float:
        """Exponential backoff with jitter in [0.5, 1] x base; a server's Retry-After wins if given."""
        if server_delay is not None:
            return min(server_delay, MAX_BACKOFF_S)
        return min(self.backoff_s * 2**attempt, MAX_BACKOFF_S) * self._rng.uniform(0.5, 1.0)

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await client.post(self.endpoint, json=body)
        except httpx.TransportError as error:  # connect errors, read/write/pool timeouts
            raise _Retryable(f"{type(error).__name__}: {error}") from error
        if response.status_code in RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}", _retry_after(response))
        if response.status_code >= 400:
            raise GenerationError(
                f"{self.endpoint} rejected the request with HTTP {response.status_code} (not retried): "
                f"{response.text[:500]}"
            )
        try:
            return response.json()
        except ValueError as error:
            raise _Retryable(f"answer is not JSON: {response.text[:200]!r}") from error

    def _parse(self, payload: dict[str, Any], stop: list[str] | tuple[str, ...]) -> Completion:
        try:
            choice = payload["choices"][0]
            text = choice["message"]["content"] if self.api == "chat" else choice["text"]
        except (KeyError, IndexError, TypeError) as error:
            raise GenerationError(f"{self.endpoint} answered without choices[0] text: {str(payload)[:300]}") from error
        text = text or ""
        reason = "length" if choice.get("finish_reason") == "length" else "stop"
        matched = choice.get("stop_reason", choice.get("matched_stop"))
        stop_string = matched if isinstance(matched, str) and matched in stop else None
        if stop_string is not None and not text.endswith(stop_string):
            text += stop_string
        return Completion(
            text=text, finish_reason=reason, stop_string=stop_string, extra={"usage": payload.get("usage")}
        )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _main(argv: list[str]) -> None:
    """``python -m zerosearch.llm.openai_backend BASE_URL PROMPT``: print one greedy answer."""
    generator = OpenAIGenerator(argv[0], model="default")
    started = time.perf_counter()
    completion = generator.generate([" ".join(argv[1:])], SamplingParams(max_new_tokens=64, temperature=0))[0]
    print(completion.text)
    print(f"({completion.finish_reason}, {time.perf_counter() - started:.2f} s)", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    _main(sys.argv[1:])
