"""Figures read well at the page's width: every text inside the canvas (no clipped titles), panels two to a row
at no less than ~40% of the width, readable names for record keys, distinct styles for distinct series and
reference lines, the number of seeds in the legend, the title in the PNG. Checked on the drawn matplotlib
artists (renderer extents) and on the PNG read back with PIL, not through our own helpers."""
import matplotlib
import numpy as np
import pytest
from PIL import Image

from badminima.report import figures
from badminima.report.labels import is_raw_key, readable
from badminima.report.tables import markdown_table, text_table

LONG = "distance to the predicted limit (A^+ b; from w_0: A^+ b + (I - A^+ A) w_0) of gradient descent started anywhere"


@pytest.fixture
def drawn(monkeypatch):
    """The figures the helpers save, kept open (not closed) to be inspected."""
    kept = []
    monkeypatch.setattr(figures.plt, "close", kept.append)
    yield kept
    monkeypatch.undo()
    for fig in kept:
        matplotlib.pyplot.close(fig)


def _drawn_extent(fig):
    """The box (inches) around everything drawn: titles, labels, tick labels, legends."""
    fig.canvas.draw()
    return fig.get_tightbbox(fig.canvas.get_renderer())  # the Agg canvas the figure was saved with


def _check_page_figure(fig, path, title, panels):
    width, height = fig.get_size_inches()
    assert width == pytest.approx(figures.PAGE_WIDTH)
    drawn = _drawn_extent(fig)  # nothing runs off the canvas (a long title is wrapped, not clipped)
    assert drawn.x0 >= -0.02 and drawn.y0 >= -0.02 and drawn.x1 <= width + 0.02 and drawn.y1 <= height + 0.02, drawn
    canvas = fig.bbox
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == panels
    rows = len({round(ax.get_position().y0, 3) for ax in axes})
    assert rows == (panels + 1) // 2 if panels > 1 else rows == 1  # two to a row
    for ax in axes:  # no squeezed panel
        assert ax.get_window_extent().width >= (0.8 if panels == 1 else 0.38) * canvas.width
    with Image.open(path) as image:
        assert image.text["Title"] == title
        assert image.width == round(figures.PAGE_WIDTH * figures.DPI)


def _legend_texts(ax):
    legend = ax.get_legend() or next(iter(ax.figure.legends), None)
    return [t.get_text() for t in legend.get_texts()]


def test_readable_names():
    assert readable("l2_path_norm") == "l2 path norm"
    assert readable("test_acc") == "test accuracy (%)"
    assert readable("error_gap_percent") == "error gap, test - train (%)"
    assert readable("some_new_percent") == "some new (%)" and readable("final_angle_degrees") == "final angle (degrees)"
    assert readable("spectral.v2") == "spectral (convention v2)"
    assert readable("pretrain epoch_100") == "pretrain first epoch at 100% train accuracy"
    for kept in ("||w_hat||", "test acc %", "rho = ||W0A||/||W0R||", "seed", "W0R->WVR", "angle of w_hat ln T",
                 "||w_tilde|| / ||w_hat||", "init.replication_factor=1"):
        assert readable(kept) == kept
    assert is_raw_key("l2_path_norm") and not is_raw_key("l2 path norm") and not is_raw_key("||w_hat||")


def test_markdown_headers_read_well_while_the_terminal_keeps_keys():
    header, rows = ["init", "l2_path_norm", "||w_hat||"], [["random", 0.5, 1.0]]
    assert markdown_table(header, rows).splitlines()[0] == "| init | l2 path norm | \\|\\|w_hat\\|\\| |"
    assert text_table(header, rows).splitlines()[0].split() == header


