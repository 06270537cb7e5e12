"""Figures (matplotlib, Agg backend) saved as PNG files, sized for the report page.

Every figure is PAGE_WIDTH inches wide at DPI dots per inch, the width of the report page's text column, so
the page shows it at its natural size and its text at the sizes set in FONTS. Panels wrap two to a row (a last
odd panel is centred), so adding panels makes a figure taller, never narrower. Series differ in colour, line
style and marker; reference lines (published values, limits, baselines) are black or grey, dashed or dotted,
without markers, and named in the legend. The values at a point of a line or bar are one per seed: the
legend entry says how many ("n = 3 seeds"), so a caller must not repeat a seed's value. Record keys given as labels read as words (report/labels.py). The figure's title is also kept
in the PNG's "Title" text chunk, from which the report page writes the figure's caption.
"""
from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .labels import readable  # noqa: E402

PAGE_WIDTH = 9.6  # inches: at DPI, 1152 px, the page's text column (html.PAGE_WIDTH_PX)
DPI = 120
PANEL_HEIGHT = 4.0  # inches per row of panels
FONTS = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
         "legend.fontsize": 8.5, "figure.titlesize": 11.5}
SERIES_STYLES = [("-", "o"), ("--", "s"), ("-.", "^"), (":", "D"), ((0, (5, 1, 1, 1, 1, 1)), "v"), ((0, (8, 2)), "P"),
                 ((0, (1, 1)), "X"), ((0, (3, 1, 3, 3)), "*")]  # (line style, marker), with the colour cycle
REFERENCE_STYLES = [("black", (0, (6, 3))), ("dimgray", (0, (1, 2))), ("black", (0, (6, 2, 1, 2))),
                    ("gray", (0, (3, 1, 1, 1, 1, 1))), ("black", (0, (1, 1))), ("dimgray", (0, (10, 3)))]
HATCHES = ["", "//", "..", "xx", "\\\\", "oo", "--", "++"]
_N_SEEDS = re.compile(r"\bn = (\d+)\)")


def series_style(k: int) -> dict:
    """Colour, line style and marker of the k-th series of a panel (all three differ between neighbours)."""
    line, marker = SERIES_STYLES[k % len(SERIES_STYLES)]
    return {"color": f"C{k % 10}", "linestyle": line, "marker": marker}


def reference_style(k: int) -> dict:
    """Colour and line style of the k-th reference line of a panel (no marker: it is not a measurement)."""
    color, line = REFERENCE_STYLES[k % len(REFERENCE_STYLES)]
    return {"color": color, "linestyle": line, "linewidth": 1.3}


def seeds_label(label: str, counts: list[int]) -> str:
    """`label` (a record key reads as words) with the number of seeds behind each point: "(n = 3 seeds)", or
    "(n = 2-3 seeds)" where points differ; a label that already says "(n = k)" gets " seeds" added."""
    label = readable(label)
    counts = [c for c in counts if c > 0]
    if not counts or "seed" in label:
        return label
    if _N_SEEDS.search(label):
        return say_seeds(label)
    lo, hi = min(counts), max(counts)
    return f"{label} (n = {lo if lo == hi else f'{lo}-{hi}'} seed{'s' if hi != 1 else ''})"


def say_seeds(label: str) -> str:
    """"(n = 3)" in a label (an experiment's own count of seeds) as "(n = 3 seeds)"."""
    return _N_SEEDS.sub(lambda m: f"n = {m[1]} seed{'s' if m[1] != '1' else ''})", label)


