"""Ranks of matrices whose singular values are known."""
import math

import pytest
import torch
from torch import nn

from badminima.measures import effective_rank, entropy_effective_rank, layer_ranks, numerical_rank, stable_rank
from badminima.models import Classifier


def _s(matrix):
    return torch.linalg.svdvals(matrix.double())


def test_identity_has_full_rank_by_every_definition():
    s = _s(torch.eye(7))
    assert effective_rank(s) == pytest.approx(math.sqrt(7))  # ||s||_1/||s||_2 = 7/sqrt(7)
    assert entropy_effective_rank(s) == pytest.approx(7)
    assert stable_rank(s) == pytest.approx(7)
    assert numerical_rank(s) == 7


def test_rank_one_matrix():
    u, v = torch.randn(6, 1, dtype=torch.float64), torch.randn(1, 4, dtype=torch.float64)
    s = _s(u @ v)
    assert effective_rank(s) == pytest.approx(1, abs=1e-6)
    assert entropy_effective_rank(s) == pytest.approx(1, abs=1e-6)
    assert stable_rank(s) == pytest.approx(1)
    assert numerical_rank(s) == 1


def test_diagonal_matrix():
    d = torch.tensor([4.0, 2.0, 1.0, 1.0, 1e-6])
    s = _s(torch.diag(d))
    p = d / d.sum()
    assert effective_rank(s) == pytest.approx(float(d.sum() / d.norm()))
    assert entropy_effective_rank(s) == pytest.approx(math.exp(-sum(float(q * q.log()) for q in p)))
    assert stable_rank(s) == pytest.approx(float((d ** 2).sum() / 16))
    assert numerical_rank(s, rtol=1e-3) == 4 and numerical_rank(s, rtol=1e-9) == 5


def test_layer_ranks_of_a_model():
    w = torch.diag(torch.tensor([3.0, 1.0, 0.0]))
    first, second = nn.Linear(3, 3), nn.Linear(3, 2)
    with torch.no_grad():
        first.weight.copy_(w)
        second.weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]))
    model = Classifier(nn.Sequential(first, nn.ReLU(), second), torch.zeros(3), torch.ones(3), 1)
    ranks = layer_ranks(model)
    assert ranks["net.0"]["numerical_rank"] == 2 and ranks["net.0"]["stable_rank"] == pytest.approx(10 / 9)
    assert ranks["net.2"]["numerical_rank"] == 1 and ranks["net.2"]["size"] == 2
    assert ranks["net.0"]["effective_rank"] == pytest.approx(4 / math.sqrt(10))
