"""Mixed precision for training: fp32 master weights, bf16 compute under autocast.

Why: AdamW at lr 1e-6 on bf16 weights rounds almost every update away (a bf16 weight near 0.02 has a
spacing of about 1.2e-4, far above a 1e-6 step), so a "bf16 run" barely trains. The trainer therefore
keeps every trainable parameter (and the optimizer state) in float32 and runs the forward passes, the
rollout included, under ``torch.autocast`` in the configured compute dtype; the gradient lands in fp32
and AdamW updates fp32 weights, so updates of any size are applied. bfloat16 needs no loss scaling.
float16 would need a gradient scaler, which this trainer does not implement: it is refused with an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def compute_dtype(name: str) -> torch.dtype:
    """The autocast dtype for ``model.dtype``; float16 (and anything else) is a clear error."""
    if name not in COMPUTE_DTYPES:
        raise ValueError(
            f"model.dtype {name!r} is not supported for training: float16 needs a gradient scaler, which "
            "this trainer does not implement; use bfloat16 (weights stay float32, compute in bf16) or float32"
        )
    return COMPUTE_DTYPES[name]


@contextlib.contextmanager
def autocast(device: torch.device | str, dtype: torch.dtype) -> Iterator[None]:
    """``torch.autocast`` in ``dtype`` on ``device``'s type; nothing for float32.

    The cast-weight cache is off: with it, autocast keeps a bf16 copy of every weight it touched until the
    context exits (half the model's fp32 size, held through a whole micro-batch); without it each layer's
    copy lives only while that layer runs (and, under gradient checkpointing, is recomputed in backward).
    """
    if dtype == torch.float32:
        yield
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=dtype, cache_enabled=False):
        yield


def check_master_weights(model: Any, what: str = "policy") -> None:
    """Every trainable parameter must be float32 (the master weights); names the first offender."""
    for name, param in model.named_parameters():
        if param.requires_grad and param.dtype != torch.float32:
            raise ValueError(
                f"{what} parameter {name!r} is {param.dtype}, but the trainer updates float32 master weights "
                "(small AdamW steps round away in bf16/fp16). Load the model in float32 and set model.dtype "
                "to the compute precision (bfloat16 runs under autocast): e.g. model.float()"
            )
