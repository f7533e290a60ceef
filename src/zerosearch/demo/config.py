"""The demo's settings: the world, the two simulators, the arms and the RL recipe, as one YAML-able config.

``DemoConfig()`` is the embedded default ``zerosearch demo`` runs: a harder toy world (four question kinds,
up to three hops, top-3 results with distractors that share names), a query-sensitive simulator (the
``imitate`` recipe), a hinted one (the paper's prompt style) and seven arms on the same held-out questions.
Every field can be set from YAML (``zerosearch demo --config demo.yaml``) or the CLI flags.

    config = DemoConfig(out="runs/demo", steps=10, arms=["before_rl", "rl_real"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch.curriculum import CurriculumConfig
from zerosearch.toyworld.build import ToyBuildConfig
from zerosearch.toyworld.demos import DemoMix
from zerosearch.toyworld.model import TinyModelConfig
from zerosearch.toyworld.simulator import TOKENS_PER_PASSAGE, SimulatorConfig, ToySFTConfig
from zerosearch.toyworld.warmstart import WarmStartConfig
from zerosearch.toyworld.world import QUESTION_KINDS, WorldConfig

ArmName = Literal["direct", "rag", "before_rl", "rl_real", "zerosearch", "fixed_noise", "hinted"]
ARM_NAMES: tuple[ArmName, ...] = ("direct", "rag", "before_rl", "rl_real", "zerosearch", "fixed_noise", "hinted")
#: Arms that train (the rest only evaluate the warm-started policy).
RL_ARMS: tuple[ArmName, ...] = ("rl_real", "zerosearch", "fixed_noise", "hinted")
TOP_K = 3


def harder_world() -> ToyBuildConfig:
    """The demo's world: all four question kinds (up to 3 hops), top-3 results in the demonstrations.

    The warm-start searches about half the time and skips later hops of multi-hop questions 40% of the
    time, so before RL the policy is well above zero but far from what searching every hop gives.
    """
    return ToyBuildConfig(
        world=WorldConfig(kinds=QUESTION_KINDS),
        demos=DemoMix(no_search=0.5, skip_hop=0.4, top_k=TOP_K),
        skills=WarmStartConfig(steps=1500, check_every=250, reading_target=0.9),
    )


def _simulator(recipe: Literal["imitate", "hinted"]) -> SimulatorConfig:
    """A simulator for the RL (train) people only, two layers deep: it serves only their queries, and the
    default four-layer model at batch 32 cost ~0.55 CPU-s per step on top-3 outputs (measured)."""
    return SimulatorConfig(
        recipe=recipe, top_k=TOP_K, splits=["train"], exact_repeats=4, measure_questions=200,
        max_new_tokens=TOKENS_PER_PASSAGE * TOP_K,
        model=TinyModelConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
        sft=ToySFTConfig(steps=600, batch_size=16, learning_rate=2e-3, warmup_steps=20))


def imitate_simulator() -> SimulatorConfig:
    """The ZeroSearch arm's simulator: no answer hint, query-sensitive (``MINIATURE-FINDINGS.md``)."""
    return _simulator("imitate")


def hinted_simulator() -> SimulatorConfig:
    """The comparison simulator: the paper's prompt style, the gold answer handed to it."""
    return _simulator("hinted")


