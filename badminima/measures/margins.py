"""Output margins, and decision boundaries of models on 2-D inputs.

Margin (paper 001 appendix A: eta_n = f_{y_n}(x_n) - max_{j != y_n} f_j(x_n); paper 000 section 3.7
relates robustness to it): positive iff the example is classified correctly. Computed on the logits of
`model` in eval mode; for the normalized margins of paper 001 pass `normalized_network(model)`.

Decision boundaries (paper 000 Figure 1, the 2-D toy): the model's predicted class on a square grid;
the boundary length is estimated from label changes between neighbouring grid points by the Crofton
formula over four directions, and class regions are connected components (scipy.ndimage.label).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .batches import batches


@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def output_margins(model: nn.Module, x, y: torch.Tensor | None, batch_size: int = 1024) -> torch.Tensor:
    """Per-example f_y(x) - max_{j != y} f_j(x), shape (n,), on the CPU, in the data's order; the data as
    measures/batches.py reads them (tensors, or a DataLoader with y=None)."""
    out = []
    for xb, yb in batches(x, y, batch_size):
        logits, yb = _logits(model, xb, batch_size).double().cpu(), yb.cpu()
        true = logits.gather(1, yb[:, None]).squeeze(1)
        out.append(true - logits.scatter(1, yb[:, None], float("-inf")).max(1).values)
    return torch.cat(out)


def margin_summary(margins: torch.Tensor, percentiles: tuple[float, ...] = (10, 50)) -> dict[str, float]:
    """The distribution of margins: the given percentiles (linear interpolation, numpy's default; the
    10th percentile is the summary of Bartlett et al. 2017 and Jiang et al. 2019), mean, min, max and the
    fraction of negative (misclassified) margins."""
    m = margins.double().cpu().numpy()
    out = {f"p{q:g}": float(np.percentile(m, q)) for q in percentiles}
    out.update(mean=float(m.mean()), min=float(m.min()), max=float(m.max()), fraction_negative=float((m < 0).mean()))
    return out


def margin_percentile(model: nn.Module, x, y: torch.Tensor | None, q: float = 10.0) -> float:
    """The q-th percentile of the output margins (default: the 10th)."""
    return float(np.percentile(output_margins(model, x, y).numpy(), q))


def decision_grid(model: nn.Module, bounds: tuple[float, float, float, float], spacing: float,
                  batch_size: int = 65536) -> torch.Tensor:
    """Predicted classes on the grid x = xmin + j*spacing, y = ymin + i*spacing inside `bounds` =
    (xmin, xmax, ymin, ymax); returns labels[i, j] (rows are y). Inputs must be 2-D points."""
    xmin, xmax, ymin, ymax = bounds
    xs = xmin + spacing * torch.arange(int(math.floor((xmax - xmin) / spacing + 1e-9)) + 1, dtype=torch.float64)
    ys = ymin + spacing * torch.arange(int(math.floor((ymax - ymin) / spacing + 1e-9)) + 1, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    points = torch.stack([gx.flatten(), gy.flatten()], 1).to(dtype=dtype, device=device)
    return _logits(model, points, batch_size).argmax(1).reshape(gx.shape).cpu()


def boundary_length(labels: torch.Tensor, spacing: float) -> float:
    """Total length of the decision boundary on a grid of square cells of side `spacing`.

    Crofton's formula, length = (pi/2) * mean over directions theta of (line spacing * crossings), with
    the four lattice directions: label changes between horizontal neighbours count crossings of the rows
    (spacing h), vertical neighbours of the columns (h), diagonal and anti-diagonal neighbours of the
    diagonals (h/sqrt 2). Exact on average over orientations; a straight line comes out between 5.2% short
    (axis-parallel or diagonal) and 2.6% long (at 22.5 degrees), plus the grid's own resolution error.
    """
    lab = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    rows = np.count_nonzero(lab[:, 1:] != lab[:, :-1])
    cols = np.count_nonzero(lab[1:, :] != lab[:-1, :])
    diag = np.count_nonzero(lab[1:, 1:] != lab[:-1, :-1])
    anti = np.count_nonzero(lab[1:, :-1] != lab[:-1, 1:])
    return math.pi / 8 * spacing * (rows + cols + (diag + anti) / math.sqrt(2))


def class_regions(labels: torch.Tensor) -> dict:
    """Connected regions of each predicted class on the grid (4-connectivity, scipy.ndimage.label):
    {"total": number of regions, "per_class": {class: number of regions}}."""
    from scipy import ndimage

    lab = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    per_class = {int(c): int(ndimage.label(lab == c)[1]) for c in np.unique(lab)}
    return {"total": sum(per_class.values()), "per_class": per_class}


def decision_boundary_summary(model: nn.Module, bounds: tuple[float, float, float, float], spacing: float) -> dict:
    """Boundary length and class regions of a 2-D model inside `bounds` on a grid of `spacing`."""
    labels = decision_grid(model, bounds, spacing)
    return {"boundary_length": boundary_length(labels, spacing), **class_regions(labels),
            "bounds": list(bounds), "spacing": spacing}
