"""The settings of one SFT run: which model, where it is saved, optimisation, LoRA, determinism.

One typed config (unknown keys rejected, invariants checked on load) that :func:`zerosearch.sft.run_sft`
turns into TRL's ``SFTConfig``; the same object is written into the run record next to the model.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LoRASettings(BaseModel):
    """Low-rank adapters (peft) instead of full fine-tuning."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, description="adapter rank")
    alpha: int = Field(32, ge=1, description="scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | str = Field(
        "all-linear", description="module names to adapt, or 'all-linear' (every linear layer but the head)")
    layers: list[int] | None = Field(
        None, description="only these decoder layers (0-based) get adapters (None: all); adapting only the top "
        "layers also spares the backward pass through the layers below (about 2x faster on a CPU)")
    merge: bool = Field(
        True, description="merge the adapters into the base weights before saving, so the output loads as a plain "
        "model everywhere; false saves the adapter only (load it with peft)")


class SFTRunConfig(BaseModel):
    """Model, output and optimisation of one completion-only SFT run."""

    model_config = ConfigDict(extra="forbid")

    # what and where
    model: str = Field(
        "smollm2-135m-instruct", description="HF hub id, local save_pretrained directory, or a built-in name "
        "(zerosearch.llm.models); ignored when run_sft is handed a model object")
    output_dir: Path = Field(..., description="where the trained model, tokenizer and sft_record.json go")
    overwrite: bool = Field(False, description="replace a non-empty output_dir")
    # optimisation
    max_steps: int = Field(200, ge=1, description="optimizer steps")
    batch_size: int = Field(8, ge=1, description="rows per device step")
    gradient_accumulation_steps: int = Field(1, ge=1)
    learning_rate: float = Field(5e-5, gt=0.0)
    lr_scheduler: str = Field("cosine", description="a transformers scheduler name: linear, cosine, constant, ...")
    lr_scheduler_kwargs: dict[str, float] = Field(
        default_factory=dict, description="its arguments, e.g. {min_lr_rate: 0.1} for cosine_with_min_lr")
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    max_length: int | None = Field(
        1024, ge=8, description="rows longer than this are cut (keep start); None keeps every token")
    group_by_length: bool = Field(
        False, description="batch rows of similar length together (less padding); it can bunch one kind of row "
        "into few batches (toy simulator: city rows, useful hit 0.81 instead of 0.997), so it is off by default")
    length_buckets: bool = Field(
        False, description="shuffled batches of rows of similar length (rows sorted by length within windows of 16 "
        "batches, then the batches shuffled): far less padding when short and long rows mix (toy policy: 28- and "
        "140-token rows, 1.9x fewer padded tokens than random batches) without group_by_length's long-to-short runs")
    lora: LoRASettings | None = Field(None, description="train LoRA adapters instead of every weight")
    # determinism and machine
    seed: int = Field(0, description="seeds initialisation of new weights, data order and dropout")
    dtype: str = Field("float32", description="weights' dtype while training: float32, bfloat16 or float16")
    mixed_precision: str = Field(
        "no", description="'bf16': float32 weights and optimizer state, forward and backward under bf16 autocast "
        "(TrainingArguments.bf16); 1.6x faster per step than float32 on a CPU (SmolLM2, 926 tokens: 8.4 s vs 14 s "
        "on one thread) without rounding small updates away as bfloat16 weights would; 'no': the weights' dtype")
    gradient_checkpointing: bool = Field(
        True, description="recompute activations in the backward pass (TRL's default): less memory, about a third "
        "more compute; a small model on a CPU trains faster without it")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads (None: leave torch's setting)")
    logging_steps: int = Field(10, ge=1, description="steps between loss records (one log line each)")
    progress_bar: bool = Field(
        False, description="TRL's tqdm bar and printed log dictionaries; off: one line per logging step through "
        "run_sft's log callable (a demo running many tasks keeps a readable terminal)")
    probe_rows: int = Field(
        32, ge=0, description="rows whose completion loss is measured before and after training (0: skip)")
    use_cpu: bool = Field(False, description="train on CPU even when a GPU is present")

    @model_validator(mode="after")
    def _check(self) -> SFTRunConfig:
        if self.dtype not in {"float32", "bfloat16", "float16"}:
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")
        if self.mixed_precision not in {"no", "bf16"}:
            raise ValueError(f"mixed_precision must be 'no' or 'bf16', got {self.mixed_precision!r}")
        if self.mixed_precision == "bf16" and self.dtype != "float32":
            raise ValueError(f"mixed_precision 'bf16' keeps float32 weights; set dtype: float32 (got {self.dtype!r})")
        if self.group_by_length and self.length_buckets:
            raise ValueError("group_by_length and length_buckets are two batch orders; set at most one")
        if self.warmup_steps >= self.max_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be below max_steps ({self.max_steps})")
        return self
