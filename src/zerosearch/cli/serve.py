"""``zerosearch serve``: run a search engine behind Search-R1's HTTP interface.

    zerosearch serve --engine bm25 --corpus data/wiki18.jsonl
    zerosearch serve --engine simulated --model smollm2-135m-instruct --max-new-tokens 200
    zerosearch serve --engine simulated --model Qwen/Qwen2.5-7B-Instruct --backend openai --url http://127.0.0.1:8001/v1
    zerosearch serve --engine simulated --backend openai --url http://127.0.0.1:8001 \
        --model Simulation_LLM_google_14B --simulator-mode finetuned --prompt-style reference   # a released simulator
    zerosearch serve --config serve.yaml --port 9000 --token "$TOKEN"

Then point Search-R1 / verl at ``http://127.0.0.1:8000/retrieve``. Heavy imports happen inside ``main``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def _engine_config(engine: str | None, file_engine: dict | None, flags: dict[str, Any]) -> Any:
    """The engine config from flags (when ``--engine`` is given) or from the YAML file."""
    from pydantic import TypeAdapter

    from zerosearch.search.factory import EngineConfig, engine_config_from_flags

    if engine is not None:
        return engine_config_from_flags(engine, **flags)
    if file_engine is None:
        raise ValueError("give --engine (bm25, dense, simulated, remote, web) or --config with an 'engine' key")
    return TypeAdapter(EngineConfig).validate_python(file_engine)


def main(
    engine: Annotated[str | None, typer.Option(help="bm25 | dense | simulated | remote | web (or in --config)")] = None,
    corpus: Annotated[Path | None, typer.Option(help="wiki-18 JSONL corpus (bm25, dense)")] = None,
    index_dir: Annotated[Path | None, typer.Option(help="bm25/dense index folder (default: beside the corpus)")] = None,
    model: Annotated[str | None, typer.Option(help="built-in name, local dir or hub id (simulated, dense)")] = None,
    url: Annotated[str | None, typer.Option(help="remote: endpoint URL; simulated: OpenAI-compatible base URL")] = None,
    backend: Annotated[str | None, typer.Option(help="simulated: transformers | openai")] = None,
    device: Annotated[str | None, typer.Option(help="simulated: torch device (transformers backend)")] = None,
    simulator_mode: Annotated[str | None, typer.Option(
        help="simulated: prompt (instruction model, one-shot example) | finetuned (an SFT-ed simulator)")] = None,
    prompt_style: Annotated[str | None, typer.Option(
        help="simulated: ours | reference (the ZeroSearch reference's fine-tuned format, for its released "
        "simulators; needs --simulator-mode finetuned and questions + answers with every search)")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="simulated: token budget for the k documents")] = None,
    temperature: Annotated[float | None, typer.Option(help="simulated: sampling temperature")] = None,
    noise_probability: Annotated[float | None, typer.Option(help="simulated: default chance of a noisy draw")] = None,
    seed: Annotated[int | None, typer.Option(help="simulated: seed for draws and sampling")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with 'engine' and 'service' sections")] = None,
    host: Annotated[str | None, typer.Option(help="interface to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000)")] = None,
    token: Annotated[str | None, typer.Option(envvar="ZEROSEARCH_SERVICE_TOKEN", help="bearer token")] = None,
    max_queries: Annotated[int | None, typer.Option(help="most queries per request")] = None,
    max_query_chars: Annotated[int | None, typer.Option(help="most characters per query")] = None,
    max_top_k: Annotated[int | None, typer.Option(help="largest top-k accepted")] = None,
    default_top_k: Annotated[int | None, typer.Option(help="top-k when a request gives none")] = None,
    batch_window_ms: Annotated[float | None, typer.Option(help="micro-batching wait window")] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="most queries per engine call")] = None,
    cache_size: Annotated[int | None, typer.Option(help="LRU cache entries (0 = off)")] = None,
    cache_default: Annotated[bool | None, typer.Option(
        "--cache-default/--no-cache-default",
        help="use the cache when a request does not say (default: on for real engines, off for simulated)",
    )] = None,
    retries: Annotated[int | None, typer.Option(help="retries of a failed engine call before 503")] = None,
    request_timeout: Annotated[float | None, typer.Option(help="seconds before a waiting request gets 503")] = None,
    torch_threads: Annotated[int | None, typer.Option(help="torch intra-op threads (local simulator)")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve a search engine over HTTP (Search-R1 /retrieve, reference /search, /health, /metrics, /docs)."""
    from pydantic import ValidationError

    from zerosearch.search.factory import build_engine, sized_to_batch
    from zerosearch.service import create_app, run_server

    engine_flags = {"corpus": corpus, "index_dir": index_dir, "model": model, "url": url, "backend": backend,
                    "device": device, "mode": simulator_mode, "prompt_style": prompt_style,
                    "max_new_tokens": max_new_tokens, "temperature": temperature,
                    "noise_probability": noise_probability, "seed": seed}
    service_flags = {
        "host": host, "port": port, "token": token, "max_queries_per_request": max_queries,
        "max_query_chars": max_query_chars, "max_top_k": max_top_k, "default_top_k": default_top_k,
        "batch_window_ms": batch_window_ms, "max_batch_size": max_batch_size, "cache_size": cache_size,
        "cache_default": cache_default, "retries": retries, "request_timeout_s": request_timeout,
    }
    try:
        serve_config = _configs(config, engine, engine_flags, service_flags)
    except (ValidationError, ValueError, FileNotFoundError) as err:
        typer.echo(f"zerosearch serve: invalid configuration: {err}", err=True)
        raise typer.Exit(2) from err
    settings = serve_config.service
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    # backend llamacpp with concurrency unset: one parallel slot per query of a micro-batch
    search_engine = build_engine(sized_to_batch(serve_config.engine, settings.max_batch_size))
    app = create_app(search_engine, settings)
    auth = "bearer token required" if app.state.settings.token else "no token"
    typer.echo(f"zerosearch serve: {search_engine.name} engine on http://{settings.host}:{settings.port}"
               f"/retrieve ({auth}); docs at /docs", err=True)
    run_server(app, settings, log_level=log_level)


def _configs(config: Path | None, engine: str | None, engine_flags: dict[str, Any],
             service_flags: dict[str, Any]) -> Any:
    """The :class:`ServeConfig` from the YAML file (if any) with the CLI flags laid over it."""
    from zerosearch.service.config import ServeConfig, merge_service, read_yaml

    data = read_yaml(config) if config else {}
    unknown = set(data) - {"engine", "service"}
    if unknown:
        raise ValueError(f"{config}: unknown top-level keys {sorted(unknown)}; use 'engine' and 'service'")
    engine_config = _engine_config(engine, data.get("engine"), engine_flags)
    return ServeConfig(engine=engine_config, service=merge_service(data.get("service") or {}, service_flags))


if __name__ == "__main__":  # pragma: no cover - `python -m zerosearch.cli.serve ...` without the full CLI
    typer.run(main)
