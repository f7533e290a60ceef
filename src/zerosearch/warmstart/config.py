"""The one config of ``zerosearch sft``: data, engine, demonstrations, prompt and the SFT run.

Loaded from YAML (``configs/sft-*.yaml``) with unknown keys rejected and every error naming its dotted
key. ``sft`` is :class:`zerosearch.sft.SFTRunConfig` (the shared TRL wrapper's settings); its
``output_dir`` defaults to ``<output_dir>/model``. ``engine`` is any :data:`EngineConfig`; left out, it is
BM25 over the corpus pooled from ``data.aligned``.

    config = load_warmstart_config("configs/sft-smollm2-hotpotqa.yaml", {"sft.max_steps": 5})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch import config_files
from zerosearch.config_files import load_yaml_config, validate_config
from zerosearch.search.factory import BM25EngineConfig, EngineConfig
from zerosearch.sft import SFTRunConfig
from zerosearch.warmstart.demos import DemoConfig

CORPUS_FILE = "corpus.jsonl"
MODEL_DIR = "model"

#: Raised for a config that cannot be used (shared by every config file; callers catch it from here).
ConfigError = config_files.ConfigError


class DataSettings(BaseModel):
    """Where the training questions (and the corpus) come from, and how they are split."""

    model_config = ConfigDict(extra="forbid")

    aligned: Path | None = Field(
        None, description="HotpotQA-layout JSON (questions with their paragraphs): pooled into <output_dir>/"
        "corpus.jsonl and split by question into train (demonstrated) and test (held out)")
    questions: list[str] = Field(
        default_factory=list, description="extra QA dataset specs (file or name=path) demonstrated in full, "
        "format-only (their answers need not be in the corpus)")
    questions_limit: int | None = Field(None, ge=1, description="seeded subset of each extra dataset")
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0, description="share of aligned questions held out")
    split_seed: int = Field(0, description="seeds the split (the same seed gives the same held-out questions)")

    @model_validator(mode="after")
    def _check(self) -> DataSettings:
        if self.aligned is None and not self.questions:
            raise ValueError("no training questions: set data.aligned (questions with paragraphs) or data.questions")
        return self


class PromptSettings(BaseModel):
    """How episodes are rendered and tokenised: keep equal to the rollout config that will use the model."""

    model_config = ConfigDict(extra="forbid")

    template_path: str | None = Field(None, description="instruction template (None: the built-in one)")
    use_chat_template: bool | None = Field(None, description="None: when the tokenizer has one")
    max_information_tokens: int | None = Field(
        None, ge=1, description="cut each <information> block as the rollout's max_information_tokens does")


class WarmStartConfig(BaseModel):
    """Everything ``zerosearch sft`` needs."""

    model_config = ConfigDict(extra="forbid")

    output_dir: Path = Field(description="corpus, split, demonstrations, the trained model and the run record")
    data: DataSettings
    engine: EngineConfig | None = Field(None, description="engine answering the demonstrations' searches "
                                        "(None: BM25 over the pooled corpus)")
    demos: DemoConfig = Field(default_factory=DemoConfig)
    prompt: PromptSettings = Field(default_factory=PromptSettings)
    sft: SFTRunConfig = Field(description="the TRL run (zerosearch.sft.SFTRunConfig)")
    overwrite: bool = Field(False, description="replace an existing output_dir's model")

    @model_validator(mode="before")
    @classmethod
    def _sft_output(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("sft"), dict) and "output_dir" in data:
            sft = dict(data["sft"])
            sft.setdefault("output_dir", str(Path(data["output_dir"]) / MODEL_DIR))
            sft.setdefault("overwrite", bool(data.get("overwrite", False)))
            data = {**data, "sft": sft}
        return data

    @model_validator(mode="after")
    def _check(self) -> WarmStartConfig:
        if self.engine is None and self.data.aligned is None:
            raise ValueError("engine is not set and there is no data.aligned corpus to search; set one of them")
        return self

    @property
    def corpus_path(self) -> Path:
        """Where the pooled corpus is written."""
        return self.output_dir / CORPUS_FILE

    def engine_config(self) -> Any:
        """The engine to build: the configured one, or BM25 over the pooled corpus."""
        return self.engine if self.engine is not None else BM25EngineConfig(corpus=self.corpus_path, progress=False)


def parse_warmstart_config(data: Any, source: str = "<dict>") -> WarmStartConfig:
    """Validate a plain dict (parsed YAML) into a :class:`WarmStartConfig`."""
    return validate_config(WarmStartConfig, data, source, what="warm-start config")


def load_warmstart_config(path: str | Path, overrides: dict[str, Any] | None = None) -> WarmStartConfig:
    """Read a YAML config, apply ``overrides`` (dotted keys, e.g. ``sft.max_steps``) and validate it."""
    return load_yaml_config(path, WarmStartConfig, overrides, what="warm-start config",
                            example="configs/sft-smollm2-hotpotqa.yaml")
