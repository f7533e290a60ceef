"""What a side-by-side demo run produces: ``results.json``, the contract between the runner and the report.

The demo (``zerosearch demo``) runs several *arms* on the same held-out questions of one world (toy,
HotpotQA or a user's) and evaluates every arm with the world's **real** engine. The runner
(``demo/runner.py``) writes one :class:`DemoResults` as ``<out>/results.json``; the report
(``demo/report.py``) reads only that file and the files it names, so a report can be re-rendered from a
finished run without re-running anything.

Paths inside the file are relative to the directory that holds ``results.json``.

    results = DemoResults.model_validate_json(Path("runs/demo/results.json").read_text())
    results.arm("zerosearch").scores("greedy").em
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ArmKind = Literal["baseline", "rl"]
Decoding = Literal["greedy", "sampled"]
Metric = Literal["em", "f1"]
RESULTS_FILE = "results.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scores(_Strict):
    """Held-out means over the test questions, evaluated with the real engine."""

    em: float = Field(ge=0, le=1)
    f1: float = Field(ge=0, le=1)
    cover_em: float = Field(ge=0, le=1)
    searches: float = Field(ge=0, description="mean searches per question")
    answered: float = Field(ge=0, le=1, description="share of questions that ended with a valid <answer>")
    n: int = Field(ge=1, description="questions evaluated")


class SeedResult(_Strict):
    """One seed of one arm: its scores per decoding (greedy and/or sampled) on the same held-out questions."""

    seed: int
    scores: dict[Decoding, Scores] = Field(min_length=1, description="decoding -> held-out scores")
    run_dir: str | None = Field(None, description="training run directory (RL arms), relative")


class ExampleEpisode(_Strict):
    """One held-out episode shown in the report (the policy's turns and the documents it got back)."""

    question: str
    golds: list[str]
    prediction: str | None
    em: float
    f1: float | None = None
    turns: list[dict] = Field(description="QuestionRecord.turns: kind, content, text, ...")
    queries: list[str]
    documents: list[list[str]]


class TrainingCost(_Strict):
    """What the arm's training consumed; baselines have zero searches."""

    train_searches: int = Field(ge=0, description="searches issued to the TRAINING engine during RL")
    real_engine_searches: int = Field(
        ge=0, description="of those, searches that went to a real (billable) engine; 0 for simulated arms")
    api_usd: float = Field(ge=0, description="what train_searches would cost through a paid API at usd_per_1k")
    cpu_seconds: float = Field(ge=0, description="process CPU time of the arm (training + its evaluation)")
    wall_seconds: float = Field(ge=0)


class ShadowSummary(_Strict):
    """The shadow engine's per-run verdict (RL arms whose training engine is not the real engine)."""

    train_hit_real_miss: float = Field(description="mean over steps of shadow/train_hit_real_miss")
    train_hit_real_miss_max: float = Field(description="largest single-step value")
    agreement: float = Field(description="mean over steps of shadow/agreement")


class Arm(_Strict):
    """One row of the comparison."""

    name: str = Field(description="short id, e.g. direct, rag, before_rl, rl_real, zerosearch, fixed_noise, hinted")
    title: str = Field(description="human label for the table")
    kind: ArmKind
    method: str = Field("agent", description="how the policy answered at test: direct, rag or agent")
    train_engine: str | None = Field(
        None, description="what the policy searched during RL: 'real' or the simulator's name (None: no RL)")
    curriculum: dict | None = Field(None, description="the CurriculumConfig used (RL arms)")
    seeds: list[SeedResult] = Field(min_length=1, description="first entry is the headline seed")
    records: str = Field(description="records.jsonl of the headline seed's greedy evaluation (harness format)")
    metrics_jsonl: list[str] = Field(default_factory=list, description="training metrics.jsonl per seed (RL arms)")
    curves_png: list[str] = Field(default_factory=list, description="training curves per seed (RL arms)")
    episodes: list[ExampleEpisode] = Field(default_factory=list, description="example held-out episodes (3)")
    cost: TrainingCost
    shadow: ShadowSummary | None = None
    simulator: str | None = Field(None, description="row name in DemoResults.simulator_quality for this arm")

    def scores(self, decoding: str) -> Scores:
        """Headline seed's scores for ``decoding``."""
        return self.seeds[0].scores[decoding]  # type: ignore[index]

    @property
    def greedy(self) -> Scores:
        """Headline seed, greedy decoding."""
        return self.scores("greedy")

    @property
    def sampled(self) -> Scores:
        """Headline seed, sampled decoding."""
        return self.scores("sampled")


class WorldSummary(_Strict):
    """Enough about the world to read the table."""

    name: str = Field("toy", description="the world's name (toy, hotpotqa, a user's)")
    description: str
    train_questions: int
    test_questions: int
    corpus_passages: int
    top_k: int
    question_kinds: dict[str, int] = Field(description="test questions per kind (e.g. hops); empty when unknown")
    real_engine: str = Field("bm25", description="the real engine's kind")


class DemoResults(_Strict):
    """Everything the report needs; written by the runner as ``results.json``."""

    seed: int
    world: WorldSummary
    metric: Metric = Field("em", description="the headline metric of the table and the claims")
    decodings: list[Decoding] = Field(default_factory=lambda: ["greedy", "sampled"], min_length=1)
    claim_settings: dict = Field(default_factory=dict, description="zerosearch.demo.world.ClaimSettings")
    usd_per_1k: float
    noise_schedule: dict = Field(description='{"config": CurriculumConfig, "steps": [...], "p": [...]}')
    simulator_quality: dict = Field(
        description="zerosearch.simulator.evaluate.evaluate_simulators output (its 'table'; per_query dropped), "
        "optionally per split: {'splits': {split: {'table': ...}}}")
    arms: list[Arm]
    wall_seconds: float = Field(
        description="the whole demo, excluding package set-up (a resumed demo: summed over its invocations)")
    peak_rss_mib: float | None = None
    stages: dict = Field(
        default_factory=dict, description="per task (warmstart, simulator:<name>, arm:<name>:<seed>, quality): "
        "wall_s, cpu_s, peak_rss_mib of the worker that ran it (kept from earlier invocations when resumed)")
    config: dict = Field(description="the resolved demo config")
    versions: dict = Field(description="zerosearch.provenance package versions")

    def arm(self, name: str) -> Arm:
        """The arm called ``name``; KeyError listing the known names otherwise."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm {name!r} in the results; arms: {[a.name for a in self.arms]}")

    def write(self, out_dir: str | Path) -> Path:
        """Write ``results.json`` into ``out_dir``."""
        path = Path(out_dir) / RESULTS_FILE
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path

    @classmethod
    def read(cls, out_dir: str | Path) -> DemoResults:
        """Read ``results.json`` from ``out_dir`` with a clear error when it is missing."""
        path = Path(out_dir) / RESULTS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; run `zerosearch demo --out {out_dir}` first")
        return cls.model_validate_json(path.read_text("utf-8"))
