"""``zerosearch simulator``: tune a simulation LLM on your corpus and measure how well it simulates.

Five commands, one per stage of ``zerosearch.simulator`` (each reads the previous stage's directory):

    zerosearch simulator collect --questions train.jsonl --engine bm25 --corpus corpus.jsonl --out sim/collect
    zerosearch simulator label --records sim/collect --rule contains-answer --out sim/label
    zerosearch simulator build --records sim/label --recipe imitate --out sim/data-imitate
    zerosearch simulator sft --data sim/data-imitate --model smollm2-135m-instruct --out sim/imitate
    zerosearch simulator collect --questions test.jsonl --engine bm25 --corpus corpus.jsonl --out sim/heldout
    zerosearch simulator evaluate --records sim/heldout --simulator imitate=sim/imitate \\
        --prompt-model smollm2-135m-instruct --out sim/report
    zerosearch simulator export-gguf --model sim/imitate --out sim/imitate-q8_0.gguf --type q8_0

or all of them in one resumable call, with the policy's own queries, held-out queries of the training
questions and a quality-per-epoch curve (``zerosearch.simulator.pipeline``):

    zerosearch simulator pipeline --config configs/simulator-smollm2-hotpotqa.yaml --out runs/sim-hotpotqa

``export-gguf`` writes a simulator (or any ``save_pretrained`` causal LM) as GGUF for llama.cpp's server,
the ``llamacpp`` generator backend (docs/serving.md).

Bad input exits with code 2 and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Tune a simulation LLM on your own corpus: collect | label | build | sft | evaluate | "
                  "export-gguf, or pipeline (every stage in one resumable call).")

_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError)
Out = Annotated[Path, typer.Option(help="output directory")]
Seed = Annotated[int, typer.Option(help="seed (perturbations, balancing, initialisation, sampling)")]
TopK = Annotated[int, typer.Option(help="documents per query")]
Records = Annotated[Path, typer.Option(help="a collect or label output directory (records.jsonl)")]


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2)


@app.command("collect")
def collect_cmd(
    questions: Annotated[str, typer.Option(help="questions: a QA file (jsonl/json/csv/parquet) or name=path")],
    out: Out,
    engine: Annotated[str, typer.Option(help="the real engine: bm25 | dense | remote | web")] = "bm25",
    corpus: Annotated[Path | None, typer.Option(help="wiki-18 JSONL corpus (bm25, dense)")] = None,
    url: Annotated[str | None, typer.Option(help="remote: endpoint URL; web: API base URL")] = None,
    policy: Annotated[str, typer.Option(help="question | queries-file | llm")] = "question",
    queries_file: Annotated[Path | None, typer.Option(help="JSONL of {question_id, query} (queries-file)")] = None,
    policy_model: Annotated[str | None, typer.Option(help="policy LLM: built-in name, dir or hub id (llm)")] = None,
    perturbation: Annotated[list[str] | None, typer.Option(
        help="perturbed-query kinds (repeatable): misspelt, other_entity, dropped_term (default: all)")] = None,
    top_k: TopK = 3,
    limit: Annotated[int | None, typer.Option(help="use a seeded subset of this many questions")] = None,
    batch_size: Annotated[int, typer.Option(help="questions per engine call")] = 16,
    concurrency: Annotated[int, typer.Option(help="engine calls in flight")] = 1,
    seed: Seed = 0,
) -> None:
    """Search each question's queries (and perturbed ones) with a real engine; resumable."""
    from zerosearch.data.loaders import DataError, load_dataset
    from zerosearch.search.factory import build_engine, engine_config_from_flags
    from zerosearch.simulator import CollectConfig, collect

    try:
        examples = load_dataset(questions, limit=limit, seed=seed)
        fields: dict[str, Any] = {"policy": policy, "queries_file": queries_file, "top_k": top_k,
                                  "batch_size": batch_size, "concurrency": concurrency, "seed": seed}
        if policy_model:
            fields["policy_model"] = {"model": policy_model}
        if perturbation is not None:
            fields["perturbations"] = perturbation
        config = CollectConfig.model_validate(fields)
        real = build_engine(engine_config_from_flags(engine, corpus=corpus, url=url))
        path = collect(examples, real, out, config)
    except (*_ERRORS, DataError) as err:
        _fail(err)
    typer.echo(f"records in {path}")


