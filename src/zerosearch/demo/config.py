"""What one ``zerosearch demo`` invocation runs: a world (:mod:`zerosearch.demo.world`) plus where and how.

``load_demo_config(world="toy")`` is the embedded default ``zerosearch demo`` runs; ``world="hotpotqa"`` is
ZeroSearch on real HotpotQA text with SmolLM2; ``world="path/to/world.yaml"`` is a user's own data. A YAML
given with ``--config`` is merged into that, key by key (``world: {rl: {steps: 10}}`` changes one setting of
the world and keeps the rest), then the command-line flags.

    config = load_demo_config(world="toy", out="runs/demo", steps=10, arms=["before_rl", "rl_real"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch.demo.world import ArmSpec, WorldSpec, load_world_data


class DemoConfig(BaseModel):
    """Everything ``zerosearch demo`` runs; the resolved config is saved next to the outputs."""

    model_config = ConfigDict(extra="forbid")

    world: WorldSpec
    out: Path = Field(Path("runs/demo"), description="world files, simulators, arms, results.json and report.html")
    seed: int = Field(0, description="seeds the world, warm-start, simulators and the first RL seed of every arm")
    arms: list[str] | None = Field(None, description="run only these of the world's arms (null: all)")
    workers: int = Field(2, ge=1, description="parallel worker processes (one torch thread each)")
    progress: bool = Field(False, description="per-step progress bars of the workers")

    @model_validator(mode="after")
    def _check(self) -> DemoConfig:
        if self.arms is not None:
            known = [a.name for a in self.world.arms]
            unknown = [a for a in self.arms if a not in known]
            if unknown or not self.arms:
                raise ValueError(f"arms {unknown or self.arms} are not arms of world {self.world.name!r}: choose "
                                 f"from {known}")
            if len(set(self.arms)) != len(self.arms):
                raise ValueError(f"arms repeat: {self.arms}")
        return self

    def selected_arms(self) -> list[ArmSpec]:
        """The arms this invocation runs, in the world's order."""
        return [a for a in self.world.arms if self.arms is None or a.name in self.arms]

    def seeds_of(self, arm: ArmSpec) -> list[int]:
        """The seeds ``arm`` runs: the demo seed and the ones after it."""
        return [self.seed + i for i in range(self.world.seeds_of(arm))]

    def result_shaping(self) -> dict[str, Any]:
        """The settings that shape results (checked when a run is resumed); not out, arms, workers, progress."""
        return self.model_dump(mode="json", exclude={"out", "arms", "workers", "progress"})


#: Flags of ``zerosearch demo`` that set a world field (flag -> dotted path inside the world).
WORLD_FLAGS = {"steps": ("rl", "steps"), "rl_seeds": ("rl", "seeds"),
               "test_questions": ("evaluation", "test_questions")}


def load_demo_config(path: str | Path | None = None, *, world: str = "toy", **overrides: Any) -> DemoConfig:
    """The world's config, updated from a YAML file and then from ``overrides`` (None values ignored).

    ``overrides`` takes DemoConfig fields (out, seed, arms, workers, progress) and the world shortcuts of
    :data:`WORLD_FLAGS` (steps, rl_seeds, test_questions).
    """
    import yaml

    data: dict[str, Any] = {"world": load_world_data(world)}
    if world != "toy":
        data["out"] = f"runs/demo-{data['world'].get('name', Path(world).stem)}"
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text("utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a mapping of DemoConfig fields, got {type(loaded).__name__}")
        data = merge(data, loaded)
    for key, value in overrides.items():
        if value is None:
            continue
        if key in WORLD_FLAGS:
            section, field = WORLD_FLAGS[key]
            data = merge(data, {"world": {section: {field: value}}})
        else:
            data[key] = value
    return DemoConfig.model_validate(data)


#: Keys that pick a variant (``source`` of data/policy/simulators, ``kind`` of engines): a mapping that names
#: another variant replaces the base mapping instead of being merged into it.
VARIANT_KEYS = ("source", "kind")


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in, nested mappings key by key (lists and values replaced; a mapping
    that switches ``source`` or ``kind`` replaces the old one, whose other keys belong to the old variant).

    >>> merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"c": 3}, "d": [2]})
    {'a': {'b': 1, 'c': 3}, 'd': [2]}
    >>> merge({"p": {"source": "toy", "x": 1}}, {"p": {"source": "model", "model": "m"}})
    {'p': {'source': 'model', 'model': 'm'}}
    """
    out = dict(base)
    for key, value in update.items():
        old = out.get(key)
        switched = isinstance(value, dict) and isinstance(old, dict) and any(
            k in value and k in old and value[k] != old[k] for k in VARIANT_KEYS)
        out[key] = merge(old, value) if isinstance(value, dict) and isinstance(old, dict) and not switched else value
    return out
