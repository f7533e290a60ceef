"""The one training config: every knob of ``zerosearch train``, validated, unknown keys rejected.

Load it from YAML with :func:`load_config`; errors name the bad key with its full dotted path::

    config = load_config("configs/grpo_tiny.yaml")

Sections: ``model`` (the policy, LoRA), ``algorithm`` (advantage estimator, policy loss, KL, critic,
batch splitting), ``optimizer``, ``rollout`` (:class:`zerosearch.rollout.RolloutConfig`), ``engine``
(:data:`zerosearch.search.factory.EngineConfig`), ``shadow_engine`` (optional, see
:mod:`zerosearch.train.shadow`), ``curriculum``, ``reward``, ``data``, ``checkpoint``,
``logging``, ``validation``. Defaults follow the ZeroSearch recipe and verl's defaults.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zerosearch import config_files
from zerosearch.config_files import load_yaml_config, validate_config
from zerosearch.curriculum import CurriculumConfig
from zerosearch.rewards import Metric, RewardConfig
from zerosearch.rollout import RolloutConfig
from zerosearch.search.factory import EngineConfig
from zerosearch.train.estimators import ESTIMATORS, AdvantageEstimator, get_estimator
from zerosearch.train.losses import AggMode, KLType, PolicyLossConfig

#: Raised for a config that cannot be used (shared by every config file; callers catch it from here).
ConfigError = config_files.ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraSettings(_Section):
    """Train low-rank adapters (peft) instead of all weights."""

    enabled: bool = Field(False, description="wrap the policy with LoRA adapters")
    r: int = Field(16, ge=1, description="adapter rank")
    alpha: int = Field(32, ge=1, description="adapter scaling numerator (lora_alpha)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the adapter input")
    target_modules: list[str] | Literal["all-linear"] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="module names to adapt, or 'all-linear'",
    )


class ModelSettings(_Section):
    """The policy model."""

    name_or_path: str = Field(description="local dir, hub id, or a built-in name (smollm2-135m-instruct)")
    tokenizer: str | None = Field(None, description="tokenizer location (default: the model's)")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="compute precision: bfloat16 runs the passes under autocast while the trained "
        "weights and AdamW state stay float32 (master weights); float32 keeps resume bit-exact on CPU; "
        "float16 is refused (it would need a gradient scaler)"
    )
    device: str = Field("auto", description="torch device; auto = cuda when visible, else cpu")
    gradient_checkpointing: bool = Field(False, description="trade compute for activation memory")
    lora: LoraSettings = Field(default_factory=LoraSettings)

    @field_validator("dtype")
    @classmethod
    def _trainable_dtype(cls, value: str) -> str:
        from zerosearch.train.precision import compute_dtype

        compute_dtype(value)  # float16: the error says why and what to use
        return value


class KLPlacement(str, Enum):
    """Where the KL to the reference policy acts."""

    AUTO = "auto"  # the estimator's default: reward for REINFORCE++ and GAE (k1), loss otherwise
    LOSS = "loss"  # coef * agg(KL) added to the policy loss (GRPO / REINFORCE in the paper)
    REWARD = "reward"  # token_rewards -= coef * KL (REINFORCE++)
    NONE = "none"  # no reference model is loaded


class KLSettings(_Section):
    """KL between the policy and a frozen copy of the initial policy."""

    placement: KLPlacement = Field(KLPlacement.AUTO, description="auto, loss, reward or none")
    coef: float = Field(0.001, ge=0.0, description="KL coefficient (paper: 0.001); 0 = no reference model")
    type: KLType | None = Field(
        None, description="estimator k1/k2/k3/abs; default: k3 (low_var_kl) in the loss, k1 in the reward"
    )

    def resolved_placement(self, estimator: str) -> KLPlacement:
        """Placement after applying the estimator's default; NONE when the coefficient is 0."""
        if self.coef == 0.0 or self.placement is KLPlacement.NONE:
            return KLPlacement.NONE
        if self.placement is KLPlacement.AUTO:
            return KLPlacement.REWARD if get_estimator(estimator).kl_in_reward else KLPlacement.LOSS
        return self.placement

    def resolved_type(self, estimator: str) -> KLType:
        """The KL estimator used where the KL is placed."""
        if self.type is not None:
            return self.type
        return KLType.K1 if self.resolved_placement(estimator) is KLPlacement.REWARD else KLType.K3


