"""Tests that need verl 0.9.1. They run in the separate environment ``make verl-env`` builds (``make test``
runs them there); an environment without verl does not collect them at all, so nothing here is reported as
passed or skipped there. ``ZEROSEARCH_REQUIRE_VERL=1`` (set by the make target) turns a missing or wrong verl
into an error instead."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

from zerosearch.integrations.verl import VERL_VERSION

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network here: a hub lookup must fail at once, not retry
_installed = importlib.util.find_spec("verl") is not None
if os.environ.get("ZEROSEARCH_REQUIRE_VERL") == "1":
    if not _installed:
        raise RuntimeError("ZEROSEARCH_REQUIRE_VERL=1 but verl is not installed; run `make verl-env`")
    found = importlib.metadata.version("verl")
    if found != VERL_VERSION:
        raise RuntimeError(f"the verl tests target verl=={VERL_VERSION}, found {found}; run `make verl-env`")
if not _installed:
    collect_ignore_glob = ["test_*.py"]
