"""A native verl tool that searches through ``zerosearch serve``, for verl's stock ``tool_agent`` loop.

verl 0.9.1 no longer ships ``verl.tools.search_tool.SearchTool`` (earlier verl releases did); its stock
multi-turn path is ``ToolAgentLoop`` with ``BaseTool`` subclasses listed in a tool config, the model calling
them in the chat template's tool-call format (``<tool_call>{"name": ..., "arguments": ...}</tool_call>`` with
``multi_turn.format=hermes``). This tool is that path's search: ``{"query": "..."}`` goes to the service with
the row's question and gold answers (from the dataset's ``tools_kwargs.search.create_kwargs``), and the
documents come back as ``Doc i: ...`` lines.

Known limits of the stock path (why ``zerosearch_agent`` is the recommended loop, see docs/verl.md):

* verl cuts a tool response to ``multi_turn.max_tool_response_length`` characters, 256 by default — about
  one simulated document; the shipped tool config's launch line raises it;
* ``ToolAgentLoop`` gives a tool no training step, so the service applies its fixed ``--noise-probability``
  (no curriculum), and it turns a tool error into response text instead of failing the run;
* the protocol is the model's tool-call format, not ZeroSearch's ``<search>``/``<information>`` tags, so
  ``compute_score`` still reads ``<answer>`` but the turn rules of :mod:`zerosearch.rollout.rules` do not apply.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any
from uuid import uuid4

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from zerosearch.protocol import format_information
from zerosearch.search.base import SearchRequest
from zerosearch.search.remote import RemoteSearchEngine
from zerosearch.service.settings import TOKEN_ENV

#: The tool's schema when the tool config gives none.
DEFAULT_SCHEMA = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web for documents about a query; returns the top documents as 'Doc i:' lines.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "the search query"}},
            "required": ["query"],
        },
    },
}


@functools.cache
def _engine(url: str, timeout_s: float, max_retries: int, token_env: str) -> RemoteSearchEngine:
    import os

    return RemoteSearchEngine(url, timeout_s=timeout_s, max_retries=max_retries, bearer_token=os.environ.get(token_env))


class ZeroSearchTool(BaseTool):
    """``search(query)`` against ``zerosearch serve``; config keys: ``service_url`` (required), ``top_k`` (5),
    ``timeout_s`` (120), ``max_retries`` (3), ``token_env`` (ZEROSEARCH_SERVICE_TOKEN)."""

    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema | None) -> None:
        url = config.get("service_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"ZeroSearchTool needs config.service_url = http(s)://HOST:PORT/retrieve, got {url!r}")
        super().__init__(config, tool_schema or OpenAIFunctionToolSchema.model_validate(DEFAULT_SCHEMA))
        self.url = url
        self.top_k = int(config.get("top_k", 5))
        self.timeout_s = float(config.get("timeout_s", 120.0))
        self.max_retries = int(config.get("max_retries", 3))
        self.token_env = str(config.get("token_env", TOKEN_ENV))
        self._instances: dict[str, dict[str, Any]] = {}

    async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, ToolResponse]:
        """Remember the row's question and gold answers (``create_kwargs``) for this trajectory's calls."""
        instance_id = instance_id or uuid4().hex
        create_kwargs = kwargs.get("create_kwargs") or {}
        golds = create_kwargs.get("golden_answers")
        self._instances[instance_id] = {
            "question": create_kwargs.get("question"),
            "golden_answers": None if golds is None else tuple(str(g) for g in golds),
        }
        return instance_id, ToolResponse()

    async def execute(
        self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
    ) -> tuple[ToolResponse, float, dict]:
        """One search; the response text is the information block's ``Doc i:`` lines."""
        query = parameters.get("query")
        if not isinstance(query, str) or not query.strip():
            return ToolResponse(text="Error: the search tool needs a non-empty 'query' string."), 0.0, {}
        state = self._instances.get(instance_id, {})
        request = SearchRequest(query=query.strip(), top_k=self.top_k, question=state.get("question"),
                                golden_answers=state.get("golden_answers"))
        engine = _engine(self.url, self.timeout_s, self.max_retries, self.token_env)
        (result,) = await asyncio.get_running_loop().run_in_executor(None, engine.search, [request])
        block = format_information([doc.as_passage() for doc in result.documents])
        text = block.strip().removeprefix("<information>").removesuffix("</information>")
        return ToolResponse(text=text), 0.0, {"mode": result.mode}

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        """Forget the trajectory's question and answers."""
        self._instances.pop(instance_id, None)
