"""Write a matplotlib figure as a PNG atomically (temp file, then rename) and release it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longtail.common.files import atomic_writer


def save_figure(fig: Any, path: str | Path, *, dpi: int = 110) -> Path:
    """``fig`` as a PNG at ``path`` (folders created); the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_writer(path) as handle:
            fig.savefig(handle, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return path
