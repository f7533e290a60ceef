"""Run the examples in the docstrings of the core modules, so documentation cannot drift from code."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["zerosearch.protocol", "zerosearch.rewards", "zerosearch.curriculum", "zerosearch.llm.continuation",
           "zerosearch.demo.config", "zerosearch.config_files", "zerosearch.simulator.queries",
           "zerosearch.simulator.curve", "zerosearch.simulator.perturb"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0
