"""Tests that need verl 0.9.1. They run in the separate environment ``make verl-env`` builds (``make test``
runs them there); an environment without verl does not collect them at all, so nothing here is reported as
passed or skipped there. ``ZEROSEARCH_REQUIRE_VERL=1`` (set by the make target) turns a missing or wrong verl
into an error instead."""

from __future__ import annotations

import importlib.metadata
import os

from zerosearch.integrations.verl import VERL_VERSION

# The installed distribution, not find_spec("verl"): with tests/ on sys.path, this very directory would pass
# for a namespace package named verl.
try:
    found = importlib.metadata.version("verl")
except importlib.metadata.PackageNotFoundError:
    found = None
_installed = found is not None
if os.environ.get("ZEROSEARCH_REQUIRE_VERL") == "1":
    if not _installed:
        raise RuntimeError("ZEROSEARCH_REQUIRE_VERL=1 but verl is not installed; run `make verl-env`")
    if found != VERL_VERSION:
        raise RuntimeError(f"the verl tests target verl=={VERL_VERSION}, found {found}; run `make verl-env`")
if _installed:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network here: a hub lookup must fail at once, not retry
else:
    collect_ignore_glob = ["test_*.py"]