class CriticSettings(_Section):
    """The value model for estimators that need values (GAE / PPO)."""

    model: Literal["separate", "shared"] = Field(
        "separate", description="separate: a copy of the initial policy's backbone + value head with its own "
        "optimizer, lr and gradient clip (verl / the reference); shared: a head on the policy's backbone, the "
        "value loss (x vf_coef) trains the policy at the policy's lr"
    )
    lr: float = Field(1e-5, gt=0.0, description="critic learning rate (reference PPO recipe: 1e-5)")
    max_grad_norm: float | None = Field(1.0, gt=0.0, description="separate critic's gradient clip; null disables")
    vf_coef: float = Field(0.5, ge=0.0, description="weight of the value loss in the shared-backbone loss")
    cliprange_value: float | None = Field(0.5, gt=0.0, description="value clipping range; null disables")
    detach_backbone: bool = Field(
        False, description="shared critic only: train the head on detached features (the value loss leaves "
        "the policy alone)"
    )


class AlgorithmSettings(_Section):
    """Advantage estimator, policy loss and how a step's episodes are split into updates."""

    estimator: str = Field(
        AdvantageEstimator.GRPO.value,
        description=f"registered estimator: {', '.join(e.value for e in AdvantageEstimator)}",
    )
    gamma: float = Field(1.0, ge=0.0, le=1.0, description="discount (GAE, REINFORCE++)")
    lam: float = Field(1.0, ge=0.0, le=1.0, description="GAE lambda")
    norm_adv_by_std: bool = Field(True, description="GRPO: divide by the group std (false: Dr. GRPO style)")
    epsilon: float = Field(1e-6, gt=0.0, description="GRPO std epsilon")
    policy_loss: PolicyLossConfig = Field(default_factory=PolicyLossConfig)
    kl: KLSettings = Field(default_factory=KLSettings)
    entropy_coef: float = Field(0.0, ge=0.0, description="entropy bonus weight (entropy is always logged)")
    critic: CriticSettings = Field(default_factory=CriticSettings)
    ppo_epochs: int = Field(1, ge=1, description="passes over a step's episodes")
    mini_batch_size: int | None = Field(
        None, ge=1, description="episodes per optimizer update (None: the whole step, one update per epoch)"
    )
    micro_batch_size: int = Field(4, ge=1, description="episodes per forward/backward (gradient accumulation)")
    logits_chunk_size: int = Field(
        128, ge=1, description="policy tokens per chunk of the output head + log-softmax (memory: about "
        "chunk x vocabulary x 4 bytes per live copy, ~4 live in backward; the full logits are never built)")

    @field_validator("estimator")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ESTIMATORS:
            raise ValueError(f"unknown estimator {value!r}; registered: {sorted(ESTIMATORS)}")
        return value


class OptimizerSettings(_Section):
    """AdamW with warm-up and an optional decay."""

    lr: float = Field(1e-6, gt=0.0, description="policy learning rate (paper: 1e-6)")
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas")
    eps: float = Field(1e-8, gt=0.0, description="AdamW epsilon")
    max_grad_norm: float | None = Field(1.0, gt=0.0, description="gradient clipping norm; null disables")
    warmup_steps: int = Field(0, ge=0, description="training steps of linear warm-up from 0")
    warmup_ratio: float | None = Field(
        None, ge=0.0, le=1.0, description="warm-up as a fraction of total_steps (verl lr_warmup_steps_ratio); "
        "overrides warmup_steps when set")
    schedule: Literal["constant", "linear", "cosine"] = Field("constant", description="after warm-up")
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0, description="floor of linear/cosine decay, x lr")


class RewardSettings(_Section):
    """Episode reward (see zerosearch.rewards)."""

    metric: Metric = Field(Metric.F1, description="f1 (paper), em, or cover_em")
    format_score: float = Field(0.0, ge=0.0, le=1.0, description="reward of a well-formed wrong answer")

    def to_reward_config(self) -> RewardConfig:
        """The rewards module's config."""
        return RewardConfig(metric=self.metric, format_score=self.format_score)


class DataSettings(_Section):
    """Training and held-out questions."""

    train: str = Field(description="dataset spec for zerosearch.data.load_dataset: a JSONL/parquet path or name")
    train_limit: int | None = Field(None, ge=1, description="keep a seeded subset of this many questions")
    val: str | None = Field(None, description="held-out questions for validation (spec as for train)")
    val_limit: int | None = Field(64, ge=1, description="held-out questions used per validation")
    prompts_per_step: int = Field(4, ge=1, description="questions per step (paper: 64); episodes = x n_samples")
    shuffle: bool = Field(True, description="seeded reshuffle of the questions every epoch")


class CheckpointSettings(_Section):
    """When and how many checkpoints are kept."""

    every: int = Field(0, ge=0, description="save every N steps (0: only at the end)")
    keep_last: int = Field(2, ge=1, description="checkpoints kept; older ones are deleted")
    save_final: bool = Field(True, description="save after the last step")


class LoggingSettings(_Section):
    """Where metrics go."""

    tensorboard: bool = Field(True, description="write TensorBoard events under <output_dir>/tensorboard")
    wandb: bool = Field(False, description="also log to Weights & Biases (pip install zerosearch[wandb])")
    wandb_project: str = Field("zerosearch", description="W&B project")
    episodes_every: int = Field(0, ge=0, description="write the step's episodes to episodes.jsonl every N steps")
    progress: bool = Field(True, description="show a progress bar")
    plot: bool = Field(True, description="draw reward/searches/validation curves to <output_dir>/curves.png at the end")


