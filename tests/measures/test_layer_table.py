"""The per-layer table against numpy: Frobenius and spectral norms of each weight (a convolution's kernel
reshaped to (out, in*k*k)) and parameter counts."""
import numpy as np
import torch
from torch import nn

from badminima.measures import layer_table


def test_layer_table_against_numpy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 7, bias=False),
                          nn.Tanh(), nn.Linear(7, 3))
    table = layer_table(model, fold=False)
    assert list(table.layer) == ["0", "3", "5"] and list(table.kind) == ["Conv2d", "Linear", "Linear"]
    for row, m in zip(table.itertuples(), (model[0], model[3], model[5])):
        w = m.weight.detach().numpy().astype(np.float64)
        matrix = w.reshape(w.shape[0], -1)
        assert row.shape == w.shape
        assert row.parameters == w.size + (0 if m.bias is None else m.bias.numel())
        assert np.isclose(row.frobenius, np.sqrt((w ** 2).sum()), rtol=1e-12)
        assert np.isclose(row.spectral, np.linalg.svd(matrix, compute_uv=False)[0], rtol=1e-10)
    assert list(table.parameters) == [2 * 5 * 9 + 5, 80 * 7, 7 * 3 + 3]