@app.command("label")
def label_cmd(
    records: Records,
    out: Out,
    rule: Annotated[list[str] | None, typer.Option(
        help="label rule (repeatable): outcome, judge, contains-answer (default: contains-answer)")] = None,
    judge_model: Annotated[str | None, typer.Option(help="judge LLM for rule judge (name, dir or hub id)")] = None,
) -> None:
    """Label each (query, documents) useful or noisy; print class balance and agreement between rules."""
    import json

    from zerosearch.simulator import label_collection, read_records

    try:
        judge = None
        if judge_model:
            from zerosearch.llm.factory import GeneratorConfig, build_generator

            judge = build_generator(GeneratorConfig(model=judge_model))
        report = label_collection(read_records(records), rule or ["contains-answer"], out, judge=judge)
    except _ERRORS as err:
        _fail(err)
    typer.echo(json.dumps(report, indent=1))


@app.command("build")
def build_cmd(
    records: Records,
    out: Out,
    recipe: Annotated[str, typer.Option(help="hinted (the paper: answer hint) | imitate (no hint)")] = "imitate",
    rule: Annotated[str, typer.Option(help="label rule the hinted recipe uses")] = "contains-answer",
    top_k: TopK = 3,
    noisy_share: Annotated[float, typer.Option(help="share of noisy-mode examples (0.5: balanced)")] = 0.5,
    seed: Seed = 0,
) -> None:
    """Build a balanced SFT dataset (saved with datasets) in the fine-tuned simulator's prompt format."""
    from zerosearch.simulator import BuildConfig, build_dataset, read_records

    try:
        config = BuildConfig(recipe=recipe, rule=rule, top_k=top_k, noisy_share=noisy_share, seed=seed)
        path = build_dataset(read_records(records), out, config)
    except _ERRORS as err:
        _fail(err)
    typer.echo(f"dataset in {path}")


@app.command("sft")
def sft_cmd(
    data: Annotated[Path, typer.Option(help="a build output directory")],
    out: Out,
    model: Annotated[str, typer.Option(help="causal LM: built-in name, local dir or hub id")] = "smollm2-135m-instruct",
    steps: Annotated[int, typer.Option(help="optimizer steps")] = 200,
    batch_size: Annotated[int, typer.Option(help="rows per step")] = 8,
    learning_rate: Annotated[float, typer.Option(help="peak learning rate")] = 5e-5,
    lora_r: Annotated[int, typer.Option(help="LoRA rank (0: full fine-tuning); adapters are merged on save")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="generation budget written into simulator.yaml")] = 256,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a non-empty --out")] = False,
    seed: Seed = 0,
) -> None:
    """Fine-tune a causal LM on the dataset with TRL (completion-only loss); save_pretrained + simulator.yaml."""
    from zerosearch.sft import LoRASettings, SFTRunConfig
    from zerosearch.simulator import tune_simulator

    try:
        config = SFTRunConfig(model=model, output_dir=out, max_steps=steps, batch_size=batch_size,
                              learning_rate=learning_rate, lora=LoRASettings(r=lora_r, alpha=2 * lora_r) if lora_r
                              else None, num_threads=threads, overwrite=overwrite, seed=seed)
        result = tune_simulator(data, config, log=typer.echo, max_new_tokens=max_new_tokens)
    except _ERRORS as err:
        _fail(err)
    typer.echo(f"simulator in {result.output_dir}: serve it with zerosearch serve --config "
               f"{result.output_dir / 'simulator.yaml'}")


def _named_dirs(specs: list[str]) -> dict[str, Path]:
    named = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--simulator {spec!r} must be NAME=DIR (a directory written by `simulator sft`)")
        named[name] = Path(path)
    return named