class ValidationSettings(_Section):
    """Periodic greedy evaluation on held-out questions."""

    every: int = Field(0, ge=0, description="validate every N steps (0: never); needs data.val")
    at_start: bool = Field(False, description="also validate before the first step")
    engine: EngineConfig | None = Field(None, description="engine for validation (default: the training engine)")
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy")


class TrainConfig(_Section):
    """Everything ``zerosearch train`` needs."""

    seed: int = Field(0, description="seeds data order, rollouts, initialisation of new heads")
    total_steps: int = Field(203, ge=1, description="training steps (paper: 203)")
    output_dir: Path = Field(Path("runs/zerosearch"), description="metrics, checkpoints, episodes go here")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch's default)")
    model: ModelSettings
    algorithm: AlgorithmSettings = Field(default_factory=AlgorithmSettings)
    optimizer: OptimizerSettings = Field(default_factory=OptimizerSettings)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    engine: EngineConfig
    shadow_engine: EngineConfig | None = Field(
        None, description="a real engine asked each step's queries after the rollout, never shown to the policy; "
        "logs shadow/* hit agreement with the training engine (zerosearch.train.shadow); null: off")
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig)
    reward: RewardSettings = Field(default_factory=RewardSettings)
    data: DataSettings
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)

    @field_validator("shadow_engine")
    @classmethod
    def _real_shadow(cls, value: EngineConfig | None) -> EngineConfig | None:
        if value is not None and value.kind == "simulated":
            raise ValueError("must be a real engine (bm25, dense, remote or web): it measures the training "
                             "engine against real retrieval; a simulated shadow would measure nothing real")
        return value

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if "total_steps" not in self.curriculum.model_fields_set:
            # The paper's m is the run's length; follow total_steps unless set explicitly.
            self.curriculum = self.curriculum.model_copy(update={"total_steps": self.total_steps})
        episodes = self.data.prompts_per_step * self.rollout.n_samples
        mini = self.algorithm.mini_batch_size or episodes
        if episodes % mini:
            raise ValueError(
                f"algorithm.mini_batch_size ({mini}) must divide the episodes per step "
                f"(data.prompts_per_step x rollout.n_samples = {episodes})"
            )
        self._check_shadow()
        if self.validation.every and not self.data.val:
            raise ValueError("validation.every > 0 needs held-out questions: set data.val")
        self._check_validation_engine()
        if self.algorithm.policy_loss.loss_agg_mode is AggMode.SEQ_MEAN_TOKEN_SUM_NORM and self.loss_scale is None:
            raise ValueError(
                "loss_agg_mode seq-mean-token-sum-norm divides by a constant: set "
                "algorithm.policy_loss.loss_scale_factor or rollout.max_response_tokens"
            )
        return self

    def _check_validation_engine(self) -> None:
        validating = self.validation.every or self.validation.at_start
        engine = self.validation.engine or self.engine
        if validating and engine.kind == "simulated" and engine.prompt_style == "reference":
            raise ValueError(
                "validation never shows the engine the gold answers, and a simulator with prompt_style 'reference' "
                "needs them in every prompt: set validation.engine to a real engine (bm25, dense, remote; the "
                "paper evaluates with one) or a simulated one with prompt_style 'ours'")

    def _check_shadow(self) -> None:
        if self.shadow_engine is not None and self.shadow_engine == self.engine:
            raise ValueError("shadow_engine is the training engine's config: it would agree on every search; "
                             "point it at a different (real) engine or leave it out")

    @property
    def loss_scale(self) -> float | None:
        """The constant of seq-mean-token-sum-norm: ``loss_scale_factor``, else the response budget (verl
        divides by its fixed max_response_length); None when neither is set."""
        factor = self.algorithm.policy_loss.loss_scale_factor
        if factor is not None:
            return float(factor)
        budget = self.rollout.max_response_tokens
        return float(budget) if budget is not None else None

    @property
    def episodes_per_step(self) -> int:
        """Episodes sampled per step (prompts x samples)."""
        return self.data.prompts_per_step * self.rollout.n_samples


def parse_config(data: dict, source: str = "<dict>") -> TrainConfig:
    """Validate a plain dict (e.g. parsed YAML) into a :class:`TrainConfig`."""
    return validate_config(TrainConfig, data, source, what="training config")


def load_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """Read and validate a YAML training config; ``overrides`` (dotted keys) are applied first."""
    return load_yaml_config(path, TrainConfig, overrides, what="training config")


def dump_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as YAML (what a run used, next to its outputs)."""
    path = Path(path)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return path
