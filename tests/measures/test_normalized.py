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


def test_l1_normalization_with_figure_9s_divisor_by_hand():
    """Paper 001 Figure 9: every layer divided by its entrywise L1 norm over 100. A 2-2-2 ReLU net by hand:
    [W1, b1] has L1 norm 1 + 2 + 3 + 0.5 + 0.5 + 1 = 8 and W2 2 + 1 + 1 + 4 = 8, so rho = (0.08, 0.08) and the
    normalized logits are f / 0.0064."""
    from badminima.measures import L1_DIVISOR

    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
        net[0].bias.copy_(torch.tensor([0.5, -1.0]))
        net[2].weight.copy_(torch.tensor([[2.0, -1.0], [1.0, 4.0]]))
    x = torch.tensor([[0.01, 0.002], [0.2, -0.1], [0.5, 0.0]])
    y = torch.tensor([1, 1, 0])
    assert L1_DIVISOR == 100
    assert normalization_factors(net, "l1", L1_DIVISOR) == pytest.approx([0.08, 0.08], rel=1e-12)
    # h = relu(W1 x + b1): (0.506, 0), (0.9, 0), (1, 0.5); f = W2 h: (1.012, 0.506), (1.8, 0.9), (1.5, 3);
    # z = f / 0.0064: (158.125, 79.0625), (281.25, 140.625), (234.375, 468.75); the losses log(sum e^z) - z_y are
    # the gaps 79.0625, 140.625 and 234.375 (to e^-79 and less)
    expected = (79.0625 + 140.625 + 234.375) / 3
    assert normalized_cross_entropy(net, x, y, "l1", divisor=L1_DIVISOR) == pytest.approx(expected, rel=1e-6)  # float32 weights
    # plain L1 (divisor 1): rho = (8, 8), logits f / 64, 10^4 times smaller
    assert normalization_factors(net, "l1") == pytest.approx([8.0, 8.0], rel=1e-12)
    z = [[1.012 / 64, 0.506 / 64], [1.8 / 64, 0.9 / 64], [1.5 / 64, 3.0 / 64]]
    plain = sum(math.log(math.exp(a) + math.exp(b)) - (a, b)[label] for (a, b), label in zip(z, [1, 1, 0])) / 3
    assert normalized_cross_entropy(net, x, y, "l1") == pytest.approx(plain, rel=1e-6)
    with pytest.raises(ValueError, match="positive"):
        normalized_network(net, "l1", divisor=0.0)
