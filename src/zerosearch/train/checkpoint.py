"""Atomic, resumable checkpoints: weights in ``save_pretrained`` form plus the full trainer state.

Layout of ``<output_dir>/checkpoints/step-000012/``::

    policy/            model.save_pretrained + tokenizer.save_pretrained (LoRA: the adapters only)
    value_head.pt      shared critic head weights (PPO with critic.model: shared)
    critic.pt          separate critic (backbone + head) weights (PPO, the default)
    trainer_state.pt   step, optimizer(s), scheduler, data order, RNG states (python, numpy, torch, cuda)
                       and the engines' random state (a simulated engine's draws and seeds)
    config.yaml        the run's config

A checkpoint is written into a temporary sibling directory (``.tmp-step-…``) and renamed into place, so
a crash while saving never leaves a half-written ``step-*`` directory. Re-saving an existing step moves
the old copy aside (``.old-step-…``) first and deletes it only after the new one is in place; if a crash
falls between the two renames, :func:`list_checkpoints` renames the old copy back, so there is never a
moment without that step. Stale ``.tmp-*`` folders of crashed saves are removed at the next save. Only
the newest ``keep_last`` checkpoints are kept.
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

_STEP_DIR = re.compile(r"^step-(\d+)$")
STATE_FILE = "trainer_state.pt"
VALUE_HEAD_FILE = "value_head.pt"
CRITIC_FILE = "critic.pt"
POLICY_DIR = "policy"
_OLD_DIR = re.compile(r"^\.old-step-(\d+)$")


def rng_state() -> dict[str, Any]:
    """Every random stream the trainer touches."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class CheckpointParts:
    """What goes into a checkpoint (the trainer fills it)."""

    step: int
    model: Any
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    data_state: dict[str, Any]
    config_yaml: str
    value_head: torch.nn.Module | None = None
    critic: torch.nn.Module | None = None
    critic_optimizer: torch.optim.Optimizer | None = None
    engine_states: dict[str, Any] | None = None


def checkpoint_root(output_dir: Path) -> Path:
    """Where a run's checkpoints live."""
    return Path(output_dir) / "checkpoints"


def _recover_swaps(root: Path) -> None:
    """Put back an old copy whose replacement never arrived (a crash between the two renames)."""
    for old in root.iterdir():
        match = _OLD_DIR.match(old.name)
        if not match:
            continue
        final = root / f"step-{match.group(1)}"
        if final.is_dir():
            shutil.rmtree(old)
        else:
            old.rename(final)


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    _recover_swaps(root)
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def refuse_mixing_runs(output_dir: Path) -> None:
    """Raise when ``output_dir`` already holds a run's checkpoints or metrics.

    A fresh run there would append to the old metrics and, once its own step numbers sort below the old
    ones, prune its own new checkpoints; only ``--resume`` may continue a directory.
    """
    found = list_checkpoints(output_dir)
    metrics = Path(output_dir) / "metrics.jsonl"
    if found or metrics.is_file():
        what = f"checkpoints up to {found[-1].name}" if found else "metrics.jsonl"
        raise FileExistsError(
            f"output_dir {output_dir} already holds an earlier run ({what}); pass --resume to continue it, "
            "or choose a new output_dir (or delete the old one) to start fresh"
        )


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Delete ``.tmp-*`` folders left by saves that crashed; returns what was removed."""
    stale = [p for p in root.iterdir() if p.name.startswith(".tmp-") and p.is_dir()] if root.is_dir() else []
    for path in stale:
        shutil.rmtree(path)
    return stale


def _write_parts(tmp: Path, parts: CheckpointParts) -> None:
    parts.model.save_pretrained(tmp / POLICY_DIR)
    parts.tokenizer.save_pretrained(tmp / POLICY_DIR)
    if parts.value_head is not None:
        torch.save(parts.value_head.state_dict(), tmp / VALUE_HEAD_FILE)
    if parts.critic is not None:
        torch.save(parts.critic.state_dict(), tmp / CRITIC_FILE)
    state = {
        "step": parts.step,
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "data": parts.data_state,
        "rng": rng_state(),
        "engines": parts.engine_states or {},
    }
    if parts.critic_optimizer is not None:
        state["critic_optimizer"] = parts.critic_optimizer.state_dict()
    torch.save(state, tmp / STATE_FILE)
    (tmp / "config.yaml").write_text(parts.config_yaml, encoding="utf-8")


def save_checkpoint(output_dir: Path, parts: CheckpointParts, keep_last: int) -> Path:
    """Write a checkpoint atomically and prune old ones; returns its directory."""
    root = checkpoint_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(root)
    _recover_swaps(root)
    final = root / f"step-{parts.step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-step-{parts.step:06d}-", dir=root))
    try:
        _write_parts(tmp, parts)
        aside = root / f".old-step-{parts.step:06d}"
        if final.exists():
            final.rename(aside)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if aside.exists():
        shutil.rmtree(aside)
    for old in list_checkpoints(output_dir)[:-keep_last]:
        shutil.rmtree(old)
    return final


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """The trainer state of ``checkpoint`` (optimizer etc.); weights are loaded by the caller."""
    path = Path(checkpoint) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} is not a zerosearch checkpoint ({STATE_FILE} missing)")
    # weights_only=False: the state holds numpy RNG tuples; only load checkpoints you wrote.
    return torch.load(path, map_location="cpu", weights_only=False)