def _integer_ticks(ax, xs) -> None:
    """Whole-number ticks on a linear x axis whose points are whole numbers (epochs, R, layers)."""
    if ax.get_xscale() == "linear" and len(xs) and all(float(x).is_integer() for x in xs):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def panel_axes(n: int, height: float = PANEL_HEIGHT, **subplot_kw):
    """A page-wide figure with `n` panels, two to a row (one alone takes the whole width; the last of an odd
    number is centred). Returns (figure, list of axes)."""
    cols = 1 if n == 1 else 2
    rows = math.ceil(n / cols)
    fig = plt.figure(figsize=(PAGE_WIDTH, height * rows + (0.3 if n > 1 else 0)), layout="constrained")
    grid = fig.add_gridspec(rows, 2 * cols)
    axes = []
    for i in range(n):
        row, col = divmod(i, cols)
        if cols == 2 and i == n - 1 and n % 2:
            axes.append(fig.add_subplot(grid[row, 1:3], **subplot_kw))
        else:
            axes.append(fig.add_subplot(grid[row, 2 * col:2 * col + 2], **subplot_kw))
    return fig, axes


def _save(fig, path: Path, title: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Title": title})
    plt.close(fig)
    return path


def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(framealpha=0.9, **kw)


def wrap(text: str, inches: float, size: float) -> str:
    """`text` broken into lines that fit `inches` at font size `size` (an average glyph is ~0.55 em wide);
    its own line breaks are kept."""
    chars = max(16, int(inches * 72 / (0.55 * size)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _panel_inches(ax) -> tuple[float, float]:
    """The width and height (inches) a panel has for its text, its share of the figure less the tick labels."""
    spec = ax.get_subplotspec()
    grid = spec.get_gridspec()
    width, height = ax.figure.get_size_inches()
    return (len(spec.colspan) / grid.ncols * width - 0.9, len(spec.rowspan) / grid.nrows * height - 1.0)


def _suptitle(fig, title: str) -> None:
    fig.suptitle(wrap(title, PAGE_WIDTH - 0.4, FONTS["figure.titlesize"]))


def _finish(ax, xlabel: str, ylabel: str, title: str = "") -> None:
    """Readable, wrapped axis labels and title; a light grid; the legend."""
    width, height = _panel_inches(ax)
    ax.set_xlabel(wrap(readable(xlabel), width, FONTS["axes.labelsize"]))
    ax.set_ylabel(wrap(readable(ylabel), height, FONTS["axes.labelsize"]))
    if title:
        ax.set_title(wrap(readable(title), width, FONTS["axes.titlesize"]))
    ax.grid(alpha=0.3)
    _legend(ax)


def _mean_band(ax, xs, values: list[list[float]], label: str, k: int) -> None:
    """The mean over seeds at each x (a line with markers, at most ~12 of them) and a min-max band."""
    values = [list(v) if isinstance(v, (list, tuple)) else [v] for v in values]
    mean = [float(np.mean(v)) if v else np.nan for v in values]
    style = series_style(k)
    ax.plot(xs, mean, label=seeds_label(label, [len(v) for v in values]), markersize=5,
            markevery=max(1, len(xs) // 12), **style)
    if any(len(v) > 1 for v in values):
        ax.fill_between(xs, [min(v) if v else np.nan for v in values], [max(v) if v else np.nan for v in values],
                        color=style["color"], alpha=0.15, linewidth=0)


def _references(ax, references: dict[str, float]) -> None:
    for k, (label, value) in enumerate(references.items()):
        ax.axhline(value, label=say_seeds(readable(label)), **reference_style(k))


def curves_figure(path: Path, series: dict[str, list[list[float]]], ylabel: str, title: str) -> Path:
    """One line per label: the mean over seeds per epoch, with a min-max band (seeds may stop at
    different epochs; each epoch averages the seeds still training)."""
    with plt.rc_context(FONTS):
        fig, (ax,) = panel_axes(1, height=4.6)
        for k, (label, runs) in enumerate(series.items()):
            length = max(len(r) for r in runs)
            stacked = [[r[e] for r in runs if e < len(r)] for e in range(length)]
            _mean_band(ax, np.arange(1, length + 1), stacked, label, k)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs
        _finish(ax, "epoch", ylabel)
        _suptitle(fig, title)
        return _save(fig, path, title)


def decision_panels(path: Path, panels: list[dict], title: str) -> Path:
    """2-D decision regions, two panels to a row: each panel dict has `title`, `grid` (predicted class per
    cell, rows = y), `bounds` (xmin, xmax, ymin, ymax), `points` (n x 2), `labels` (n) and `caption`."""
    with plt.rc_context(FONTS):
        fig, axes = panel_axes(len(panels), height=4.2)
        for ax, panel in zip(axes, panels):
            xmin, xmax, ymin, ymax = panel["bounds"]
            ax.imshow(np.asarray(panel["grid"]), origin="lower", extent=(xmin, xmax, ymin, ymax), cmap="coolwarm",
                      alpha=0.35, vmin=0, vmax=1, interpolation="nearest", aspect="auto")
            points, labels = np.asarray(panel["points"]), np.asarray(panel["labels"])
            for cls, marker in ((0, "o"), (1, "^")):  # the classes differ in marker as well as colour
                mask = labels == cls
                ax.scatter(points[mask, 0], points[mask, 1], c=labels[mask], cmap="coolwarm", vmin=0, vmax=1, s=22,
                           marker=marker, edgecolors="k", linewidths=0.4, label=f"class {cls}")
            width, _ = _panel_inches(ax)
            ax.set_title(wrap(panel["title"], width, FONTS["axes.titlesize"]))
            ax.set_xlabel(wrap(panel["caption"], width, FONTS["axes.labelsize"]))
            ax.set_xticks([])
            ax.set_yticks([])
        _legend(axes[0], loc="upper left")
        _suptitle(fig, title)
        return _save(fig, path, title)


def lines_figure(path: Path, xs: list[float], series: dict[str, list[list[float]]], xlabel: str, ylabel: str,
                 title: str, references: dict[str, float] | None = None, logx: bool = False) -> Path:
    """One line per label through the per-x means, with a min-max band; `series[label][i]` holds the
    values (over seeds) at xs[i]. `references` draws labelled horizontal reference lines."""
    with plt.rc_context(FONTS):
        fig, (ax,) = panel_axes(1, height=4.6)
        for k, (label, values) in enumerate(series.items()):
            _mean_band(ax, xs, values, label, k)
        _references(ax, references or {})
        if logx:
            positive = [x for x in xs if x > 0]
            ax.set_xscale("symlog", linthresh=max(min(positive), 1e-12) if positive else 1.0)
        _integer_ticks(ax, xs)
        _finish(ax, xlabel, ylabel)
        _suptitle(fig, title)
        return _save(fig, path, title)


def bars_figure(path: Path, groups: list[str], series: dict[str, list[list[float]]], ylabel: str, title: str,
                logy: bool = False) -> Path:
    """Grouped bars: one group per entry of `groups`, one bar per label (the mean over seeds, with a
    min-max error bar); `series[label][i]` holds the values for groups[i]. Bars differ in colour and hatch."""
    with plt.rc_context(FONTS):
        fig, (ax,) = panel_axes(1, height=4.6)
        width = 0.8 / max(len(series), 1)
        for k, (label, values) in enumerate(series.items()):
            mean = np.array([np.mean(v) for v in values])
            err = np.array([[m - min(v) for m, v in zip(mean, values)], [max(v) - m for m, v in zip(mean, values)]])
            err = np.clip(err, 0.0, None)  # the mean of equal values can differ from them in the last bit
            counts = [sum(1 for x in v if x == x) for v in values]  # NaN (nothing measured) is not a seed
            ax.bar(np.arange(len(groups)) + k * width, mean, width, yerr=err, capsize=3, color=f"C{k % 10}",
                   hatch=HATCHES[k % len(HATCHES)], edgecolor="black", linewidth=0.5,
                   label=seeds_label(label, counts))
        ax.set_xticks(np.arange(len(groups)) + width * (len(series) - 1) / 2, [readable(g) for g in groups])
        if logy:
            ax.set_yscale("log")
        handles, labels = ax.get_legend_handles_labels()
        ax.set_ylabel(wrap(readable(ylabel), _panel_inches(ax)[1], FONTS["axes.labelsize"]))
        ax.grid(alpha=0.3, axis="y")
        if handles:  # below the bars, which fill the panel
            fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 3), framealpha=0.9)
        _suptitle(fig, title)
        return _save(fig, path, title)


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
    (draw y = x), `xlabel`, `ylabel`, `title`, `logx`. Groups differ in colour and marker."""
    xs_all, ys_all = [], []
    for k, (name, (xs, ys, labels)) in enumerate(panel["groups"].items()):
        style = series_style(k)
        ax.scatter(xs, ys, s=28, label=readable(name), color=panel.get("colors", {}).get(name, style["color"]),
                   marker=style["marker"], edgecolors="k", linewidths=0.3, zorder=3)
        for x, y, text in zip(xs, ys, labels or []):
            ax.annotate(str(text), (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
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
        ax.plot([lo, hi], [lo, hi], label="test = train", **reference_style(1))
    if panel.get("logx"):
        ax.set_xscale("log")
    else:  # normalized losses differ in the 4th decimal: show them plainly, not as offsets
        ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    _finish(ax, panel.get("xlabel", ""), panel.get("ylabel", ""), panel.get("title", ""))
    return fit


def scatter_figure(path: Path, panels: list[dict], title: str) -> tuple[Path, list[dict | None]]:
    """Scatter panels, two to a row (see `scatter_panel`); returns the path and each panel's fit."""
    with plt.rc_context(FONTS):
        fig, axes = panel_axes(len(panels), height=4.6)
        fits = [scatter_panel(ax, panel) for ax, panel in zip(axes, panels)]
        _suptitle(fig, title)
        return _save(fig, path, title), fits


def series_figure(path: Path, panels: list[dict], title: str) -> Path:
    """Line panels, two to a row. Each panel: `series` {label: (xs, values)} where values[i] is a number or
    the list of numbers over seeds at xs[i] (drawn as the mean with a min-max band), optional `xscale`,
    `yscale` ("linear", "log"), `xlabel`, `ylabel`, `title`, `hlines` {label: y}: reference lines, and `vlines`
    {label: x}: vertical reference lines (a value per x may be one number or one per seed)."""
    with plt.rc_context(FONTS):
        fig, axes = panel_axes(len(panels))
        for ax, panel in zip(axes, panels):
            for k, (label, (xs, values)) in enumerate(panel["series"].items()):
                values = [v if isinstance(v, (list, tuple)) else [v] for v in values]
                _mean_band(ax, xs, values, label, k)
            _references(ax, panel.get("hlines", {}))
            for k, (label, x) in enumerate(panel.get("vlines", {}).items(), start=len(panel.get("hlines", {}))):
                ax.axvline(x, label=readable(label), **reference_style(k))
            ax.set_xscale(panel.get("xscale", "linear"))
            ax.set_yscale(panel.get("yscale", "linear"))
            _integer_ticks(ax, [x for xs, _ in panel["series"].values() for x in xs])
            _finish(ax, panel.get("xlabel", ""), panel.get("ylabel", ""), panel.get("title", ""))
        _suptitle(fig, title)
        return _save(fig, path, title)


def histogram_figure(path: Path, series: dict[str, tuple[list[float], list[int]]], xlabel: str, title: str) -> Path:
    """Histograms already counted: {label: (bin edges, counts)}, each drawn as a step outline."""
    with plt.rc_context(FONTS):
        fig, (ax,) = panel_axes(1)
        for k, (label, (edges, counts)) in enumerate(series.items()):
            ax.stairs(counts, edges, label=readable(label), fill=len(series) == 1,
                      alpha=0.6 if len(series) == 1 else 1.0, linestyle=series_style(k)["linestyle"])
        _finish(ax, xlabel, "counts")
        _suptitle(fig, title)
        return _save(fig, path, title)
