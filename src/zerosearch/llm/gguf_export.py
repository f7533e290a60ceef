"""Turn a ``save_pretrained`` causal LM into a GGUF file that llama.cpp serves, and check the result.

Why this exists: a tuned simulator (or the built-in SmolLM2) decodes several times faster on a CPU through
llama.cpp's ``llama-server`` (parallel slots, continuous batching, quantised weights) than through
transformers; llama.cpp reads GGUF. The conversion itself is llama.cpp's own ``convert_hf_to_gguf.py``
(types ``f32 f16 bf16 q8_0``); the other types are that file re-quantised by ``llama-quantize``. Both come
from :mod:`zerosearch.llm.llamacpp_home` (``make llama-server``).

After writing, the GGUF's tokenizer is read back and compared with the source's (every token string, BOS,
EOS and the chat template), so a file that would tokenise or template differently is never left behind.
``FILE.json`` beside it records the source, type, llama.cpp version and seconds taken.

    zerosearch simulator export-gguf --model runs/sim/hinted --out runs/sim/hinted-q8_0.gguf --type q8_0

:func:`cached_gguf` is what the ``llamacpp`` generator backend calls when a config names a model but no
GGUF file: one export per (model files, type), kept in the zerosearch cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zerosearch.llm.llamacpp_home import llama_cpp_converter, llama_cpp_program, program_version
from zerosearch.llm.models import cache_dir, resolve_model

#: Types ``convert_hf_to_gguf.py`` writes directly.
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
#: Types made by re-quantising the f16 file with ``llama-quantize`` (k-quants fall back to legacy types on
#: tensors whose rows are not a multiple of 256, e.g. SmolLM2-135M's 576).
QUANTIZE_TYPES = ("q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m",
                  "q5_k_s", "q5_k_m", "q6_k")
GGUF_TYPES = CONVERTER_TYPES + QUANTIZE_TYPES
CONVERT_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class GGUFExport:
    """What :func:`export_gguf` wrote (also saved as ``<out>.json``)."""

    path: str
    source: str
    type: str
    size_bytes: int
    seconds: float
    llama_cpp: str


def check_type(gguf_type: str) -> str:
    """The type in lower case, or a ValueError listing the valid ones."""
    lowered = gguf_type.lower()
    if lowered not in GGUF_TYPES:
        raise ValueError(f"unknown GGUF type {gguf_type!r}; choose one of: {', '.join(GGUF_TYPES)}")
    return lowered


def export_gguf(model: str | Path, out: str | Path, gguf_type: str = "f16", *, overwrite: bool = False,
                threads: int | None = None) -> GGUFExport:
    """Write ``model`` (a ``save_pretrained`` directory or a built-in name) as a GGUF file of ``gguf_type``."""
    gguf_type = check_type(gguf_type)
    source = Path(resolve_model(str(model)))
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{model!r} is not a save_pretrained model directory (no config.json in {source})")
    out = Path(out).expanduser()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        first_type = gguf_type if gguf_type in CONVERTER_TYPES else "f16"
        converted = Path(tmp) / f"model-{first_type}.gguf"
        _convert(source, converted, first_type, Path(tmp) / "convert.log")
        final = converted
        if gguf_type not in CONVERTER_TYPES:
            final = Path(tmp) / f"model-{gguf_type}.gguf"
            _quantize(converted, final, gguf_type, Path(tmp) / "quantize.log", threads)
        verify_tokenizer(final, source)
        os.replace(final, out)
    record = GGUFExport(path=str(out), source=str(source), type=gguf_type, size_bytes=out.stat().st_size,
                        seconds=round(time.perf_counter() - started, 2), llama_cpp=llama_cpp_version())
    Path(f"{out}.json").write_text(json.dumps(asdict(record), indent=1), "utf-8")
    return record


def llama_cpp_version() -> str:
    """``llama-server --version`` of the llama.cpp in use ("unknown" when it is not built)."""
    try:
        return program_version(llama_cpp_program("llama-server"))
    except FileNotFoundError:
        return "unknown"


def _run_logged(cmd: list[str], log: Path, what: str, env: dict[str, str] | None = None) -> None:
    with log.open("w") as handle:
        try:
            done = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, timeout=CONVERT_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"{what} did not finish within {CONVERT_TIMEOUT_S:.0f} s: {' '.join(cmd)}") from err
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{what} failed with exit code {done.returncode}: {' '.join(cmd)}\n{tail}")


def _convert(source: Path, out: Path, outtype: str, log: Path) -> None:
    """llama.cpp's converter in a subprocess (its own gguf-py; offline: the source is a local folder)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, str(llama_cpp_converter()), str(source), "--outfile", str(out), "--outtype", outtype]
    _run_logged(cmd, log, "convert_hf_to_gguf.py", env)


