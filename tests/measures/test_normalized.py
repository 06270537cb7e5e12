"""The layer-wise normalized network: same predictions, logits divided by the product of the layer norms
(computed here independently), batch norm absorbed first."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from badminima.errors import BadInput
from badminima.measures import (normalization_factors, normalized_cross_entropy, normalized_network,
                                output_normalized_cross_entropy)
from badminima.models import Classifier, build_model


def _mlp():
    torch.manual_seed(0)
    return build_model("mlp", (1, 6), 4, torch.tensor([0.3]), torch.tensor([2.0]), width=7, depth=2)


@pytest.mark.parametrize("norm", ["fro", "l1"])
def test_normalized_mlp_logits_are_the_original_over_the_product_of_norms(norm):
    model = _mlp()
    linears = [m for m in model.net if isinstance(m, nn.Linear)]
    first = torch.cat([linears[0].weight.flatten(), linears[0].bias]).detach().double()
    rest = [m.weight.detach().double() for m in linears[1:]]
    if norm == "fro":
        rhos = [float(first.norm())] + [float(w.norm()) for w in rest]
    else:
        rhos = [float(first.abs().sum())] + [float(w.abs().sum()) for w in rest]
    assert normalization_factors(model, norm) == pytest.approx(rhos, rel=1e-12)
    x = torch.randn(50, 1, 6)
    normalized = normalized_network(model, norm)
    assert torch.allclose(normalized(x).double() * math.prod(rhos), model(x).double(), rtol=1e-4, atol=1e-5)
    assert torch.equal(normalized(x).argmax(1), model(x).argmax(1))
    assert model.net[1].weight is not normalized.net[1].weight  # a copy


def test_normalized_conv_net_keeps_predictions():
    torch.manual_seed(1)
    model = build_model("cnn1d", (1, 40), 10, torch.zeros(1), torch.ones(1), width=4, depth=2)
    x = torch.randn(64, 1, 40)
    assert torch.equal(normalized_network(model)(x).argmax(1), model(x).argmax(1))


def test_batchnorm_is_absorbed_before_normalizing():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(3 * 4 * 4, 5))
    bn = net[1]
    bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.normal_(), bn.bias.data.normal_()
    model = Classifier(net, torch.zeros(1), torch.ones(1), 3).eval()
    x = torch.rand(32, 1, 8, 8)
    normalized = normalized_network(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in normalized.modules())
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    w1 = net[0].weight.detach() * scale[:, None, None, None]
    b1 = (net[0].bias.detach() - bn.running_mean) * scale + bn.bias.detach()
    product = float(torch.cat([w1.flatten(), b1]).norm() * net[5].weight.detach().norm())
    assert torch.allclose(normalized(x) * product, model(x), rtol=1e-4, atol=1e-5)


def test_normalized_cross_entropy_is_that_of_the_scaled_logits():
    model = _mlp()
    x, y = torch.randn(40, 1, 6), torch.randint(0, 4, (40,))
    product = math.prod(normalization_factors(model))
    expected = F.cross_entropy(model(x).double() / product, y).item()
    assert normalized_cross_entropy(model, x, y, batch_size=16) == pytest.approx(expected, rel=1e-5)
    reference = x[3]
    expected = F.cross_entropy(model(x).double() / model(x[3:4]).double().norm(), y).item()
    assert output_normalized_cross_entropy(model, x, y, reference) == pytest.approx(expected, rel=1e-6)


def test_residual_nets_are_refused():
    model = build_model("resnet18", (3, 8, 8), 3, torch.zeros(3), torch.ones(3), width=2)
    with pytest.raises(BadInput, match="sequential"):
        normalized_network(model)