class RLSettings(BaseModel):
    """The RL recipe every RL arm shares (GRPO, no KL); only the engine and the noise differ between arms."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(3e-4, gt=0.0)
    prompts_per_step: int = Field(8, ge=1)
    n_samples: int = Field(8, ge=2, description="episodes per question (the GRPO group)")
    max_new_tokens: int = Field(12, ge=1, description="tokens per policy turn (a toy query or answer is < 8)")
    validate_every: int = Field(10, ge=1, description="held-out validation with real BM25 every N steps")
    val_questions: int = Field(60, ge=1, description="held-out questions per validation")
    curriculum: CurriculumConfig = Field(
        default_factory=lambda: CurriculumConfig(kind="exponential", p_start=0.0, p_end=0.3, base=4.0),
        description="the ZeroSearch arm's noise schedule (p_end 0.3: MINIATURE-FINDINGS.md); total_steps = steps")
    fixed_noise: float = Field(0.3, ge=0.0, le=1.0, description="the fixed-noise arm's p at every step")

    def train_overrides(self) -> dict[str, Any]:
        """The parts of a TrainConfig this recipe sets."""
        return {"optimizer": {"lr": self.learning_rate, "weight_decay": 0.0},
                "algorithm": {"estimator": "grpo", "kl": {"coef": 0.0}, "micro_batch_size": 64}}


class DemoConfig(BaseModel):
    """Everything ``zerosearch demo`` runs; the resolved config is saved next to the outputs."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(Path("runs/demo"), description="world, simulators, arms and results.json go here")
    seed: int = Field(0, description="seeds the world, warm-start, simulators and the first RL seed")
    steps: int = Field(20, ge=1, description="RL steps per RL arm")
    rl_seeds: int = Field(2, ge=1, description="seeds of the real-engine and ZeroSearch arms (spread); others: 1")
    arms: list[ArmName] = Field(default_factory=lambda: list(ARM_NAMES), min_length=1)
    workers: int = Field(2, ge=1, description="parallel worker processes (one torch thread each)")
    test_questions: int = Field(300, ge=1, description="held-out questions every arm is evaluated on")
    usd_per_1k: float | None = Field(None, ge=0.0, description="search API price (None: the paper's SerpAPI rate)")
    world: ToyBuildConfig = Field(default_factory=harder_world)
    simulator: SimulatorConfig = Field(default_factory=imitate_simulator)
    hinted_simulator: SimulatorConfig = Field(default_factory=hinted_simulator)
    rl: RLSettings = Field(default_factory=RLSettings)
    progress: bool = Field(False, description="per-step progress bars of the workers")

    @model_validator(mode="after")
    def _check(self) -> DemoConfig:
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arms repeat: {self.arms}")
        ks = {self.world.demos.top_k, self.simulator.top_k, self.hinted_simulator.top_k}
        if len(ks) != 1:
            raise ValueError(f"world.demos.top_k and both simulators' top_k must agree (got {sorted(ks)}): the "
                             "policy is warm-started on as many documents per search as the engines return")
        if self.simulator.recipe != "imitate" or self.hinted_simulator.recipe != "hinted":
            raise ValueError("simulator.recipe must be 'imitate' and hinted_simulator.recipe 'hinted'")
        return self

    @property
    def top_k(self) -> int:
        """Documents per search, for every engine of the demo."""
        return self.world.demos.top_k

    @property
    def max_turns(self) -> int:
        """Search rounds an episode may use: the most hops a question needs."""
        from zerosearch.toyworld.world import HOPS

        return max(HOPS[k] for k in self.world.world.kinds)

    def seeds_of(self, arm: str) -> list[int]:
        """The RL seeds of ``arm`` (baselines: the demo seed only)."""
        n = self.rl_seeds if arm in ("rl_real", "zerosearch") else 1
        return [self.seed + i for i in range(n)]

    def result_shaping(self) -> dict[str, Any]:
        """The settings that shape results (checked when a run is resumed); not out, arms, workers, progress."""
        return self.model_dump(mode="json", exclude={"out", "arms", "workers", "progress"})


def load_demo_config(path: str | Path | None = None, **overrides: Any) -> DemoConfig:
    """The default config, updated from a YAML file and then from ``overrides`` (None values ignored).

    The YAML is merged into the default key by key, so ``world: {demos: {top_k: 1}}`` changes that one
    setting and keeps the rest of the demo's world (not the plain ``ToyBuildConfig`` defaults).
    """
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text("utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a mapping of DemoConfig fields, got {type(loaded).__name__}")
        data = loaded
    data.update({k: v for k, v in overrides.items() if v is not None})
    return DemoConfig.model_validate(merge(DemoConfig().model_dump(mode="json"), data))


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in, nested mappings key by key (lists and values replaced).

    >>> merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"c": 3}, "d": [2]})
    {'a': {'b': 1, 'c': 3}, 'd': [2]}
    """
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
