"""`norm-vs-error` (paper 001, Figure 4 and Figure 13): the test error and test loss of the networks of
`normalized-loss` (generalization.py: same protocol, same runs) against the product of their layers'
Frobenius norms.

- The product of norms is that of the normalization (`measures.normalization_factors`: the first layer's
  [weight, bias], then each later weight matrix), so the normalized network is the unnormalized one divided
  by exactly this product.
- Correlations are per family, as the paper draws one family per figure (Figure 13: random pretraining;
  Figure 4c: init std): pooling families would correlate the families' offsets, not the trend within one.
  The random-label network is a single point, in the tables only.
- Figure 4: (a) normalized test loss against the product, (b) test error against the normalized test loss,
  (c) test error against the product.
"""
from __future__ import annotations

from pathlib import Path

from ...report.figures import scatter_figure
from ...report.tables import markdown_table
from ...store import Store
from .. import Experiment, register_experiment
from .generalization import (COLORS, FAMILIES, NETWORK_HEADER, _fmt, _label, _measured, family_cells,
                             family_records, network_rows)

NORM = "product_of_normalization_factors"
CORRELATED = ("init std", "random pretraining")  # the families with more than one network


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None below 3 points."""
    if len(a) < 3:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def norm_correlations(records: list[dict]) -> list[list]:
    """[family, points, Spearman(norm product, test error), Spearman(norm product, test loss),
    Spearman(norm product, normalized test loss)] for each family of true-label networks."""
    points = _measured(records)
    rows = []
    for family in CORRELATED:
        rs = [r for r in points if r["family"] == family]
        norms = [r[NORM] for r in rs]
        rows.append([family, len(rs)] + [_fmt(spearman(norms, [r[key] for r in rs]), 3)
                                         for key in ("test_error_percent", "test_loss", "normalized_test_loss")])
    return rows


CORRELATION_HEADER = ["family", "points", "Spearman: norms vs test error", "Spearman: norms vs test loss",
                      "Spearman: norms vs normalized test loss"]


def norm_table(records: list[dict]) -> tuple[list[str], list[list]]:
    header = ["family", "value", "seed", "train loss", "prod. of norms", "test err %", "test loss", "norm. test loss"]
    rows = [[r["family"], r["value"], r["seed"], _fmt(r.get("train_loss")), _fmt(r.get(NORM), 5),
             _fmt(r.get("test_error_percent"), 3), _fmt(r.get("test_loss")), _fmt(r.get("normalized_test_loss"), 8)]
            for r in records]
    rows += [[f"Spearman ({c[0]})", "", "", "", "", c[2], c[3], c[4]] for c in norm_correlations(records)]
    return header, rows


def norm_render(folder: Path, store: Store, records: list[dict], scale: str) -> list[Path]:
    """norm-vs-error.png (Figure 4a: normalized test loss against the product of norms; 4c / 13: test error
    against it; 4b: test error against the normalized test loss; one colour per family) and norm-vs-error.md."""
    folder.mkdir(parents=True, exist_ok=True)
    points = [r for r in _measured(records) if r["train_labels"] == "true"]  # as Figures 4 and 13

    def groups(x_key, y_key):
        return {fam: ([r[x_key] for r in points if r["family"] == fam], [r[y_key] for r in points if r["family"] == fam],
                      [_label(r) for r in points if r["family"] == fam]) for fam in FAMILIES
                if any(r["family"] == fam for r in points)}

    xlabel = "product of the layers' Frobenius norms (unnormalized network)"
    panels = [{"groups": groups(NORM, "normalized_test_loss"), "colors": COLORS, "logx": True, "xlabel": xlabel,
               "ylabel": "test cross-entropy (normalized network)", "title": "Figure 4a"},
              {"groups": groups("normalized_test_loss", "test_error_percent"), "colors": COLORS,
               "xlabel": "test cross-entropy (normalized network)", "ylabel": "test error (%)", "title": "Figure 4b"},
              {"groups": groups(NORM, "test_error_percent"), "colors": COLORS, "logx": True, "xlabel": xlabel,
               "ylabel": "test error (%)", "title": "Figure 4c / 13"}]
    figure, _ = scatter_figure(folder / "norm-vs-error.png", panels,
                               f"Paper 001 Figure 4: test loss and error vs the product of Frobenius norms\n{scale}")
    text = ("# norm-vs-error: paper 001 Figures 4 and 13\n\n"
            f"Ours: {scale}. The networks of `normalized-loss` (same training loss, the snapshot closest to the "
            "reference with 0% training error); product of the Frobenius norms by which the normalization divides "
            "(the first layer's weights with its bias, then each weight matrix). Spearman correlations within each "
            "family, as the paper draws one family per figure (Figure 13: random pretraining, CIFAR-10 at train loss "
            "0.0044, test error grows with the product; Figure 4c: init std). The figure shows the networks trained "
            "on the true labels; the random-label network is in the tables.\n\n"
            + markdown_table(CORRELATION_HEADER, norm_correlations(records))
            + "\n## Every network\n\n" + markdown_table(NETWORK_HEADER, network_rows(records)))
    md = folder / "norm-vs-error.md"
    md.write_text(text)
    return [md, figure]


register_experiment(Experiment(
    "norm-vs-error", family_records, norm_table, norm_render, family_cells))
