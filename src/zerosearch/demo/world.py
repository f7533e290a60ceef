"""A world: the questions, corpus, real engine, policy, simulators, RL recipe and arms of one experiment.

ZeroSearch's ablation is the same experiment in every world: warm-start a policy, tune simulators of the
world's real engine, train arms against the real engine and against the simulators, score every arm on
held-out questions with the real engine. What differs between the toy world, real HotpotQA text and a
user's own data is *data and settings*, never code, so a world is one typed, YAML-able
:class:`WorldSpec` that the one runner (:mod:`zerosearch.demo.runner`) executes.

Built-in worlds ship as YAML files next to this module (``worlds/toy.yaml``, ``worlds/hotpotqa.yaml``);
``--world path/to/world.yaml`` loads a user's, with relative paths resolved against the file's folder::

    world = load_world("toy")                       # the embedded default
    world = load_world("my_world.yaml")             # questions + corpus of your own (docs/demo.md)

Sources:

- ``data``: ``toy`` (the seeded generator, :mod:`zerosearch.toyworld`), ``aligned`` (questions that ship
  with their own paragraphs, HotpotQA's layout, pooled into a corpus and split by question) or ``files``
  (a corpus JSONL and question files of your own);
- ``policy``: ``toy`` (a tiny Llama warm-started on the toy world's demonstrations), ``demonstrations``
  (any causal LM warm-started on the protocol with demonstrations from the real engine,
  :mod:`zerosearch.warmstart`) or ``model`` (a policy that already follows the protocol);
- ``simulators``: named simulator recipes (``zerosearch.simulator``), which RL arms train against.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch.curriculum import CurriculumConfig
from zerosearch.toyworld.build import ToyBuildConfig
from zerosearch.toyworld.simulator import SimulatorConfig as ToySimulatorConfig

#: The worlds that ship with the package (``--world NAME``).
BUILT_IN_WORLDS = ("toy", "hotpotqa")
#: Arms whose roles the claims know (a world may define others; claims about missing roles are "not measured").
DEFAULT_TITLES = {
    "direct": "Direct answer (no search)",
    "rag": "RAG (one search with the question)",
    "before_rl": "Policy before RL",
    "rl_real": "RL with the real engine (Search-R1 analogue)",
    "zerosearch": "ZeroSearch: fine-tuned simulator + curriculum",
    "fixed_noise": "Fine-tuned simulator, fixed noise",
    "hinted": "Hinted simulator (paper prompt style) + curriculum",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- data ---------------------------------------------------------------------------------------------
class ToyData(_Strict):
    """The seeded toy world: made-up people, cities and companies (:mod:`zerosearch.toyworld`)."""

    source: Literal["toy"] = "toy"
    build: ToyBuildConfig = Field(default_factory=ToyBuildConfig,
                                  description="the world generator and the toy policy's warm-start")


class AlignedData(_Strict):
    """Questions that ship with their own paragraphs (HotpotQA's distractor layout), pooled into one corpus."""

    source: Literal["aligned"] = "aligned"
    path: Path = Field(description="HotpotQA-layout JSON: question, answer, context (titles + sentences), "
                       "optionally supporting_facts")
    max_words: int | None = Field(
        30, ge=1, description="keep each paragraph's first N words (snippets; the paper's simulator writes ~30 "
        "words a document); null keeps whole paragraphs")
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0, description="share of questions held out (split by question)")
    split_seed: int = Field(0, description="seeds the split")
    skip_yes_no: bool = Field(False, description="leave out questions answered yes/no (no passage holds them)")


class FilesData(_Strict):
    """A corpus and questions of your own."""

    source: Literal["files"] = "files"
    corpus: Path = Field(description="wiki-18 JSONL (id, contents = '\"Title\"\\ntext') or any format the BM25 "
                         "engine reads")
    train: Path = Field(description="QA file (JSONL/JSON/parquet, zerosearch.data loaders): RL and warm-start "
                        "questions, or all questions when test is not given")
    test: Path | None = Field(None, description="held-out QA file (None: split train by question)")
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0, description="share held out when test is not given")
    split_seed: int = Field(0, description="seeds that split")


