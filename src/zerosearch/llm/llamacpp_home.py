"""Where llama.cpp's tools live: ``llama-server``, ``llama-quantize`` and ``convert_hf_to_gguf.py``.

Why this exists: the GGUF export and the ``llamacpp`` generator backend both need llama.cpp programs that
are not Python packages. ``make llama-server`` builds them from the llama.cpp source vendored in the pinned
llama-cpp-python sdist into ``build/llama.cpp/`` of a source checkout (``bin/`` for the programs, ``src/``
for the converter and its ``gguf-py``); this module is the one place that finds them:

1. ``$ZEROSEARCH_LLAMA_CPP`` if set (that folder, laid out as above, or a llama.cpp checkout with its
   programs in ``build/bin/``);
2. else ``build/llama.cpp`` of the checkout this package was imported from;
3. programs only: else ``PATH``.

    >>> LLAMA_CPP_ENV
    'ZEROSEARCH_LLAMA_CPP'
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

LLAMA_CPP_ENV = "ZEROSEARCH_LLAMA_CPP"
_CHECKOUT_HOME = Path(__file__).resolve().parents[3] / "build" / "llama.cpp"
_HOW_TO_GET = (
    f"run `make llama-server` in the zerosearch checkout (builds build/llama.cpp/), or set {LLAMA_CPP_ENV} "
    "to a folder holding bin/llama-server, bin/llama-quantize and src/convert_hf_to_gguf.py"
)


def llama_cpp_home() -> Path:
    """The llama.cpp folder: ``$ZEROSEARCH_LLAMA_CPP`` or the checkout's ``build/llama.cpp``."""
    env = os.environ.get(LLAMA_CPP_ENV)
    return Path(env).expanduser() if env else _CHECKOUT_HOME


def llama_cpp_program(name: str, explicit: str | Path | None = None) -> Path:
    """Path of a llama.cpp program (``llama-server``, ``llama-quantize``); a clear error if none is found."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FileNotFoundError(f"{name}: {path} is not an executable file")
        return path
    home = llama_cpp_home()
    for candidate in (home / "bin" / name, home / "build" / "bin" / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(f"llama.cpp program {name!r} not found in {home} nor on PATH: {_HOW_TO_GET}")


def llama_cpp_converter() -> Path:
    """``convert_hf_to_gguf.py`` of the llama.cpp source (it imports its own ``gguf-py`` beside it)."""
    home = llama_cpp_home()
    for candidate in (home / "src" / "convert_hf_to_gguf.py", home / "convert_hf_to_gguf.py"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"convert_hf_to_gguf.py not found in {home}: {_HOW_TO_GET}")


def program_version(program: Path) -> str:
    """The ``--version`` line of a llama.cpp program (e.g. ``version: 1 (0c1e570)``), for provenance."""
    done = subprocess.run([str(program), "--version"], capture_output=True, text=True, timeout=30, check=False)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("version")]
    return lines[0].strip() if lines else "unknown"
