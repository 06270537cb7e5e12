"""Paper 004's architectures: MobileNetV2 (CIFAR variant), ResNet-20 with Fixup and ResNet-18 without skips.

Parameter counts are checked against sums of per-layer formulas written out here (conv: c_in / groups * c_out *
k^2, batch norm: 2 c, linear: i * o + o, Fixup scalars: 1 each), and against the published sizes:
- MobileNetV2, CIFAR variant (the authors' NormBias/models/mobilenetv2.py = kuangliu's pytorch-cifar model):
  about 2.3M for 10 classes; equivalently torchvision's ImageNet MobileNetV2 at 10 classes (2,236,682) plus the
  CIFAR variant's extra 1x1 expansion conv + BN of its t = 1 block (1,088) and its four projection shortcuts
  (59,152).
- ResNet-20: 0.27M (He et al. 2016, Table 6); Fixup removes the batch norms and adds 5 scalars per block + 2.
- ResNet-18 (CIFAR): 11.17M (the widely used CIFAR ResNet-18, 11,173,962); without skips it loses its three
  1x1 projection shortcuts with their batch norms.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from badminima.models import build_model, num_parameters
from badminima.models.fixup_resnet import FixupBlock


def conv(cin, cout, k, groups=1):
    return cin // groups * cout * k * k


def bn(c):
    return 2 * c


def linear(i, o):
    return i * o + o


def mobilenetv2_formula(classes=10):
    stages = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    total, cin = conv(3, 32, 3) + bn(32), 32
    for t, c, n, s in stages:
        for j in range(n):
            stride, hidden = (s if j == 0 else 1), t * cin
            total += conv(cin, hidden, 1) + bn(hidden) + conv(hidden, hidden, 3, hidden) + bn(hidden) + conv(hidden, c, 1) + bn(c)
            if stride == 1 and cin != c:
                total += conv(cin, c, 1) + bn(c)
            cin = c
    return total + conv(320, 1280, 1) + bn(1280) + linear(1280, classes)


def resnet20_fixup_formula(classes=10):
    total = conv(3, 16, 3) + 2 + linear(64, classes)  # stem, the two network-level biases, classifier
    for cin, cout in [(16, 16)] * 3 + [(16, 32)] + [(32, 32)] * 2 + [(32, 64)] + [(64, 64)] * 2:
        total += conv(cin, cout, 3) + conv(cout, cout, 3) + 5
    return total


def resnet18_formula(classes=10, skip=True):
    total, cin = conv(3, 64, 3) + bn(64), 64
    for i, planes in enumerate((64, 128, 256, 512)):
        for j in range(2):
            total += conv(cin, planes, 3) + bn(planes) + conv(planes, planes, 3) + bn(planes)
            if skip and cin != planes:
                total += conv(cin, planes, 1) + bn(planes)
            cin = planes
    return total + linear(512, classes)


def _build(name, shape=(3, 32, 32), classes=10, **kw):
    return build_model(name, shape, classes, torch.zeros(shape[0]), torch.ones(shape[0]), **kw)


@pytest.mark.parametrize("name,formula,published,rel", [
    ("mobilenetv2", mobilenetv2_formula(), 2.3e6, 0.01),
    ("resnet20-fixup", resnet20_fixup_formula(), 0.27e6, 0.01),
    ("resnet18-noskip", resnet18_formula(skip=False), 11.17e6 - 173_824, 0.001),
    ("resnet18", resnet18_formula(), 11.17e6, 0.001)])
def test_parameter_counts_match_layer_formulas_and_published_sizes(name, formula, published, rel):
    n = num_parameters(_build(name))
    assert n == formula
    assert n == pytest.approx(published, rel=rel)


def test_mobilenetv2_count_is_torchvisions_plus_the_cifar_variants_extras():
    torchvision_imagenet_at_10_classes = 3_504_872 - linear(1280, 1000) + linear(1280, 10)  # torchvision's published size
    assert num_parameters(_build("mobilenetv2")) == torchvision_imagenet_at_10_classes + 1_088 + 59_152 == 2_296_922
    assert num_parameters(_build("mobilenetv2", classes=100)) == mobilenetv2_formula(100)


@pytest.mark.parametrize("name,shape", [("mobilenetv2", (1, 8, 8)), ("resnet20-fixup", (1, 8, 8)),
                                        ("resnet18-noskip", (3, 16, 16))])
def test_small_inputs_and_widths(name, shape):
    model = _build(name, shape, 7, width=4)
    assert model(torch.rand(3, *shape)).shape == (3, 7)


def _shortcut_a(x, cout, stride):
    """He et al.'s option A as the Fixup release writes it: a 1x1 average pool of stride s, zero channels appended."""
    y = F.avg_pool2d(x, 1, stride)
    return torch.cat([y, torch.zeros(y.shape[0], cout - y.shape[1], *y.shape[2:])], 1) if cout > y.shape[1] else y