DataSpec = Annotated[ToyData | AlignedData | FilesData, Field(discriminator="source")]


# ---- policy -------------------------------------------------------------------------------------------
class ToyPolicy(_Strict):
    """The toy world's tiny Llama, warm-started as ``data.build`` says."""

    source: Literal["toy"] = "toy"


class DemonstrationPolicy(_Strict):
    """Any causal LM, warm-started on protocol demonstrations from the real engine (``zerosearch sft``)."""

    source: Literal["demonstrations"] = "demonstrations"
    demos: dict[str, Any] = Field(default_factory=dict, description="zerosearch.warmstart.demos.DemoConfig fields")
    sft: dict[str, Any] = Field(default_factory=dict, description="zerosearch.sft.SFTRunConfig fields (model, "
                                "steps, learning rate, ...); output_dir is the runner's")


class ReadyPolicy(_Strict):
    """A policy that already follows the search protocol (a save_pretrained directory or hub id)."""

    source: Literal["model"] = "model"
    model: str = Field(description="local directory or hub id")


PolicySpec = Annotated[ToyPolicy | DemonstrationPolicy | ReadyPolicy, Field(discriminator="source")]


# ---- simulators ---------------------------------------------------------------------------------------
class ToySimulator(_Strict):
    """A tiny Llama simulator of the toy world (``zerosearch.toyworld.simulator``)."""

    source: Literal["toy"] = "toy"
    config: ToySimulatorConfig = Field(default_factory=ToySimulatorConfig)


class PipelineSimulator(_Strict):
    """A simulator tuned by ``zerosearch.simulator`` from a pretrained causal LM on the world's training
    questions (collect -> label -> build -> SFT -> evaluate)."""

    source: Literal["pipeline"] = "pipeline"
    config: dict[str, Any] = Field(default_factory=dict, description="zerosearch.simulator pipeline settings")


SimulatorSpec = Annotated[ToySimulator | PipelineSimulator, Field(discriminator="source")]


# ---- rollout, RL, evaluation, arms --------------------------------------------------------------------
class PromptSpec(_Strict):
    """How the policy's prompt is rendered (training, validation and evaluation share it)."""

    template: str | None = Field(None, description="'toy' (the toy world's short raw template), a file path, or "
                                 "null (the built-in instruction)")
    use_chat_template: bool | None = Field(None, description="null: when the policy's tokenizer has one")


class RolloutSpec(_Strict):
    """Protocol limits of every episode (training, validation and evaluation)."""

    max_turns: int = Field(2, ge=1, description="search rounds an episode may use")
    max_new_tokens: int = Field(128, ge=1, description="tokens per policy turn")
    top_k: int = Field(3, ge=1, description="documents per search, every engine")
    max_information_tokens: int | None = Field(None, ge=1, description="cut each <information> block (null: whole)")


class RLSpec(_Strict):
    """The RL recipe every RL arm shares; only the engine and the noise differ between arms."""

    steps: int = Field(20, ge=1, description="RL steps per run")
    seeds: int = Field(2, ge=1, description="seeds of the arms that ask for the RL seed count (seeds: rl)")
    estimator: str = Field("grpo", description="advantage estimator (zerosearch train's registry)")
    learning_rate: float = Field(3e-4, gt=0.0)
    kl_coef: float = Field(0.0, ge=0.0, description="KL to the warm-started policy (low-variance k3 in the loss for "
                           "GRPO; paper: 0.001); 0 skips the reference pass")
    prompts_per_step: int = Field(8, ge=1)
    n_samples: int = Field(8, ge=2, description="episodes per question (the GRPO group)")
    temperature: float = Field(1.0, gt=0.0, description="rollout temperature during training")
    validate_every: int = Field(10, ge=1, description="held-out validation with the real engine every N steps")
    val_questions: int = Field(60, ge=1, description="held-out questions per validation")
    curriculum: CurriculumConfig = Field(
        default_factory=lambda: CurriculumConfig(kind="exponential", p_start=0.0, p_end=0.3, base=4.0),
        description="noise schedule of arms with noise 'curriculum' (total_steps = steps)")
    fixed_noise: float = Field(0.3, ge=0.0, le=1.0, description="p at every step for arms with noise 'fixed'")
    train: dict[str, Any] = Field(
        default_factory=dict, description="any further zerosearch.train.TrainConfig fields (model dtype, algorithm, "
        "optimizer, checkpoint, ...), merged into every arm's config and validated there")


