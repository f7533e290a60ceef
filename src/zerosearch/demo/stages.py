"""The stages before the arms, for any world: its files, the policy's warm-start, its simulators.

Each stage reads the world's settings (:class:`~zerosearch.demo.world.WorldSpec`) and calls the library
that does the work: :mod:`zerosearch.toyworld` generates the toy world, :mod:`zerosearch.warmstart` warms a
pretrained model up on the protocol, :mod:`zerosearch.simulator` tunes simulators. What every world leaves
in ``<out>/world/`` is the same, so the arms never ask which world they are in:

- ``corpus.jsonl`` (the real engine's corpus), ``train.jsonl`` (RL questions), ``test.jsonl`` (held out),
  ``data.json`` (what was written, from what);
- the warm-started policy (:func:`policy_dir`) and ``<out>/simulators/<name>/`` per simulator.

    write_world_files(config)          # in the main process, seconds
    warm_start(config, log)            # in a worker
    build_world_simulator(config, "imitate", log)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from zerosearch.data.types import QAExample
from zerosearch.demo.config import DemoConfig, merge
from zerosearch.demo.world import AlignedData, FilesData, ToyData

DATA_RECORD = "data.json"
WARMSTART_DIR = "warmstart"
Log = Callable[[str], None]


# ---- paths ----------------------------------------------------------------------------------------------
def world_dir(config: DemoConfig) -> Path:
    """The world's files (corpus, questions) and, for the toy world, its policy."""
    return config.out / "world"


def policy_dir(config: DemoConfig) -> Path:
    """The policy every arm starts from (warm-started here, or the world's ready model)."""
    policy = config.world.policy
    if policy.source == "model":
        return Path(policy.model)
    if policy.source == "toy":
        return world_dir(config) / "policy"
    return world_dir(config) / WARMSTART_DIR / "model"


def warmstart_done_file(config: DemoConfig) -> Path | None:
    """The file a finished warm-start leaves (None: nothing to warm up)."""
    source = config.world.policy.source
    if source == "toy":
        return world_dir(config) / "manifest.json"
    if source == "demonstrations":
        from zerosearch.warmstart.run import RECORD_FILE

        return world_dir(config) / WARMSTART_DIR / RECORD_FILE
    return None


def simulator_dir(config: DemoConfig, name: str) -> Path:
    """A trained simulator of the world."""
    return config.out / "simulators" / name


def real_engine_config(config: DemoConfig) -> dict[str, Any]:
    """The world's real engine over its corpus, as an engine config."""
    return {**config.world.engine, "corpus": str(world_dir(config) / "corpus.jsonl"), "progress": False}


def parse_engine(data: dict[str, Any]) -> Any:
    """A typed engine config from plain data (the ``kind`` field picks the class)."""
    from pydantic import TypeAdapter

    from zerosearch.search.factory import EngineConfig

    return TypeAdapter(EngineConfig).validate_python(data)


def template_path(config: DemoConfig) -> str | None:
    """The policy's instruction template file (None: the built-in instruction)."""
    template = config.world.prompt.template
    return str(world_dir(config) / "template.txt") if template == "toy" else template


# ---- the world's files ----------------------------------------------------------------------------------
def write_world_files(config: DemoConfig, log: Log = print) -> Path:
    """Write the world's corpus and question splits once (later calls find ``data.json`` and return)."""
    out = world_dir(config)
    if (out / DATA_RECORD).is_file():
        log(f"reuse the world files in {out}")
        return out
    data = config.world.data
    if isinstance(data, ToyData):
        record = _toy_files(config, data, out)
    elif isinstance(data, AlignedData):
        record = _aligned_files(data, out)
    else:
        record = _own_files(data, out)
    (out / DATA_RECORD).write_text(json.dumps({"source": data.source, **record}, indent=1), "utf-8")
    log(f"wrote the world files to {out}: {record['train_questions']} RL questions, {record['test_questions']} "
        f"held out, {record['passages']} passages")
    return out


def toy_build_config(config: DemoConfig) -> Any:
    """The toy world's generator and warm-start settings, seeded by the demo seed."""
    data = config.world.data
    if not isinstance(data, ToyData):
        raise ValueError(f"world {config.world.name!r} is not a toy world (data.source: {data.source})")
    return data.build.model_copy(update={"seed": config.seed})


def _toy_files(config: DemoConfig, data: ToyData, out: Path) -> dict[str, Any]:
    from zerosearch.toyworld.build import write_world

    write_world(out, toy_build_config(config), overwrite=True)
    return {"train_questions": _count_lines(out / "train.jsonl"), "test_questions": _count_lines(out / "test.jsonl"),
            "passages": _count_lines(out / "corpus.jsonl"), "generator": data.build.world.model_dump(mode="json")}


