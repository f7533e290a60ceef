"""Supervised fine-tuning of any causal LM with TRL's ``SFTTrainer``, loss on completion tokens only.

One wrapper for every SFT in the project (the simulation LLM of ``zerosearch simulator sft``, the toy
world's simulator, a policy warm-start), so they share seeding, LoRA handling, the saved layout and the
run record. Data comes in one of two shapes:

* text pairs: ``{"prompt": str, "completion": str}`` — the prompt is tokenized alone, exactly as a backend
  encodes it at inference, then the completion and EOS; only the completion and EOS are trained;
* pre-tokenized rows: ``{"input_ids": [...], "completion_mask": [...]}`` — 1 marks a trained token, 0 a
  masked one, anywhere in the row (a policy warm-start masks injected ``<information>`` blocks inside
  its completion).

    from zerosearch.sft import SFTRunConfig, run_sft
    result = run_sft(SFTRunConfig(model="smollm2-135m-instruct", output_dir="runs/sim", max_steps=200),
                     [{"prompt": "Search query: x\\nResults:\\nDoc 1:", "completion": " a passage"}])
    result.output_dir   # save_pretrained model + tokenizer + sft_record.json

LoRA runs (``lora=LoRASettings(...)``) are merged into the base weights before saving by default, so the
output loads with plain ``AutoModelForCausalLM.from_pretrained`` in every backend.
"""

from zerosearch.sft.config import LoRASettings, SFTRunConfig
from zerosearch.sft.data import SFTDataError, rows_from_pairs, to_dataset, validate_rows
from zerosearch.sft.trainer import RECORD_NAME, SFTResult, run_sft

__all__ = [
    "RECORD_NAME",
    "LoRASettings",
    "SFTDataError",
    "SFTResult",
    "SFTRunConfig",
    "rows_from_pairs",
    "run_sft",
    "to_dataset",
    "validate_rows",
]
