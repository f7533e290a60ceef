"""YAML config files for every command: read, apply dotted ``--set`` overrides, validate, explain errors.

``zerosearch train`` and ``zerosearch sft`` (and any later command with a typed pydantic config) load their
files through these functions, so a missing file, a non-mapping top level, an override into a scalar and
an invalid key all read the same way: one line per bad key, named by its dotted path.

    cfg = load_yaml_config("configs/grpo_tiny.yaml", TrainConfig, {"optimizer.lr": 1e-5}, what="training config")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(ValueError):
    """A config that cannot be used; the message names every bad key."""


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``; values are parsed as YAML scalars.

    >>> parse_overrides(["optimizer.lr=0.0001", "rollout.n_samples=4", "engine.kind=bm25"])
    {'optimizer.lr': 0.0001, 'rollout.n_samples': 4, 'engine.kind': 'bm25'}
    """
    overrides: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value (dotted keys), got {pair!r}")
        key, value = pair.split("=", 1)
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def set_dotted(data: dict, dotted: str, value: object) -> None:
    """Set ``data["a"]["b"] = value`` for ``dotted="a.b"``, creating missing sections."""
    node = data
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
    node[leaf] = value


def flatten_dotted(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": leaf}``, the form settings are compared and reported in.

    >>> flatten_dotted({"rollout": {"max_turns": 2}, "seed": 0})
    {'rollout.max_turns': 2, 'seed': 0}
    """
    if not isinstance(data, Mapping):
        return {prefix.rstrip("."): data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(flatten_dotted(value, f"{prefix}{key}."))
    return flat


def validate_config(model: type[ModelT], data: Any, source: str = "<dict>", *, what: str = "config") -> ModelT:
    """Validate a plain mapping into ``model``; every error line names its dotted key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level of a {what} must be a mapping of sections")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = [f"invalid {what} {source}:"]
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "<root>"
            lines.append(f"  {key}: {e['msg']}")
        raise ConfigError("\n".join(lines)) from None


def load_yaml_config(path: str | Path, model: type[ModelT], overrides: dict[str, Any] | None = None, *,
                     what: str = "config", example: str | None = None) -> ModelT:
    """Read a YAML file, apply dotted ``overrides``, validate into ``model``."""
    p = Path(path)
    if not p.is_file():
        hint = f"; see {example}" if example else ""
        raise ConfigError(f"{what} {p} does not exist{hint}")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level of a {what} must be a mapping of sections")
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    return validate_config(model, data, str(p), what=what)