def _quantize(source: Path, out: Path, gguf_type: str, log: Path, threads: int | None) -> None:
    cmd = [str(llama_cpp_program("llama-quantize")), str(source), str(out), gguf_type.upper()]
    _run_logged(cmd + ([str(threads)] if threads else []), log, "llama-quantize")


def gguf_metadata(path: str | Path) -> dict[str, Any]:
    """The tokenizer fields of a GGUF file (tokens, bos/eos ids, add_bos, chat template) and its file type."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    wanted = {"tokenizer.ggml.tokens": "tokens", "tokenizer.ggml.bos_token_id": "bos_token_id",
              "tokenizer.ggml.eos_token_id": "eos_token_id", "tokenizer.ggml.add_bos_token": "add_bos_token",
              "tokenizer.chat_template": "chat_template", "general.file_type": "file_type",
              "general.architecture": "architecture"}
    meta: dict[str, Any] = dict.fromkeys(wanted.values())
    for key, name in wanted.items():
        field = reader.get_field(key)
        if field is not None:
            meta[name] = field.contents()
    return meta


def verify_tokenizer(gguf_path: str | Path, source: str | Path) -> None:
    """Raise ValueError unless the GGUF's vocabulary, EOS and chat template equal the source tokenizer's."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    meta = gguf_metadata(gguf_path)
    tokens = meta["tokens"] or []
    theirs = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    problems = []
    if len(tokens) < len(theirs):
        problems.append(f"{len(tokens)} tokens in the GGUF, {len(theirs)} in the tokenizer")
    differing = [i for i, token in enumerate(theirs) if i < len(tokens) and tokens[i] != token]
    if differing:
        i = differing[0]
        problems.append(f"{len(differing)} token strings differ (first: id {i}, {tokens[i]!r} vs {theirs[i]!r})")
    if tokenizer.eos_token_id is not None and meta["eos_token_id"] != tokenizer.eos_token_id:
        problems.append(f"EOS id {meta['eos_token_id']} vs {tokenizer.eos_token_id}")
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    if (meta["chat_template"] or None) != (template or None):
        problems.append("the chat template differs from the tokenizer's")
    if problems:
        raise ValueError(f"{gguf_path} does not reproduce the tokenizer of {source}: " + "; ".join(problems))


def cached_gguf(model: str | Path, gguf_type: str) -> Path:
    """A GGUF of ``model`` at ``gguf_type`` in the zerosearch cache, exported on first use.

    Keyed by the model folder and the size and modification time of its files, so a re-trained model in
    the same folder gets a new export.
    """
    gguf_type = check_type(gguf_type)
    source = Path(resolve_model(str(model))).resolve()
    if not source.is_dir():
        raise FileNotFoundError(f"{model!r} is not a local model directory; export it with export_gguf first")
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in source.iterdir() if p.is_file())
    key = hashlib.sha256(json.dumps([str(source), gguf_type, files]).encode()).hexdigest()[:16]
    path = cache_dir() / "gguf" / f"{source.name}-{gguf_type}-{key}.gguf"
    if not path.is_file():
        export_gguf(source, path, gguf_type)
    return path