class EvaluationSpec(_Strict):
    """How every arm is scored: held-out questions, real engine, these decodings."""

    test_questions: int | None = Field(None, ge=1, description="first N held-out questions (null: all)")
    decodings: list[Literal["greedy", "sampled"]] = Field(
        default_factory=lambda: ["greedy", "sampled"], min_length=1,
        description="greedy (T=0) and/or sampled (one episode per question at T=1)")
    metric: Literal["em", "f1"] = Field("em", description="the headline metric of the table and the claims")
    answer_tokens: int | None = Field(None, ge=1, description="direct/RAG answer budget (null: the rollout's)")
    batch_size: int = Field(100, ge=1, description="questions per evaluation batch")


class ArmTraining(_Strict):
    """What an RL arm trains against."""

    engine: str = Field("real", description="'real' or the name of one of the world's simulators")
    noise: Literal["curriculum", "fixed", "none"] = Field(
        "curriculum", description="simulated engines: the curriculum, a fixed p (rl.fixed_noise), or always useful")


class ArmSpec(_Strict):
    """One row of the comparison: a method, and (RL arms) what it trained against."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="short id; direct, rag, before_rl, rl_real, "
                      "zerosearch, fixed_noise and hinted have roles in the claims")
    title: str | None = Field(None, description="label in the table (default: a standard one for the known names)")
    method: Literal["direct", "rag", "agent"] = Field("agent", description="how the policy answers at test")
    train: ArmTraining | None = Field(None, description="RL arms only")
    seeds: int | Literal["rl"] = Field(1, description="number of seeds, or 'rl' for rl.seeds")

    @model_validator(mode="after")
    def _check(self) -> ArmSpec:
        if self.train is not None and self.method != "agent":
            raise ValueError(f"arm {self.name!r}: an RL arm is evaluated as a search agent (method: agent)")
        return self

    @property
    def label(self) -> str:
        """The table's label."""
        return self.title or DEFAULT_TITLES.get(self.name, self.name)


class ClaimSettings(_Strict):
    """How the paper's claims are judged in this world."""

    tolerance: float = Field(0.03, ge=0.0, description="claim (a): how far ZeroSearch may fall below real-engine RL")
    clear_margin: float = Field(0.05, ge=0.0, description="claim (b): the smallest gap that counts as clearly above")
    near_zero: float | None = Field(
        0.05, ge=0.0, description="claim (e): direct answering at most this (null: not applicable, e.g. real "
        "questions a pretrained model may know)")


