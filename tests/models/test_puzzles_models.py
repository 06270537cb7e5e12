"""Paper 001's extra architectures: the CIFAR ResNet-56 family (He et al. 2016) and the 5-layer ConvNets, their
parameter counts against the published ones and against closed forms, and the zero-padded identity shortcut."""
import numpy as np
import pytest
import torch
from torch import nn

from badminima.errors import BadInput
from badminima.models import build_model, list_models, num_parameters

# He et al. 2016, Table 6 (CIFAR-10): parameters of ResNet-20/32/44/56/110, in millions as printed.
HE_TABLE6 = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


def cifar_resnet_parameters(depth: int, width: int = 16, channels: int = 3, classes: int = 10) -> int:
    """Closed form: a 3x3 stem, 3 stages of n = (depth - 2) / 6 blocks of two 3x3 convolutions, each conv with
    batch norm (2 parameters per channel), parameter-free shortcuts, a linear layer with bias."""
    n = (depth - 2) // 6

    def conv_bn(cin, cout):
        return 9 * cin * cout + 2 * cout

    total, cin = conv_bn(channels, width), width
    for stage in range(3):
        cout = width * 2 ** stage
        total += conv_bn(cin, cout) + conv_bn(cout, cout) + (n - 1) * 2 * conv_bn(cout, cout)
        cin = cout
    return total + cin * classes + classes


@pytest.mark.parametrize("depth", sorted(HE_TABLE6))
def test_cifar_resnet_parameters_match_he_et_al(depth):
    model = build_model("resnet56", (3, 32, 32), 10, torch.zeros(3), torch.ones(3), depth=depth)
    count = num_parameters(model)
    assert count == cifar_resnet_parameters(depth)
    assert round(count / 1e6, 1 if depth == 110 else 2) == HE_TABLE6[depth]  # as printed: 0.85M for ResNet-56
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) + 1 == depth  # 6n + 1 convolutions + 1 linear


def test_resnet56_is_the_default_and_counts_0_85m():
    model = build_model("resnet56", (3, 32, 32), 10, torch.zeros(3), torch.ones(3))
    assert num_parameters(model) == 853_018 and "resnet56" in list_models("resnet*")
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    signal = build_model("resnet56", (1, 40), 10, torch.zeros(1), torch.ones(1))
    assert signal(torch.rand(2, 1, 40)).shape == (2, 10)
    with pytest.raises(BadInput, match="6n"):
        build_model("resnet56", (3, 32, 32), 10, torch.zeros(3), torch.ones(3), depth=51)


def test_downsampling_shortcut_is_a_zero_padded_subsampled_identity():
    """With its convolutions zeroed, a stride-2 block outputs relu(shortcut(x)): x[:, :, ::2, ::2] with zero
    channels appended (He et al.'s option A), computed here with numpy."""
    torch.manual_seed(0)
    net = build_model("resnet56", (3, 8, 8), 10, torch.zeros(3), torch.ones(3), depth=8).net.eval()
    block = net.layers[1]  # the first block of stage 2: 16 -> 32 channels, stride 2
    for conv in (block.conv1, block.conv2):
        nn.init.zeros_(conv.weight)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        out = block(x).numpy()
    expected = np.zeros((2, 32, 4, 4), dtype=np.float32)
    expected[:, :16] = np.maximum(x.numpy()[:, :, ::2, ::2], 0)
    assert np.array_equal(out, expected)
    assert sum(p.numel() for p in block.shortcut.parameters()) == 0


def test_five_layer_convnets_of_paper_001():
    fig1 = build_model("cnn5", (3, 32, 32), 10, torch.zeros(3), torch.ones(3))
    convs = [m for m in fig1.net if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(16, (3, 3), (2, 2))] * 4
    assert convs[0].bias is not None and all(c.bias is None for c in convs[1:]) and fig1.net[-1].bias is None
    # 32 -> 16 -> 8 -> 4 -> 2: 3*16*9 + 16 + 3 * 16*16*9 + 16*2*2*10
    assert num_parameters(fig1) == 3 * 16 * 9 + 16 + 3 * 16 * 16 * 9 + 16 * 4 * 10 == 8000  # "approximately 10000"
    bn = build_model("cnn5bn", (3, 32, 32), 10, torch.zeros(3), torch.ones(3))
    assert [c.out_channels for c in bn.net if isinstance(c, nn.Conv2d)] == [32, 64, 64, 128]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.net) == 4
    conv_weights = 9 * (3 * 32 + 32 * 64 + 64 * 64 + 64 * 128)
    assert num_parameters(bn) == conv_weights + 2 * (32 + 64 + 64 + 128) + 128 * 2 * 2 * 10 + 10 == 135_594
    for name, width in (("cnn5", 8), ("cnn5bn", 4)):  # 1-D signals: 40 -> 20 -> 10 -> 5 -> 3
        signal = build_model(name, (1, 40), 10, torch.zeros(1), torch.ones(1), width=width)
        assert isinstance(signal.net[0], nn.Conv1d) and signal.net[-1].in_features == (width if name == "cnn5" else 4 * width) * 3
        assert signal(torch.rand(5, 1, 40)).shape == (5, 10)
