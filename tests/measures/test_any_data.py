"""Every measure that reads data takes (x, y) tensors or a DataLoader (measures/batches.py), checked against
one plain forward pass over the whole set."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from badminima.errors import BadInput
from badminima.measures.attacks import fgsm, fgsm_accuracy
from badminima.measures.margins import output_margins
from badminima.measures.normalized import normalized_cross_entropy, normalized_network, output_normalized_cross_entropy


def _setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    x, y = torch.rand(23, 1, 6, dtype=torch.float64), torch.randint(0, 3, (23,))
    return model, x, y, DataLoader(TensorDataset(x, y), batch_size=7)  # uneven: 7, 7, 7, 2


def test_margins_read_a_loader_as_one_forward_pass():
    model, x, y, loader = _setup()
    logits = model(x).detach()
    others = logits.clone()
    others[torch.arange(len(y)), y] = float("-inf")
    expected = logits[torch.arange(len(y)), y] - others.max(1).values
    assert torch.allclose(output_margins(model, loader, None), expected)
    assert torch.allclose(output_margins(model, x, y, batch_size=5), expected)


def test_normalized_losses_read_a_loader_as_one_forward_pass():
    model, x, y, loader = _setup()
    expected = float(F.cross_entropy(normalized_network(model, "fro")(x), y).detach())
    assert normalized_cross_entropy(model, loader, None) == pytest.approx(expected, rel=1e-12)
    assert normalized_cross_entropy(model, x, y, batch_size=4) == pytest.approx(expected, rel=1e-12)
    scale = float(model(x[:1]).norm().detach())
    expected = float(F.cross_entropy(model(x) / scale, y).detach())
    assert output_normalized_cross_entropy(model, loader, None, x[0]) == pytest.approx(expected, rel=1e-12)


def test_attack_accuracy_reads_a_loader_as_whole_set():
    model, x, y, loader = _setup()
    expected = float((model(fgsm(model, x, y, 0.1, None)).argmax(1) == y).double().mean())  # per-example attack
    assert fgsm_accuracy(model, loader, None, 0.1, None) == pytest.approx(expected)
    assert fgsm_accuracy(model, x, y, 0.1, None, batch_size=5) == pytest.approx(expected)


def test_unreadable_data_is_one_bad_input():
    model, x, y, loader = _setup()
    with pytest.raises(BadInput, match="one-shot iterator"):
        output_margins(model, iter(loader), None)
    with pytest.raises(BadInput, match="differ in number"):
        normalized_cross_entropy(model, x, y[:5])
    with pytest.raises(BadInput, match="tensors"):
        fgsm_accuracy(model, x, None, 0.1, None)