def test_fixup_init_makes_every_residual_branch_zero_and_every_logit_zero():
    torch.manual_seed(0)
    model = _build("resnet20-fixup").eval()
    net = model.net
    blocks = [m for m in net.modules() if isinstance(m, FixupBlock)]
    assert len(blocks) == 9
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), torch.zeros(4, 10))  # the classifier is 0
        h = F.relu(net.conv1(x))
        for block in blocks:  # each block is relu of its shortcut: the network is its shortcut path at init
            out = block(h)
            assert torch.allclose(out, F.relu(_shortcut_a(h, block.conv2.out_channels, block.stride)), atol=1e-6)
            h = out
    for block in blocks:
        assert float(block.conv2.weight.detach().abs().max()) == 0 and block.scale.item() == 1
        assert all(getattr(block, b).item() == 0 for b in ("bias1a", "bias1b", "bias2a", "bias2b"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_fixup_scales_the_branches_first_layer_by_L_to_the_minus_half():
    """conv1 of a block ~ N(0, 2 / (c_out 9)) * L^(-1/(2m-2)), m = 2 layers per branch, L branches."""
    torch.manual_seed(1)
    for depth, branches in ((20, 9), (56, 27)):
        net = _build("resnet20-fixup", depth=depth).net
        weights = torch.cat([b.conv1.weight.detach().flatten() for b in net.modules()
                             if isinstance(b, FixupBlock) and b.conv1.out_channels == 64])
        expected = math.sqrt(2 / (64 * 9)) * branches ** -0.5
        assert float(weights.std()) == pytest.approx(expected, rel=0.02)
        assert abs(float(weights.mean())) < 0.02 * expected
    stem = _build("resnet20-fixup").net.conv1.weight.detach()  # He's init, unscaled (it is not in a branch)
    assert float(stem.std()) == pytest.approx(math.sqrt(2 / (16 * 9)), rel=0.15)


def test_resnet18_noskip_blocks_are_their_residual_branch_alone():
    model = _build("resnet18-noskip", (3, 16, 16), width=4).eval()
    plain = _build("resnet18", (3, 16, 16), width=4).eval()
    assert not any("shortcut" in name for name, _ in model.named_parameters())
    for block in (model.net.layers[0], model.net.layers[2]):  # stride 1, and stride 2 with a channel change
        x = torch.randn(2, block.conv1.in_channels, 8, 8)
        with torch.no_grad():
            branch = F.relu(block.bn2(block.conv2(F.relu(block.bn1(block.conv1(x))))))
            assert torch.equal(block(x), branch)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():  # the plain ResNet's same block adds its input: the two differ
        block = plain.net.layers[0]
        assert not torch.allclose(block(x), F.relu(block.bn2(block.conv2(F.relu(block.bn1(block.conv1(x)))))))


def test_mobilenetv2_residuals_only_at_stride_one():
    model = _build("mobilenetv2", (3, 32, 32)).eval()
    blocks = list(model.net.layers)
    for block in blocks:
        with torch.no_grad():
            block.bn3.weight.zero_()
            block.bn3.bias.zero_()
        x = torch.randn(2, block.conv1.in_channels, 8, 8)
        with torch.no_grad():  # the branch ends in the zeroed batch norm: what is left is the residual, if any
            out = block(x)
            assert torch.allclose(out, block.shortcut(x) if block.stride == 1 else torch.zeros_like(out))
    assert [b.stride for b in blocks].count(2) == 3 and len(blocks) == 17
