"""What a run records about where its numbers came from: package versions and the platform.

Training, evaluation and the toy-world build all write this next to their outputs, so one function
serves them all.
"""

from __future__ import annotations

import platform
from importlib import metadata

#: Packages whose versions can change a run's numbers.
VERSIONED_PACKAGES = (
    "zerosearch", "torch", "transformers", "tokenizers", "peft", "bm25s", "numpy", "pydantic",
    "trl", "datasets", "accelerate",
)


def package_versions() -> dict[str, str]:
    """Python, platform and the versions of :data:`VERSIONED_PACKAGES` ("not installed" when absent)."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
