"""A seeded, offline toy world for RL experiments that run in minutes on a CPU.

The warm-started policy knows how to search and to read answers out of passages but, by design,
searches only about a third of the time; RL with any of the algorithms lifts its reward from about
0.4 to above 0.9 in under 20 steps (``benchmarks/toy_learning.py``, ``docs/benchmarks.md``). That default
world saturates; the demo's harder one (``zerosearch/demo/worlds/toy.yaml``: a 3-hop kind, top-3 results
with distractors) does not (``docs/demo.md``).

    from zerosearch.toyworld import build_toy_world
    paths = build_toy_world("runs/toyworld", seed=0)   # corpus, questions, warm-started policy

Modules: ``world`` (made-up people, cities, companies; passages and questions), ``tokenizer``
(word-level, protocol tags as single tokens), ``model`` (tiny Llama), ``demos`` (imperfect
demonstrations and their token rows), ``build`` (all of it into one directory; the warm-start runs
through ``zerosearch.warmstart.stages``, the staged TRL warm-start every world uses), ``simulator`` (a
tiny fine-tuned search simulator for the world), ``evaluate``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Resolved on first use, so ``python -m zerosearch.toyworld.build`` does not import ``build`` twice.
_EXPORTS = {
    "ToyBuildConfig": "zerosearch.toyworld.build",
    "ToyWorldPaths": "zerosearch.toyworld.build",
    "build_toy_world": "zerosearch.toyworld.build",
    "World": "zerosearch.toyworld.world",
    "WorldConfig": "zerosearch.toyworld.world",
    "generate_world": "zerosearch.toyworld.world",
}
__all__ = ["ToyBuildConfig", "ToyWorldPaths", "World", "WorldConfig", "build_toy_world", "generate_world"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zerosearch.toyworld' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
