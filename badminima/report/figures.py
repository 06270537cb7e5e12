"""Figures (matplotlib, Agg backend) saved as PNG files."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def curves_figure(path: Path, series: dict[str, list[list[float]]], ylabel: str, title: str) -> Path:
    """One line per label: the mean over seeds per epoch, with a min-max band (seeds may stop at
    different epochs; each epoch averages the seeds still training)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, runs in series.items():
        length = max(len(r) for r in runs)
        stacked = [[r[e] for r in runs if e < len(r)] for e in range(length)]
        epochs = np.arange(1, length + 1)
        mean = np.array([np.mean(s) for s in stacked])
        line, = ax.plot(epochs, mean, label=label)
        if len(runs) > 1:
            ax.fill_between(epochs, [min(s) for s in stacked], [max(s) for s in stacked],
                            color=line.get_color(), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