def test_series_panels_wrap_to_rows_with_readable_legends_and_distinct_styles(tmp_path, drawn):
    xs = [1, 10, 100, 1000]
    seeds = [[1.0, 1.2, 0.9]] * 4  # three seeds at every point
    panels = [{"series": {"train_loss": (xs, seeds), "test_loss": (xs, seeds), "error_gap_percent": (xs, seeds)},
               "hlines": {"published (paper 001)": 1.1, "limit": 0.5}, "xscale": "log", "xlabel": "train_size",
               "ylabel": "cross-entropy", "title": LONG} for _ in range(3)]
    title = "Paper 001 Figure 19 " * 8 + "\nmnist1d / mlp, cpu preset"
    path = figures.series_figure(tmp_path / "s.png", panels, title)
    fig, = drawn
    _check_page_figure(fig, path, title, 3)
    ax = fig.axes[0]
    assert _legend_texts(ax) == ["train cross-entropy (n = 3 seeds)", "test cross-entropy (n = 3 seeds)",
                                 "error gap, test - train (%) (n = 3 seeds)", "published (paper 001)", "limit"]
    assert ax.get_xlabel() == "training examples"
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    styles = [(ln.get_color(), str(ln.get_linestyle()), ln.get_marker()) for ln in lines]
    assert len(set(styles)) == len(styles)  # every series and reference line looks different
    assert len({s[1] for s in styles[:3]}) == 3 and len({s[2] for s in styles[:3]}) == 3  # even in grey
    for ref in lines[3:]:  # references: dashed or dotted, no marker
        assert ref.get_linestyle() not in ("-", "None") and ref.get_marker() in ("None", "", None)


def test_one_panel_figures_fill_the_width_and_count_seeds(tmp_path, drawn):
    series = {"vanilla, adversarial init (n = 2)": [[1, 2]] * 3}
    lines_path = figures.lines_figure(tmp_path / "l.png", [1, 2, 3], series, "replication_factor", "test_acc", "t1",
                                      references={"vanilla, random init (mean of n = 2)": 1.5})
    curves_path = figures.curves_figure(tmp_path / "c.png", {"random init": [[1, 2, 3], [1, 2]]}, "test_acc", "t2")
    bars_path = figures.bars_figure(tmp_path / "b.png", ["random\nvanilla", "adversarial\nvanilla"],
                                    {"frobenius": [[5, 5.1], [5, 5.2]], "l1_path_norm": [[250, 260], [240, 250]],
                                     "l2_path_norm": [[0.7], [0.8, 0.9]]}, "norm (log scale)", "t3", logy=True)
    for fig, path, title in zip(drawn, (lines_path, curves_path, bars_path), ("t1", "t2", "t3")):
        _check_page_figure(fig, path, title, 1)
    lines_fig, curves_fig, bars_fig = drawn
    assert _legend_texts(lines_fig.axes[0]) == ["vanilla, adversarial init (n = 2 seeds)",
                                                "vanilla, random init (mean of n = 2 seeds)"]
    assert lines_fig.axes[0].get_xlabel() == "replication factor R"
    assert _legend_texts(curves_fig.axes[0]) == ["random init (n = 1-2 seeds)"]  # one seed stopped early
    assert curves_fig.axes[0].get_ylabel() == "test accuracy (%)"
    assert _legend_texts(bars_fig.axes[0]) == ["Frobenius norm (n = 2 seeds)", "l1 path norm (n = 2 seeds)",
                                               "l2 path norm (n = 1-2 seeds)"]
    hatches = [p.get_hatch() for p in bars_fig.axes[0].patches]
    assert len(set(hatches)) == 3


def test_scatter_and_decision_panels(tmp_path, drawn):
    rng = np.random.default_rng(0)
    panel = {"groups": {"init std": (list(rng.uniform(1, 2, 5)), list(rng.uniform(1, 2, 5)), None),
                        "random labels": ([1.5], [1.7], ["RL"])}, "fit": True, "diagonal": True,
             "xlabel": "normalized_train_loss", "ylabel": "normalized_test_loss", "title": "normalized"}
    path, fits = figures.scatter_figure(tmp_path / "sc.png", [panel] * 3, "Figure 4")
    _check_page_figure(drawn[0], path, "Figure 4", 3)
    ax = drawn[0].axes[0]
    assert ax.get_xlabel() == "normalized train cross-entropy" and fits[0]["n"] == 6
    assert len({c.get_paths()[0].vertices.tobytes() for c in ax.collections}) == 2  # the groups' markers differ
    grid = [[0, 1], [1, 1]]
    panels = [{"title": f"setting {k}: " + LONG, "grid": grid, "bounds": (0, 1, 0, 1),
               "points": [[0.2, 0.3], [0.7, 0.8]], "labels": [0, 1], "caption": "test 100.0%, boundary 4.7, 2 regions"} for k in range(4)]
    path = figures.decision_panels(tmp_path / "d.png", panels, "Figure 1 of paper 000")
    _check_page_figure(drawn[1], path, "Figure 1 of paper 000", 4)
