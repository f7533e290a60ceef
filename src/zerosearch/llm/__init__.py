"""Text-generation backends behind one batched interface (local transformers, OpenAI-compatible, llama.cpp).

Importing this package is cheap: the backends (torch/transformers, httpx) load on first attribute
access, e.g. ``from zerosearch.llm import TransformersGenerator``.
"""

from __future__ import annotations

import importlib
from typing import Any

from zerosearch.llm.base import Completion, GenerationError, SamplingParams, TextGenerator

_LAZY = {
    "TransformersGenerator": "zerosearch.llm.transformers_backend",
    "OpenAIGenerator": "zerosearch.llm.openai_backend",
    "LlamaCppGenerator": "zerosearch.llm.llamacpp_backend",
    "GeneratorConfig": "zerosearch.llm.factory",
    "build_generator": "zerosearch.llm.factory",
}

__all__ = [
    "Completion",
    "GenerationError",
    "GeneratorConfig",
    "LlamaCppGenerator",
    "OpenAIGenerator",
    "SamplingParams",
    "TextGenerator",
    "TransformersGenerator",
    "build_generator",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