def _aligned_files(data: AlignedData, out: Path) -> dict[str, Any]:
    from zerosearch.warmstart.aligned import load_aligned, write_corpus
    from zerosearch.warmstart.split import split_by_question

    aligned = load_aligned(data.path)
    examples = [e for e in aligned.examples
                if not (data.skip_yes_no and e.golden_answers[0].strip().lower() in {"yes", "no"})]
    paragraphs = [p if data.max_words is None else dataclasses.replace(p, text=cut_words(p.text, data.max_words))
                  for p in aligned.paragraphs]
    out.mkdir(parents=True, exist_ok=True)
    write_corpus(paragraphs, out / "corpus.jsonl")
    split = split_by_question(examples, data.test_fraction, data.split_seed)
    write_questions(split.train, out / "train.jsonl")
    write_questions(split.test, out / "test.jsonl")
    return {"train_questions": len(split.train), "test_questions": len(split.test), "passages": len(paragraphs),
            "path": str(data.path), "max_words": data.max_words}


def _own_files(data: FilesData, out: Path) -> dict[str, Any]:
    import shutil

    from zerosearch.data.loaders import load_dataset
    from zerosearch.warmstart.split import split_by_question

    for path in (data.corpus, data.train, data.test):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"world data file {path} does not exist; fix the path in the world file")
    train = load_dataset(str(data.train), limit=None)
    if data.test is None:
        split = split_by_question(train, data.test_fraction, data.split_seed)
        train, test = split.train, split.test
    else:
        test = load_dataset(str(data.test), limit=None)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data.corpus, out / "corpus.jsonl")
    write_questions(train, out / "train.jsonl")
    write_questions(test, out / "test.jsonl")
    return {"train_questions": len(train), "test_questions": len(test),
            "passages": _count_lines(out / "corpus.jsonl"), "corpus": str(data.corpus)}


def cut_words(text: str, max_words: int) -> str:
    """The first ``max_words`` words of ``text`` (a snippet).

    >>> cut_words("one two three four", 2)
    'one two'
    """
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words])


