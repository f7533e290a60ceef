"""``benchmarks/gpu_check.sh`` on CPU (its ``--dry-run``: the same code at tiny shapes), and whether what it
imports will be there on the lent GPU machine: in that image's package list
(``benchmarks/gpu_image_packages.txt``) or in the wheels ``make gpu-wheels`` carries (``benchmarks/gpu_wheels.txt``).

No GPU is involved; the GPU run itself has not happened (docs/gpu.md).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
#: The GPU image's interpreter and platform, for evaluating requirement markers.
IMAGE_ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
             "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
             "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
LOCAL = {"zerosearch", "gpu_shapes", "gpu_check", "__main__", "__mp_main__"}


def norm(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def listed(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text("utf-8").splitlines() if line.strip() and not line.startswith("#")]


IMAGE = {norm(n) for n in listed(BENCH / "gpu_image_packages.txt")}
PINS = dict(line.split("==") for line in listed(BENCH / "gpu_wheels.txt"))
WHEELS = {norm(n) for n in PINS}


def requirements(dist: str) -> set[str]:
    """Names ``dist`` (as installed here) requires on the GPU image's Python, extras left out."""
    names = set()
    for text in metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(IMAGE_ENV):
            names.add(norm(req.name))
    return names


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--dry-run"], env=env, capture_output=True,
                          text=True, timeout=600, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "plan: 2 prompts x 2 samples" in proc.stdout  # the table was printed
    return json.loads((out / "gpu_check_dry_run.json").read_text())


@pytest.mark.slow
def test_dry_run_passes_every_check_on_cpu(dry_run):
    assert dry_run["quick"] and dry_run["device"] == "cpu"
    assert dry_run["bf16_master"]["ok"] and dry_run["bf16_master"]["changed_fraction"]["fp32_master"] > 0.9
    trainer = dry_run["trainer"]
    assert trainer["ok"] and trainer["weights_changed"] and trainer["checkpoint"]
    plan = dry_run["plan"]
    assert plan["ok"] and list(plan["models"]) == ["qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b"]
    for row in plan["models"].values():
        assert row["episodes"] == 4 and row["generated_tokens"] > 0
        assert row["rollout_tokens_per_s"] > 0 and row["step_s"] >= row["update_s"] > 0
        assert row["peak_gpu_gib"] is None  # no GPU: no GPU figure, rather than a made-up one
        assert row["long_update"]["update_s"] > 0


@pytest.mark.slow
def test_every_module_our_code_imports_is_in_the_image_or_the_wheels(dry_run):
    """Third-party modules that the code gpu_check ran imports itself, found by reading the import statements
    of every local module it loaded, and imported during the run."""
    imported = dry_run["imported_distributions"]
    files = [BENCH / "gpu_check.py", BENCH / "gpu_shapes.py"]
    for name in dry_run["local_modules"]:
        if name.startswith("zerosearch"):
            base = ROOT / "src" / Path(*name.split("."))
            files.append(base / "__init__.py" if base.is_dir() else base.with_suffix(".py"))
    direct = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                direct.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                direct.add(node.module.split(".")[0])
    third_party = sorted(m for m in direct & set(imported) if m not in LOCAL)
    assert {"torch", "transformers", "pydantic", "bm25s", "numpy"} <= set(third_party)
    missing = {m: imported[m] for m in third_party if not {norm(d) for d in imported[m]} & (IMAGE | WHEELS)}
    assert not missing, f"imported by our code but neither in the GPU image nor carried: {missing}"


def test_every_carried_wheel_has_its_requirements_there():
    missing = {name: sorted(requirements(name) - IMAGE - WHEELS) for name in PINS}
    missing = {k: v for k, v in missing.items() if v}
    assert not missing, f"requirements neither in the image nor in the wheel list: {missing}"


def test_wheels_are_the_tested_versions_and_only_what_the_image_lacks():
    versions = {name: metadata.version(name) for name in PINS}
    assert versions == PINS, "pin the versions this environment runs (the carried code is the tested code)"
    assert not WHEELS & IMAGE, f"already in the image, do not carry a second version: {WHEELS & IMAGE}"
    assert {"pydantic", "pydantic-core", "fastapi", "uvicorn", "bm25s", "trl", "datasets"} <= WHEELS


@pytest.mark.slow
def test_other_imports_come_with_the_images_own_packages(dry_run):
    """Distributions imported during the run that are in neither list must be pulled in by the image's own
    packages (this environment's versions of them differ from the image's: huggingface_hub here needs httpx2)."""
    closure, todo = set(), [n for n in IMAGE if _installed(n)]
    while todo:
        for req in requirements(todo.pop()) - closure:
            closure.add(req)
            if _installed(req):
                todo.append(req)
    others = {m: d for m, d in dry_run["imported_distributions"].items()
              if d and m not in LOCAL and not {norm(x) for x in d} & (IMAGE | WHEELS)}
    unexplained = {m: d for m, d in others.items() if not {norm(x) for x in d} & closure}
    assert not unexplained, f"imported; not in the image, not carried, not required by an image package: {unexplained}"


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_qwen_shapes_have_the_published_parameter_counts():
    """0.49B, 1.54B and 3.09B parameters (the Qwen2.5 model cards), built on the meta device (no memory)."""
    sys.path.insert(0, str(BENCH))
    try:
        import gpu_shapes
    finally:
        sys.path.remove(str(BENCH))
    import torch
    from transformers import AutoModelForCausalLM

    counts = {}
    for name in gpu_shapes.QWEN25_SHAPES:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(gpu_shapes.model_config(name, quick=False))
        counts[name] = round(gpu_shapes.parameters(model) / 1e9, 2)
        assert model.config.tie_word_embeddings and model.config.vocab_size == 151936
    assert counts == {"qwen2.5-0.5b": 0.49, "qwen2.5-1.5b": 1.54, "qwen2.5-3b": 3.09}