class WorldSpec(_Strict):
    """One world of the experiment: everything that differs between the toy world, HotpotQA and yours."""

    name: str = Field(description="short name (directory names, report title)")
    description: str = Field("", description="one sentence for the report")
    data: DataSpec
    engine: dict[str, Any] = Field(
        default_factory=lambda: {"kind": "bm25"}, description="the real engine (an engine config without corpus: "
        "bm25 or dense); the runner points it at the world's corpus")
    policy: PolicySpec
    simulators: dict[str, SimulatorSpec] = Field(default_factory=dict)
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    rl: RLSpec = Field(default_factory=RLSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    claims: ClaimSettings = Field(default_factory=ClaimSettings)
    arms: list[ArmSpec] = Field(min_length=1)
    usd_per_1k: float | None = Field(None, ge=0.0, description="search API price (null: the paper's SerpAPI rate)")

    @model_validator(mode="after")
    def _check(self) -> WorldSpec:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names repeat: {names}")
        for arm in self.arms:
            if arm.train and arm.train.engine != "real" and arm.train.engine not in self.simulators:
                raise ValueError(f"arm {arm.name!r} trains against {arm.train.engine!r}, which is neither 'real' nor "
                                 f"one of the world's simulators {sorted(self.simulators)}")
        toy_parts = {"data": self.data.source == "toy", "policy": self.policy.source == "toy"}
        toy_parts.update({f"simulator {n}": s.source == "toy" for n, s in self.simulators.items()})
        if any(toy_parts.values()) and self.data.source != "toy":
            raise ValueError(f"{[k for k, v in toy_parts.items() if v]} use the toy world's model, which needs "
                             "data.source: toy")
        if self.engine.get("kind") not in {"bm25", "dense"}:
            raise ValueError(f"engine.kind must be bm25 or dense (the real engine over the world's corpus), got "
                             f"{self.engine.get('kind')!r}")
        if "corpus" in self.engine:
            raise ValueError("engine.corpus is set by the runner (the world's corpus); leave it out")
        return self

    def arm(self, name: str) -> ArmSpec:
        """The arm called ``name``; KeyError naming the world's arms otherwise."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"world {self.name!r} has no arm {name!r}; arms: {[a.name for a in self.arms]}")

    def seeds_of(self, arm: ArmSpec) -> int:
        """How many seeds ``arm`` runs."""
        return self.rl.seeds if arm.seeds == "rl" else arm.seeds


# ---- loading ------------------------------------------------------------------------------------------
def world_file(name: str) -> Path:
    """The YAML of a built-in world, or ``name`` itself when it is a file."""
    if name in BUILT_IN_WORLDS:
        return Path(str(resources.files("zerosearch.demo").joinpath("worlds", f"{name}.yaml")))
    path = Path(name).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--world {name!r} is neither a built-in world ({', '.join(BUILT_IN_WORLDS)}) nor a "
                                "YAML file; see docs/demo.md for the world file's fields")
    return path


def load_world_data(name: str) -> dict[str, Any]:
    """The world file as plain data, relative paths resolved against the file's folder."""
    import yaml

    path = world_file(name)
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of world fields, got {type(data).__name__}")
    # a built-in world's data paths are relative to where the command runs (the repository root, with the
    # shared data beside it); a user's world file's are relative to the file
    return resolve_paths(data, Path.cwd() if name in BUILT_IN_WORLDS else path.parent)


#: Keys whose values are file paths, per section (resolved against the world file's folder).
_PATH_KEYS = {"data": ("path", "corpus", "train", "test")}


def resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``data`` with the known path fields made absolute relative to ``base`` (``~`` expanded)."""
    out = dict(data)
    for section, keys in _PATH_KEYS.items():
        if isinstance(out.get(section), dict):
            out[section] = {k: _absolute(v, base) if k in keys and isinstance(v, str) else v
                            for k, v in out[section].items()}
    prompt = out.get("prompt")
    if isinstance(prompt, dict) and isinstance(prompt.get("template"), str) and prompt["template"] != "toy":
        out["prompt"] = {**prompt, "template": _absolute(prompt["template"], base)}
    policy = out.get("policy")
    if isinstance(policy, dict):  # a model given as a path next to the world file (hub ids and built-ins stay)
        if isinstance(policy.get("model"), str):
            policy = {**policy, "model": _local_model(policy["model"], base)}
        if isinstance(policy.get("sft"), dict) and isinstance(policy["sft"].get("model"), str):
            policy = {**policy, "sft": {**policy["sft"], "model": _local_model(policy["sft"]["model"], base)}}
        out["policy"] = policy
    return out


def _local_model(value: str, base: Path) -> str:
    """``value`` made absolute when it names a directory relative to ``base``; else unchanged (a hub id)."""
    path = Path(value).expanduser()
    return str((base / path).resolve()) if not path.is_absolute() and (base / path).is_dir() else value


def _absolute(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())