@app.command("evaluate")
def evaluate_cmd(
    out: Out,
    records: Annotated[Path | None, typer.Option(help="a collect output (one table, no split named)")] = None,
    heldout_queries: Annotated[Path | None, typer.Option(
        help="a collect output of held-out queries of the RL training questions (the split RL asks about)")] = None,
    heldout_questions: Annotated[Path | None, typer.Option(
        help="a collect output of held-out questions (generalisation, for information)")] = None,
    simulator: Annotated[list[str] | None, typer.Option(help="NAME=DIR of a tuned simulator (repeatable)")] = None,
    prompt_model: Annotated[str | None, typer.Option(help="also evaluate this model as a prompt-based one")] = None,
    top_k: TopK = 3,
    temperature: Annotated[float, typer.Option(help="simulator sampling temperature")] = 0.8,
    max_new_tokens: Annotated[int, typer.Option(help="generation budget for the k documents")] = 256,
    seed: Seed = 0,
) -> None:
    """Quality report: markdown, JSON and PNG, the real engine as reference row; one table per split given."""
    from zerosearch.llm.factory import GeneratorConfig
    from zerosearch.search.factory import SimulatedEngineConfig, build_engine
    from zerosearch.simulator import evaluate_simulators, load_engine_config, read_records, write_report
    from zerosearch.simulator.evaluate import evaluate_splits

    sampling = {"temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed}
    splits = {name: path for name, path in (("heldout_queries", heldout_queries),
                                            ("heldout_questions", heldout_questions)) if path is not None}
    try:
        if records is not None and splits:
            raise ValueError("pass --records (one table) or --heldout-queries/--heldout-questions (one table per "
                             "split), not both")
        if records is None and not splits:
            raise ValueError("nothing to evaluate on: pass --heldout-queries DIR and/or --heldout-questions DIR "
                             "(collect outputs), or --records DIR")
        engines = {name: build_engine(load_engine_config(path, **sampling))
                   for name, path in _named_dirs(simulator or []).items()}
        if prompt_model:
            engines["prompt-based"] = build_engine(SimulatedEngineConfig(
                generator=GeneratorConfig(model=prompt_model), mode="prompt", **sampling))
        if not engines:
            raise ValueError("nothing to evaluate: pass --simulator NAME=DIR and/or --prompt-model NAME")
        if records is not None:
            result = evaluate_simulators(read_records(records), engines, top_k, log=typer.echo)
        else:
            result = evaluate_splits({n: read_records(p) for n, p in splits.items()}, engines, top_k, log=typer.echo)
        path = write_report(result, out)
    except _ERRORS as err:
        _fail(err)
    typer.echo((path / "report.md").read_text())


@app.command("export-gguf")
def export_gguf_cmd(
    model: Annotated[str, typer.Option(help="a save_pretrained model dir (e.g. a `simulator sft` output) or "
                                       "built-in name")],
    out: Annotated[Path, typer.Option(help="the GGUF file to write (its record goes to FILE.json)")],
    type_: Annotated[str, typer.Option("--type", help="f32 | f16 | bf16 | q8_0 | q4_0 | q4_k_m | ... "
                                       "(4- to 6-bit types need llama-quantize)")] = "q8_0",
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out")] = False,
) -> None:
    """Write a simulator as GGUF for llama.cpp; its tokenizer and chat template are checked after writing."""
    from zerosearch.llm.gguf_export import export_gguf

    try:
        record = export_gguf(model, out, type_, overwrite=overwrite)
    except (*_ERRORS, RuntimeError) as err:
        _fail(err)
    typer.echo(f"{record.path}: {record.type}, {record.size_bytes / 2**20:.1f} MiB in {record.seconds:.1f} s "
               f"(tokenizer and chat template verified)")


@app.command("pipeline")
def pipeline_cmd(
    config: Annotated[Path, typer.Option(help="a simulator pipeline YAML (configs/simulator-smollm2-hotpotqa.yaml)")],
    out: Out,
    policy: Annotated[str | None, typer.Option(
        help="the warm-started policy whose own queries are collected (overrides policy.model)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="dotted override, e.g. sft.epochs=4")] = None,
) -> None:
    """Collect -> split -> label -> build -> sft (checkpoint per epoch) -> evaluate on held-out queries and
    held-out questions, with a quality-per-epoch curve; resumable."""
    from zerosearch.cli.overrides import cli_overrides
    from zerosearch.config_files import ConfigError
    from zerosearch.data.loaders import DataError
    from zerosearch.simulator.pipeline import load_pipeline_config, run_pipeline

    overrides = cli_overrides(set_)
    if policy is not None:
        overrides["policy.model"] = policy
    try:
        run_pipeline(load_pipeline_config(config, overrides), out, log=typer.echo)
    except (*_ERRORS, ConfigError, DataError) as err:
        _fail(err)
    typer.echo((out / "report" / "report.md").read_text())