def write_questions(examples: Sequence[QAExample], path: Path) -> Path:
    """JSONL of the examples with their metadata as extra fields (the loaders read them back into
    ``metadata``: supporting titles for demonstrations, the kind for the report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for ex in examples:
            row = {**ex.metadata, "id": ex.id, "question": ex.question, "golden_answers": list(ex.golden_answers),
                   "data_source": ex.dataset}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text("utf-8").splitlines() if line.strip())


def read_questions(config: DemoConfig, split: str, limit: int | None = None, *,
                   dataset: str | None = None) -> list[QAExample]:
    """The world's ``train`` or ``test`` questions (the first ``limit``) in file order, their dataset named
    ``dataset`` (default: the world's name)."""
    from zerosearch.data.loaders import load_dataset

    examples = load_dataset(f"{dataset or config.world.name}={world_dir(config) / f'{split}.jsonl'}", limit=None)
    return examples if limit is None else examples[:limit]


# ---- the policy -----------------------------------------------------------------------------------------
def warm_start(config: DemoConfig, log: Log = print) -> Path:
    """Warm the world's policy up on the protocol (toy: the tiny Llama; demonstrations: ``zerosearch sft``).

    The warm-start is on every arm's critical path, so it takes the cores of workers that sit idle (nothing
    else ready) while it trains (``taskgraph.spare_workers``)."""
    from zerosearch.taskgraph import spare_workers

    source = config.world.policy.source
    threads = lambda: 1 + spare_workers()  # noqa: E731
    if source == "toy":
        from zerosearch.toyworld.build import ToyWorldPaths, warm_start_policy

        warm_start_policy(ToyWorldPaths(world_dir(config)), toy_build_config(config), log=log, num_threads=threads)
    elif source == "demonstrations":
        from zerosearch.warmstart import run_warmstart

        run_warmstart(warmstart_config(config), log=log, num_threads=threads)
    return policy_dir(config)


def warmstart_config(config: DemoConfig) -> Any:
    """``zerosearch sft``'s config for the world: demonstrations of the RL questions, searched with the real
    engine, rendered exactly as the rollout renders them."""
    from zerosearch.warmstart.config import parse_warmstart_config

    policy, rollout = config.world.policy, config.world.rollout
    demos = {"top_k_documents": rollout.top_k, "max_searches": rollout.max_turns, **policy.demos}
    sft = {"seed": config.seed, **policy.sft}
    return parse_warmstart_config({
        "output_dir": str(world_dir(config) / WARMSTART_DIR), "overwrite": True,
        "data": {"questions": [str(world_dir(config) / "train.jsonl")]},
        "engine": real_engine_config(config), "demos": demos,
        "prompt": {"template_path": template_path(config), "use_chat_template": config.world.prompt.use_chat_template,
                   "max_information_tokens": rollout.max_information_tokens},
        "sft": sft,
    }, source=f"world {config.world.name!r} policy")


# ---- simulators -----------------------------------------------------------------------------------------
def build_world_simulator(config: DemoConfig, name: str, log: Log = print) -> Path:
    """Tune the world's simulator ``name`` into :func:`simulator_dir`."""
    spec = config.world.simulators[name]
    out = simulator_dir(config, name)
    if spec.source == "toy":
        from zerosearch.toyworld.simulator import build_simulator

        seeded = spec.config.model_copy(update={"seed": config.seed})
        return build_simulator(world_dir(config), out, seeded, overwrite=True, log=log)
    return _register_tuned_simulator(spec, out, log)


def tuned_engine_config(spec: Any) -> dict[str, Any]:
    """The checked engine settings of a simulator tuned before the run (``source: model``): its directory's
    ``simulator.yaml`` engine section with the world's overrides on top. Switching the backend keeps only
    what names the model (the file's server-side defaults, such as ``api: chat``, belong to its backend)."""
    from zerosearch.search.engine_config import SimulatedEngineConfig

    engine: dict[str, Any] = {}
    if spec.path is not None:
        path = Path(spec.path)
        record = path / "simulator.yaml"
        if not record.is_file():
            raise FileNotFoundError(f"{record} not found: a simulator's path must be a `zerosearch simulator sft` "
                                    "output directory (or give engine.generator instead of path)")
        engine = dict((yaml.safe_load(record.read_text("utf-8")) or {}).get("engine") or {})
        generator = {**engine.get("generator", {}), "model": str(path.resolve())}
        backend = spec.engine.get("generator", {}).get("backend")
        if backend is not None and backend != generator.get("backend", "transformers"):
            generator = {k: v for k, v in generator.items() if k in ("model", "dtype", "device")}
        engine["generator"] = generator
    engine = merge(engine, spec.engine)
    engine.pop("kind", None)
    # only what was set: a runner still sizes what the world left open (llama.cpp's slots to the RL batch)
    return {"kind": "simulated",
            **SimulatedEngineConfig.model_validate(engine).model_dump(mode="json", exclude_unset=True)}


def _register_tuned_simulator(spec: Any, out: Path, log: Log) -> Path:
    """A simulator tuned elsewhere: record its checked engine settings as the task's manifest."""
    checked = tuned_engine_config(spec)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.json"
    manifest.write_text(json.dumps({"source": "model", "engine": checked}, indent=2), encoding="utf-8")
    log(f"simulator served from {checked['generator'].get('base_url') or checked['generator']['model']}")
    return out


def simulator_engine(config: DemoConfig, name: str, seed: int) -> dict[str, Any]:
    """How an RL arm serves the world's simulator ``name`` (seeded per run)."""
    spec = config.world.simulators[name]
    if spec.source == "toy":
        from zerosearch.toyworld.simulator import simulator_engine_config

        seeded = spec.config.model_copy(update={"seed": seed})
        return simulator_engine_config(simulator_dir(config, name).resolve(), seeded, device="cpu").model_dump(
            mode="json")
    manifest = json.loads((simulator_dir(config, name) / "manifest.json").read_text("utf-8"))
    return {**manifest["engine"], "seed": seed}


def measure_quality(config: DemoConfig, names: Sequence[str]) -> dict[str, Any]:
    """The simulators' quality beside the real engine's (``zerosearch.simulator.evaluate``)."""
    from zerosearch.search.factory import build_engine
    from zerosearch.toyworld.simulator import load_world, measure, simulator_engine_config

    specs = {n: config.world.simulators[n] for n in names if config.world.simulators[n].source == "toy"}
    if not specs:  # tuned elsewhere: `zerosearch simulator evaluate` measures those on the user's records
        return {"note": "simulators tuned before the experiment are not measured by the demo; use "
                "`zerosearch simulator evaluate`", "table": {}}
    world = load_world(world_dir(config))
    real = build_engine(parse_engine(real_engine_config(config)))
    engines = {n: build_engine(simulator_engine_config(simulator_dir(config, n).resolve(), s.config, device="cpu"))
               for n, s in specs.items() if (simulator_dir(config, n) / "manifest.json").is_file()}
    first = next(iter(specs.values())).config
    evaluation = measure(engines, real, world, config.out / "simulators" / "quality", first)
    evaluation.pop("per_query", None)
    return evaluation
