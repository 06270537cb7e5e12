"""Figures (matplotlib, Agg backend) saved as PNG files."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path, dpi: int = 110) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


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
    return _save(fig, path)


def decision_panels(path: Path, panels: list[dict], title: str) -> Path:
    """Side-by-side 2-D decision regions: each panel dict has `title`, `grid` (predicted class per
    cell, rows = y), `bounds` (xmin, xmax, ymin, ymax), `points` (n x 2), `labels` (n) and `caption`."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.9), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        xmin, xmax, ymin, ymax = panel["bounds"]
        ax.imshow(np.asarray(panel["grid"]), origin="lower", extent=(xmin, xmax, ymin, ymax), cmap="coolwarm",
                  alpha=0.35, vmin=0, vmax=1, interpolation="nearest", aspect="auto")
        points, labels = np.asarray(panel["points"]), np.asarray(panel["labels"])
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="coolwarm", vmin=0, vmax=1, s=12, edgecolors="k",
                   linewidths=0.4)
        ax.set_title(panel["title"], fontsize=9)
        ax.set_xlabel(panel["caption"], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return _save(fig, path, dpi=100)


def lines_figure(path: Path, xs: list[float], series: dict[str, list[list[float]]], xlabel: str, ylabel: str,
                 title: str, references: dict[str, float] | None = None, logx: bool = False) -> Path:
    """One line per label through the per-x means, with a min-max band; `series[label][i]` holds the
    values (over seeds) at xs[i]. `references` draws labelled horizontal dashed lines."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, values in series.items():
        mean = [np.mean(v) if v else np.nan for v in values]
        line, = ax.plot(xs, mean, marker="o", label=label)
        if any(len(v) > 1 for v in values):
            ax.fill_between(xs, [min(v) if v else np.nan for v in values], [max(v) if v else np.nan for v in values],
                            color=line.get_color(), alpha=0.2)
    for label, value in (references or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color="gray")
        ax.annotate(label, (xs[0], value), fontsize=7, color="gray", va="bottom")
    if logx:
        ax.set_xscale("symlog", linthresh=max(min(x for x in xs if x > 0), 1e-12) if any(x > 0 for x in xs) else 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def bars_figure(path: Path, groups: list[str], series: dict[str, list[list[float]]], ylabel: str, title: str,
                logy: bool = False) -> Path:
    """Grouped bars: one group per entry of `groups`, one bar per label (the mean over seeds, with a
    min-max error bar); `series[label][i]` holds the values for groups[i]."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    width = 0.8 / max(len(series), 1)
    for k, (label, values) in enumerate(series.items()):
        mean = np.array([np.mean(v) for v in values])
        err = np.array([[m - min(v) for m, v in zip(mean, values)], [max(v) - m for m, v in zip(mean, values)]])
        err = np.clip(err, 0.0, None)  # the mean of equal values can differ from them in the last bit
        ax.bar(np.arange(len(groups)) + k * width, mean, width, yerr=err, label=label, capsize=3)
    ax.set_xticks(np.arange(len(groups)) + width * (len(series) - 1) / 2, groups, fontsize=8)
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def least_squares_line(x, y) -> dict:
    """The ordinary least-squares line y ~ slope*x + intercept through the points (x, y), with R^2 =
    1 - SS_res/SS_tot, adjusted R^2 = 1 - (1 - R^2)(n-1)/(n-2) and RMSE = sqrt(SS_res/(n-2)) (the
    residual degrees of freedom, as MATLAB's fitlm reports them, which paper 001 quotes)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(x)
    if n < 2 or np.ptp(x) == 0:
        return {"n": n, "slope": None, "intercept": None, "r2": None, "adjusted_r2": None, "rmse": None}
    xm, ym = x.mean(), y.mean()
    slope = float(((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum())
    intercept = float(ym - slope * xm)
    ss_res = float(((y - (slope * x + intercept)) ** 2).sum())
    ss_tot = float(((y - ym) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"n": n, "slope": slope, "intercept": intercept, "r2": r2,
            "adjusted_r2": 1.0 - (1.0 - r2) * (n - 1) / (n - 2) if n > 2 else None,
            "rmse": float(np.sqrt(ss_res / (n - 2))) if n > 2 else None}


def scatter_panel(ax, panel: dict) -> dict | None:
    """Draw one scatter panel on `ax` and return the least-squares fit of the points drawn (None without
    `fit`). `panel`: `groups` {name: (xs, ys, point labels or None)}, optional `colors` {name: color},
    `fit` (draw the least-squares line through all the groups' points, stats in the legend), `diagonal`
    (draw y = x), `xlabel`, `ylabel`, `title`, `logx`."""
    xs_all, ys_all = [], []
    for name, (xs, ys, labels) in panel["groups"].items():
        ax.scatter(xs, ys, s=22, label=name, color=panel.get("colors", {}).get(name), edgecolors="k", linewidths=0.3,
                   zorder=3)
        for x, y, text in zip(xs, ys, labels or []):
            ax.annotate(str(text), (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
        xs_all += list(xs)
        ys_all += list(ys)
    fit = None
    if panel.get("fit"):
        fit = least_squares_line(xs_all, ys_all)
        if fit["slope"] is not None:
            line_x = np.linspace(min(xs_all), max(xs_all), 50)
            ax.plot(line_x, fit["slope"] * line_x + fit["intercept"], color="k", linewidth=1,
                    label=f"least squares: slope {fit['slope']:.4g}, intercept {fit['intercept']:.4g}\n"
                          f"R² {fit['r2']:.4f}, RMSE {fit['rmse']:.3g} (n = {fit['n']})")
    if panel.get("diagonal") and xs_all:
        lo, hi = min(xs_all + ys_all), max(xs_all + ys_all)
        ax.plot([lo, hi], [lo, hi], color="tab:blue", linewidth=0.8, linestyle="--", label="test = train")
    if panel.get("logx"):
        ax.set_xscale("log")
    else:  # normalized losses differ in the 4th decimal: show them plainly, not as offsets
        ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.set_xlabel(panel.get("xlabel", ""), fontsize=9)
    ax.set_ylabel(panel.get("ylabel", ""), fontsize=9)
    ax.set_title(panel.get("title", ""), fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return fit


def scatter_figure(path: Path, panels: list[dict], title: str) -> tuple[Path, list[dict | None]]:
    """Side-by-side scatter panels (see `scatter_panel`); returns the path and each panel's fit."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    fits = [scatter_panel(ax, panel) for ax, panel in zip(axes[0], panels)]
    fig.suptitle(title, fontsize=10)
    return _save(fig, path), fits


def series_figure(path: Path, panels: list[dict], title: str) -> Path:
    """Side-by-side line panels. Each panel: `series` {label: (xs, values)} where values[i] is a number or
    the list of numbers over seeds at xs[i] (drawn as the mean with a min-max band), optional `xscale`,
    `yscale` ("linear", "log"), `xlabel`, `ylabel`, `title`, `hlines` {label: y} drawn dashed and `vlines`
    {label: x} drawn dotted."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 4.0), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, (xs, values) in panel["series"].items():
            values = [v if isinstance(v, (list, tuple)) else [v] for v in values]
            mean = np.array([np.mean(v) for v in values])
            line, = ax.plot(xs, mean, label=label, marker="o" if len(xs) <= 20 else None, markersize=4)
            if any(len(v) > 1 for v in values):
                ax.fill_between(xs, [min(v) for v in values], [max(v) for v in values], color=line.get_color(),
                                alpha=0.2)
        for label, y in panel.get("hlines", {}).items():
            ax.axhline(y, color="gray", linestyle="--", linewidth=0.8, label=label)
        for label, x in panel.get("vlines", {}).items():
            ax.axvline(x, color="gray", linestyle=":", linewidth=0.8, label=label)
        ax.set_xscale(panel.get("xscale", "linear"))
        ax.set_yscale(panel.get("yscale", "linear"))
        ax.set_xlabel(panel.get("xlabel", ""), fontsize=9)
        ax.set_ylabel(panel.get("ylabel", ""), fontsize=9)
        ax.set_title(panel.get("title", ""), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def histogram_figure(path: Path, series: dict[str, tuple[list[float], list[int]]], xlabel: str, title: str) -> Path:
    """Histograms already counted: {label: (bin edges, counts)}, each drawn as a step outline."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, (edges, counts) in series.items():
        ax.stairs(counts, edges, label=label, fill=len(series) == 1, alpha=0.6 if len(series) == 1 else 1.0)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("counts", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
