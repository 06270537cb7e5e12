"""`norm-vs-error` (paper 001, Figure 4c and Figure 13): the test error and test loss of the networks of
`normalized-loss` (generalization.py: same protocol, same runs) against the product of their layers'
Frobenius norms."""
from __future__ import annotations

from pathlib import Path

from ..report.figures import scatter_figure
from ..report.tables import markdown_table
from ..store import Store
from . import Experiment, register_experiment
from .generalization import (COLORS, FAMILIES, NETWORK_HEADER, _fmt, _label, _measured, family_cells,
                             family_records, network_rows)


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties)."""
    if len(a) < 3:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def norm_correlations(records: list[dict]) -> list[list]:
    points = _measured(records)
    rows = []
    for which, rs in (("all networks", points), ("true labels only", [r for r in points if r["train_labels"] == "true"])):
        norms = [r["product_of_frobenius_norms"] for r in rs]
        rows.append([which, len(rs), _fmt(spearman(norms, [r["test_error_percent"] for r in rs]), 3),
                     _fmt(spearman(norms, [r["test_loss"] for r in rs]), 3)])
    return rows


CORRELATION_HEADER = ["networks", "points", "Spearman: norms vs test error", "Spearman: norms vs test loss"]


def norm_table(records: list[dict]) -> tuple[list[str], list[list]]:
    header = ["family", "value", "seed", "train loss", "prod. Frobenius norms", "test err %", "test loss"]
    rows = [[r["family"], r["value"], r["seed"], _fmt(r.get("train_loss")), _fmt(r.get("product_of_frobenius_norms"), 5),
             _fmt(r.get("test_error_percent"), 3), _fmt(r.get("test_loss"))] for r in records]
    rows += [[f"Spearman ({c[0]})", "", "", "", "", c[2], c[3]] for c in norm_correlations(records)]
    return header, rows


def norm_render(folder: Path, store: Store, records: list[dict], scale: str) -> list[Path]:
    """norm-vs-error.png (Figure 4c / 13: test error and test loss against the product of Frobenius norms;
    Figure 4b: test error against the normalized test loss) and norm-vs-error.md."""
    folder.mkdir(parents=True, exist_ok=True)
    points = [r for r in _measured(records) if r["train_labels"] == "true"]  # as Figure 13: true-label networks

    def groups(x_key, y_key):
        return {fam: ([r[x_key] for r in points if r["family"] == fam], [r[y_key] for r in points if r["family"] == fam],
                      [_label(r) for r in points if r["family"] == fam]) for fam in FAMILIES
                if any(r["family"] == fam for r in points)}

    panels = [{"groups": groups("product_of_frobenius_norms", "test_error_percent"), "colors": COLORS, "logx": True,
               "xlabel": "product of layer Frobenius norms (unnormalized network)", "ylabel": "test error (%)",
               "title": "Figure 4c / 13"},
              {"groups": groups("product_of_frobenius_norms", "test_loss"), "colors": COLORS, "logx": True,
               "xlabel": "product of layer Frobenius norms (unnormalized network)",
               "ylabel": "test cross-entropy (unnormalized network)", "title": "test loss vs norms"},
              {"groups": groups("normalized_test_loss", "test_error_percent"), "colors": COLORS,
               "xlabel": "test cross-entropy (normalized network)", "ylabel": "test error (%)", "title": "Figure 4b"}]
    figure, _ = scatter_figure(folder / "norm-vs-error.png", panels,
                               f"Paper 001: test error and loss vs the product of Frobenius norms\n{scale}")
    text = ("# norm-vs-error: paper 001 Figures 4 and 13\n\n"
            f"Ours: {scale}. The networks of `normalized-loss` (same training loss); product of the Frobenius norms "
            "of the weight matrices (biases excluded). The figure shows the networks trained on the true labels (as "
            "Figure 13); the random-label network is in the tables. Paper 001: test error grows with the product "
            "(Figure 13, CIFAR-10 at train loss 0.0044).\n\n" + markdown_table(CORRELATION_HEADER, norm_correlations(records))
            + "\n## Every network\n\n" + markdown_table(NETWORK_HEADER, network_rows(records)))
    md = folder / "norm-vs-error.md"
    md.write_text(text)
    return [md, figure]


register_experiment(Experiment(
    "norm-vs-error", "paper 001 Figures 4 and 13: test error and loss vs the product of layer Frobenius norms "
    "(the networks of normalized-loss)", family_records, norm_table, norm_render, family_cells))
