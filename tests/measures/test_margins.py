"""Margins by hand; decision boundaries of known separators on a grid."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from badminima.measures import (boundary_length, class_regions, decision_boundary_summary, decision_grid,
                                margin_percentile, margin_summary, output_margins)
from badminima.models import Classifier


class Fixed(nn.Module):
    """Returns its input as the logits (so the margins are known)."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x + self.p


def test_margins_by_hand():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0], [1.0, 1.0, 4.0], [2.0, 2.0, 0.0]])
    y = torch.tensor([0, 2, 2, 1])
    expected = [3 - 2, -1 - 5, 4 - 1, 2 - 2]
    margins = output_margins(Fixed(), logits, y, batch_size=3)
    assert margins.tolist() == expected
    summary = margin_summary(margins)
    assert summary["p10"] == pytest.approx(np.percentile(expected, 10))
    assert summary["fraction_negative"] == 0.25 and summary["min"] == -6 and summary["mean"] == pytest.approx(-0.5)
    assert margin_percentile(Fixed(), logits, y, 50) == pytest.approx(np.median(expected))


def _linear_classifier(direction, offset):
    """Two classes split by the line direction . x = offset (class 1 where direction . x > offset)."""
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0.0], list(direction)]))
        layer.bias.copy_(torch.tensor([0.0, -offset]))
    return Classifier(layer, torch.zeros(2), torch.ones(2), 1)


@pytest.mark.parametrize("angle", [0.0, 0.3, math.pi / 4, 1.1])
def test_a_line_across_the_square(angle):
    normal = (math.cos(angle), math.sin(angle))
    model = _linear_classifier(normal, 0.1)
    # the chord of the line normal . x = 0.1 inside [-1, 1]^2, computed analytically by clipping
    d = (-normal[1], normal[0])
    base = (0.1 * normal[0], 0.1 * normal[1])
    lo, hi = -math.inf, math.inf
    for i in range(2):
        if abs(d[i]) > 1e-12:
            t1, t2 = (-1 - base[i]) / d[i], (1 - base[i]) / d[i]
            lo, hi = max(lo, min(t1, t2)), min(hi, max(t1, t2))
    chord = hi - lo
    summary = decision_boundary_summary(model, (-1, 1, -1, 1), 0.01)
    assert summary["boundary_length"] == pytest.approx(chord, rel=0.055)  # 4-direction Crofton: -5.2% to +2.6%
    assert summary["total"] == 2 and summary["per_class"] == {0: 1, 1: 1}


def test_quadrants_make_four_regions_and_two_unit_axes():
    class Quadrants(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            s = x[:, 0] * x[:, 1] + self.p
            return torch.stack([s, -s], 1)

    labels = decision_grid(Quadrants(), (-1.005, 1.005, -1.005, 1.005), 0.01)
    assert class_regions(labels) == {"total": 4, "per_class": {0: 2, 1: 2}}
    # two axis-aligned segments of length 2.01: Crofton reads them 1 - (1 + sqrt 2) pi / 8 = 5.2% short
    factor = (1 + math.sqrt(2)) * math.pi / 8
    assert boundary_length(labels, 0.01) == pytest.approx(2 * 2.01 * factor, rel=0.01)


def test_a_disk_is_one_region_with_its_circumference():
    class Disk(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            s = 0.25 - (x ** 2).sum(1) + self.p
            return torch.stack([-s, s], 1)

    labels = decision_grid(Disk(), (-1, 1, -1, 1), 0.005)
    assert class_regions(labels) == {"total": 2, "per_class": {0: 1, 1: 1}}
    assert boundary_length(labels, 0.005) == pytest.approx(2 * math.pi * 0.5, rel=0.02)
