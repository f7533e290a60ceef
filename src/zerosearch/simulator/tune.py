"""Stage 4, ``sft``: fine-tune a causal LM on a ``build`` dataset with the project's TRL wrapper.

Thin on purpose: the dataset's ``prompt``/``completion`` columns go to :func:`zerosearch.sft.run_sft`
(completion-only loss, full or LoRA, seeded, ``save_pretrained`` output), and ``simulator.yaml`` is
written beside the model: the ``engine`` section that serves it (fine-tuned mode, the recipe's hint
setting, no chat template — the format it was trained on), usable as
``zerosearch serve --config DIR/simulator.yaml`` or as ``SimulatedEngineConfig``.

    zerosearch simulator sft --data runs/sim/data-imitate --model smollm2-135m-instruct --out runs/sim/imitate
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from zerosearch.search.factory import SimulatedEngineConfig
from zerosearch.sft import SFTResult, SFTRunConfig, run_sft
from zerosearch.simulator.build import load_built

ENGINE_FILE = "simulator.yaml"


def served_engine_config(model_dir: str | Path, engine: dict[str, Any], **overrides: Any) -> SimulatedEngineConfig:
    """The engine config that serves the simulator in ``model_dir`` (``engine``: the build record's
    settings); ``overrides`` change sampling etc. (temperature, max_new_tokens, seed)."""
    from zerosearch.llm.factory import GeneratorConfig

    generator = GeneratorConfig(model=str(model_dir), dtype="float32", **overrides.pop("generator", {}))
    return SimulatedEngineConfig(generator=generator, **{**engine, **overrides})


def load_engine_config(model_dir: str | Path, **overrides: Any) -> SimulatedEngineConfig:
    """The engine config saved by :func:`tune_simulator` in ``model_dir``, top-level fields replaced by
    ``overrides`` (temperature, seed, max_new_tokens, ...)."""
    path = Path(model_dir) / ENGINE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {model_dir} was not written by `zerosearch simulator sft`")
    config = SimulatedEngineConfig.model_validate(yaml.safe_load(path.read_text("utf-8"))["engine"])
    return config.model_copy(update=overrides)


def tune_simulator(
    data_dir: str | Path, config: SFTRunConfig, *, model: Any = None, tokenizer: Any = None, log: Any = print,
    max_new_tokens: int = 256, callbacks: Any = (),
) -> SFTResult:
    """SFT on the dataset in ``data_dir`` (a ``build`` output); writes the model and ``simulator.yaml``.
    ``callbacks``: transformers ``TrainerCallback``s (the pipeline's per-epoch checkpoints)."""
    dataset, record = load_built(data_dir)
    pairs = dataset.select_columns(["prompt", "completion"])
    result = run_sft(config, pairs, model=model, tokenizer=tokenizer, log=log, callbacks=callbacks)
    engine = served_engine_config(result.output_dir.resolve(), record["engine"], max_new_tokens=max_new_tokens)
    write_engine_file(result.output_dir, engine, record["config"]["recipe"])
    return result


def write_engine_file(model_dir: str | Path, engine: SimulatedEngineConfig, recipe: str) -> Path:
    """``model_dir/simulator.yaml``: the ``engine`` section serving the model (a ``zerosearch serve
    --config`` file), the recipe it was tuned on in a comment."""
    body = yaml.safe_dump({"engine": engine.model_dump(mode="json")}, sort_keys=False)
    path = Path(model_dir) / ENGINE_FILE
    path.write_text(f"# tuned by `zerosearch simulator sft` on a '{recipe}' dataset\n{body}", "utf-8")
    return path
