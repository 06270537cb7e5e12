import pytest
import torch

from badminima.errors import BadInput
from badminima.models import build_model, list_models, num_parameters

# Published parameter counts of the CIFAR-10 variants (10 classes, 3x32x32 inputs):
# ResNet18 11.17M and ResNet50 23.52M (the widely used CIFAR ResNets), VGG16 with batch norm and
# one linear layer 14.73M, DenseNet-40 with growth rate 12 1.0M (Huang et al. 2017, Table 2).
PUBLISHED = {"resnet18": 11.17e6, "resnet50": 23.52e6, "vgg16": 14.73e6, "densenet40": 1.0e6}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_match_published(name):
    model = build_model(name, (3, 32, 32), 10, torch.zeros(3), torch.ones(3))
    tolerance = 0.03 if name == "densenet40" else 0.005
    assert num_parameters(model) == pytest.approx(PUBLISHED[name], rel=tolerance)


def test_mlp_size_is_its_closed_form():
    model = build_model("mlp", (1, 40), 10, torch.zeros(1), torch.ones(1), width=512, depth=2)
    assert num_parameters(model) == 40 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10


@pytest.mark.parametrize("name,shape", [("mlp", (2,)), ("cnn1d", (1, 40)), ("cnn2d", (1, 8, 8)),
                                        ("resnet18", (3, 32, 32))])
def test_forward_shapes(name, shape):
    model = build_model(name, shape, 7, torch.zeros(shape[0]), torch.ones(shape[0]), width=8 if name == "resnet18" else None)
    assert model(torch.rand(3, *shape)).shape == (3, 7)


def test_standardization_inside_the_model():
    mean, std = torch.tensor([0.5]), torch.tensor([2.0])
    model = build_model("mlp", (1, 4), 3, mean, std, width=5, depth=1)
    x = torch.rand(2, 1, 4)
    assert torch.allclose(model(x), model.net((x - 0.5) / 2.0))


def test_unknown_model():
    with pytest.raises(BadInput, match="unknown model"):
        build_model("resnet1000", (3, 32, 32), 10, torch.zeros(3), torch.ones(3))
    assert "resnet18" in list_models("resnet*") and "mlp" not in list_models("resnet*")
