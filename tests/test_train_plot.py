"""Training curves: a real metrics.jsonl on disk becomes a PNG; bad input is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zerosearch.train.plot import plot_run_curves, series


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_curves_png_has_one_panel_per_logged_metric(tmp_path: Path) -> None:
    from PIL import Image

    rows = [{"step": 0, "val/em": 0.1}]
    rows += [{"step": s, "rollout/reward": 0.4 + 0.05 * s, "rollout/searches": 0.5 + 0.1 * s} for s in range(1, 9)]
    rows.append({"step": 8, "val/em": 0.9})
    out = plot_run_curves(_write(tmp_path / "metrics.jsonl", rows), tmp_path / "plots" / "curves.png")
    with Image.open(out) as image:
        width_three, height = image.size
    only_reward = [{"step": s, "rollout/reward": 0.5} for s in range(1, 4)]
    out_one = plot_run_curves(_write(tmp_path / "one.jsonl", only_reward), tmp_path / "one.png")
    with Image.open(out_one) as image:
        width_one = image.size[0]
    assert height > 100 and width_three > 2.5 * width_one  # reward, searches, val/em vs reward alone


def test_series_skips_rows_without_the_key_and_null_values() -> None:
    rows = [{"step": 1, "a": 0.5}, {"step": 2, "a": None}, {"step": 3}, {"step": 4, "a": 1}]
    assert series(rows, "a") == ([1, 4], [0.5, 1.0])


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"metrics\.jsonl"):
        plot_run_curves(tmp_path / "missing" / "metrics.jsonl", tmp_path / "x.png")
    with pytest.raises(ValueError, match="no logged steps"):
        plot_run_curves(_write(tmp_path / "empty.jsonl", []), tmp_path / "x.png")
    with pytest.raises(ValueError, match="logs none of"):
        plot_run_curves(_write(tmp_path / "other.jsonl", [{"step": 1, "actor/lr": 0.1}]), tmp_path / "x.png")
