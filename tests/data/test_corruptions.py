import pytest
import torch
from scipy.stats import chisquare

from badminima.data.corruptions import adversarial_dataset, random_labels, zero_out


def _nonzero_images(n, c=3, h=8, w=8):
    return torch.rand(n, c, h, w) + 0.5  # no entry is zero before zeroing


@pytest.mark.parametrize("percent", [0.0, 10.0, 37.5, 100.0])
def test_exact_fraction_of_pixels_zeroed(percent):
    x = _nonzero_images(50)
    out = zero_out(x, percent, "pixels", torch.Generator().manual_seed(0))
    zero_pixels = (out == 0).all(dim=1)  # a pixel is zeroed in all channels together
    partially = ((out == 0).any(dim=1) & ~zero_pixels).sum()
    assert partially == 0
    expected = round(percent / 100 * 64)
    assert (zero_pixels.flatten(1).sum(1) == expected).all()
    kept = ~zero_pixels.unsqueeze(1).expand_as(x)
    assert torch.equal(out[kept], x[kept])


def test_exact_fraction_of_values_zeroed_and_positions_vary():
    x = _nonzero_images(200)
    out = zero_out(x, 10.0, "values", torch.Generator().manual_seed(1))
    per_example = (out == 0).flatten(1).sum(1)
    assert (per_example == round(0.1 * 3 * 64)).all()
    # the zeroed positions are spread over every entry (uniform choice), not a fixed subset
    hits = (out == 0).flatten(1).float().mean(0)
    assert (hits > 0).all()


def test_random_labels_are_uniform():
    y = torch.zeros(20000, dtype=torch.long)
    out = random_labels(y, 10, 1.0, torch.Generator().manual_seed(2))
    counts = torch.bincount(out, minlength=10).numpy()
    assert chisquare(counts).pvalue > 1e-3  # uniform over the 10 classes
    assert (counts > 0).all()


def test_partial_random_labels_change_only_the_chosen_fraction():
    y = torch.arange(10).repeat(1000)
    out = random_labels(y, 10, 0.3, torch.Generator().manual_seed(3))
    changed = (out != y).float().mean().item()
    assert abs(changed - 0.3 * 0.9) < 0.02  # a redrawn label keeps its value with probability 1/10


def test_replica_count_and_independence():
    x, y = _nonzero_images(30, c=1), torch.randint(0, 5, (30,))
    R = 4
    xr, yr = adversarial_dataset(x, y, 5, R, 25.0, "pixels", 1.0, torch.Generator().manual_seed(4))
    assert xr.shape == (R * 30, 1, 8, 8) and yr.shape == (R * 30,)
    replicas = xr.view(R, 30, 1, 8, 8)
    for r in range(R):  # every replica is the training set with its own zeroing
        nonzero = replicas[r] != 0
        assert torch.equal(replicas[r][nonzero], x[nonzero])
    assert not torch.equal(replicas[0] == 0, replicas[1] == 0)
    assert not torch.equal(yr[:30], yr[30:60])
