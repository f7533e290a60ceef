"""Kill a real ``zerosearch train`` process after a checkpoint, resume it, and get the same run.

Run A trains 10 steps uninterrupted. Run B is the same config in another directory, killed with SIGKILL
as soon as its step-2 checkpoint exists, then restarted with ``--resume``. The final weights must be
bit-identical and every logged metric (timings aside) equal step by step, which needs the optimizer,
scheduler, data order, RNG streams and rollout seeds all restored exactly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from train_tiny import tiny_model, warm_start, word_tokenizer, write_world

TOTAL = 10
TIMING = ("time/", "throughput/")


def _cli() -> list[str]:
    return [sys.executable, "-m", "zerosearch.cli.main", "train"]


def _write_config(root: Path, files: dict[str, Path], model_dir: Path) -> Path:
    config = {
        "seed": 3, "total_steps": TOTAL, "output_dir": str(root / "unused"), "num_threads": 1,
        "model": {"name_or_path": str(model_dir)},
        "algorithm": {"estimator": "grpo", "micro_batch_size": 4, "kl": {"coef": 0.05}},
        "optimizer": {"lr": 1e-3, "weight_decay": 0.01, "warmup_steps": 2, "schedule": "cosine"},
        "rollout": {"max_turns": 1, "max_new_tokens": 8, "n_samples": 4, "use_chat_template": False,
                    "template_path": str(files["template"])},
        "engine": {"kind": "bm25", "corpus": str(files["corpus"]), "index_dir": str(root / "index"),
                   "progress": False},
        "data": {"train": str(files["questions"]), "prompts_per_step": 3},  # 4 questions: epochs wrap
        "checkpoint": {"every": 2, "keep_last": 10},
        "logging": {"tensorboard": False, "progress": False},
    }
    path = root / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("resume")
    files = write_world(root)
    tokenizer = word_tokenizer()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = tiny_model(len(tokenizer))
    warm_start(model, tokenizer, steps=20)
    torch.set_num_threads(threads)
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return root, _write_config(root, files, model_dir)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _train(config: Path, out: Path, *extra: str) -> None:
    done = subprocess.run([*_cli(), "--config", str(config), "--output-dir", str(out), *extra],
                          check=False, capture_output=True, text=True, timeout=240, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]


def _kill_after_checkpoint(config: Path, out: Path, step: int) -> None:
    proc = subprocess.Popen([*_cli(), "--config", str(config), "--output-dir", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
    target = out / "checkpoints" / f"step-{step:06d}"
    deadline = time.monotonic() + 240
    while not target.is_dir():
        if proc.poll() is not None:
            pytest.fail(f"training exited (rc {proc.returncode}) before its step-{step} checkpoint: "
                        f"{proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint within 240 s")
        time.sleep(0.02)
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert still_running, "the run finished before it could be killed; the test proves nothing"
    assert proc.returncode == -signal.SIGKILL


def _metrics(out: Path) -> list[dict]:
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if not k.startswith(TIMING)} for line in lines]


def test_killed_run_resumes_exactly(setup):
    root, config = setup
    full, broken = root / "full", root / "broken"
    _train(config, full)
    _kill_after_checkpoint(config, broken, step=2)
    killed_at = max(int(p.name.split("-")[1]) for p in (broken / "checkpoints").glob("step-*"))
    assert killed_at < TOTAL
    _train(config, broken, "--resume")
    assert (broken / f"run_info.resume-{killed_at}.json").is_file()

    final_full = load_file(str(full / "checkpoints" / f"step-{TOTAL:06d}" / "policy" / "model.safetensors"))
    final_broken = load_file(str(broken / "checkpoints" / f"step-{TOTAL:06d}" / "policy" / "model.safetensors"))
    assert final_full.keys() == final_broken.keys()
    initial = load_file(str(root / "model" / "model.safetensors"))
    assert any(not torch.equal(final_full[k], initial[k]) for k in final_full), "training changed nothing"
    for key, value in final_full.items():
        assert torch.equal(value, final_broken[key]), key

    metrics_full, metrics_broken = _metrics(full), _metrics(broken)
    assert [m["step"] for m in metrics_broken] == list(range(1, TOTAL + 1))
    assert metrics_full == metrics_broken
    assert len({m["rollout/reward"] for m in metrics_full}) > 1  # the runs really differ step to step


def test_resume_without_a_checkpoint_is_a_clear_error(setup, tmp_path):
    _, config = setup
    done = subprocess.run([*_cli(), "--config", str(config), "--output-dir", str(tmp_path / "empty"), "--resume"],
                          check=False, capture_output=True, text=True, timeout=240, env=_env())
    assert done.returncode != 0
    assert "no checkpoint under" in done.stderr


def test_fresh_run_into_an_old_output_dir_is_refused_before_loading(setup, tmp_path):
    """Issue 12: a fresh run in a directory with an earlier run's logs would mix them; the CLI refuses it
    (exit 2, before loading the model) and names --resume."""
    _, config = setup
    old = tmp_path / "old"
    old.mkdir()
    (old / "metrics.jsonl").write_text('{"step": 1}\n')
    done = subprocess.run([*_cli(), "--config", str(config), "--output-dir", str(old)],
                          check=False, capture_output=True, text=True, timeout=240, env=_env())
    assert done.returncode == 2
    assert "already holds an earlier run" in done.stderr and "--resume" in done.stderr
    assert (old / "metrics.jsonl").read_text() == '{"step": 1}\n'
