"""The one place that draws files with matplotlib: a headless backend and a PNG writer.

Plots are written to files only (runs happen on servers and in CI), so the Agg backend is chosen before
pyplot is imported, and every figure is closed after saving so long runs do not pile them up.

    plt = pyplot()
    fig, ax = plt.subplots()
    save_png(fig, "out/curves.png")
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend (never needs a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Lay out, save ``fig`` as PNG at ``path`` (parent folders created) and close it; returns the path."""
    plt = pyplot()
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def png_bytes(fig: Any, dpi: int = 110) -> bytes:
    """Lay out ``fig``, render it as PNG bytes (for embedding, e.g. a self-contained HTML report) and close it."""
    plt = pyplot()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
