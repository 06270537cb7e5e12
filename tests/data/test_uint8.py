"""uint8 storage of image files: the batches the training loop builds from uint8 pixels equal, bit for bit, the
batches of the float path (numpy's float32(k) / 255, as the loaders computed before), and so do augmentation,
Algorithm 1's replicas, evaluation and a whole epoch of training; the standardization matches numpy in float64."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from badminima.data import Dataset, as_inputs, load_dataset
from badminima.data.augment import augment
from badminima.data.corruptions import adversarial_dataset
from badminima.models import build_model
from badminima.runs import Workspace, pretraining_data
from badminima.spec import DataSpec, InitSpec, RunSpec
from badminima.store import Store
from badminima.train import evaluate, train_phase
from badminima.spec import PhaseSpec


def _cifar(tmp_path, n=6):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    pixels = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, size=(n, 1), dtype=np.uint8)
        pixels[name] = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        np.concatenate([labels, pixels[name]], axis=1).tofile(folder / name)
    return np.concatenate([pixels[f"data_batch_{i}.bin"] for i in range(1, 6)]).reshape(-1, 3, 32, 32)


def _images(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    return x, torch.randint(0, 10, (n,), generator=g)


def test_every_pixel_value_converts_as_numpy_does():
    k = torch.arange(256, dtype=torch.uint8)
    expected = torch.from_numpy(np.arange(256, dtype=np.uint8).astype(np.float32) / 255.0)
    assert torch.equal(as_inputs(k), expected)
    x = torch.rand(3)
    assert as_inputs(x) is x  # float inputs pass through


def test_loader_keeps_the_file_bytes_and_the_float_view_is_the_old_one(tmp_path):
    pixels = _cifar(tmp_path)
    compact = load_dataset("cifar10", tmp_path, compact=True)
    assert compact.x_train.dtype == torch.uint8 and compact.compact
    assert np.array_equal(compact.x_train.numpy(), pixels)
    floats = load_dataset("cifar10", tmp_path)
    assert floats.x_train.dtype == torch.float32
    assert torch.equal(floats.x_train, torch.from_numpy(pixels.astype(np.float32) / 255.0))
    assert compact.x_train.element_size() * 4 == floats.x_train.element_size()


def test_standardization_of_pixels_matches_float64(tmp_path):
    pixels = _cifar(tmp_path)
    mean, std = load_dataset("cifar10", tmp_path, compact=True).standardization()
    x64 = pixels.astype(np.float64) / 255.0
    assert np.allclose(mean.numpy(), x64.mean(axis=(0, 2, 3)), rtol=1e-7, atol=0)  # float32 rounding of exact values
    assert np.allclose(std.numpy(), x64.std(axis=(0, 2, 3), ddof=1), rtol=1e-7, atol=0)
    fmean, fstd = load_dataset("cifar10", tmp_path).standardization()  # float32 reductions: within 1e-5
    assert torch.allclose(fmean, mean, rtol=1e-5) and torch.allclose(fstd, std, rtol=1e-5)


def test_augmenting_pixels_equals_augmenting_floats():
    x, y = _images()
    data = Dataset("d", x, y, x, y, 10, "image", crop_padding=4, flip=True)
    a, ya = augment(x, y, data, torch.Generator().manual_seed(5))
    b, yb = augment(as_inputs(x), y, replace(data, x_train=as_inputs(x)), torch.Generator().manual_seed(5))
    assert a.dtype == torch.uint8 and torch.equal(as_inputs(a), b) and torch.equal(ya, yb)


def test_algorithm1_replicas_of_pixels_equal_those_of_floats():
    x, y = _images()
    a = adversarial_dataset(x, y, 10, 5, 10.0, "pixels", 1.0, torch.Generator().manual_seed(3))
    b = adversarial_dataset(as_inputs(x), y, 10, 5, 10.0, "pixels", 1.0, torch.Generator().manual_seed(3))
    assert a[0].dtype == torch.uint8 and a[0].shape == (200, 3, 8, 8)
    assert torch.equal(as_inputs(a[0]), b[0]) and torch.equal(a[1], b[1])
    zeroed = (a[0] == 0).all(dim=1).flatten(1).sum(1)  # whole pixels zeroed: round(10% of 64) = 6 at least
    assert bool((zeroed >= 6).all())


def test_training_sees_the_same_batches_and_ends_with_the_same_weights():
    x, y = _images(48)
    data = Dataset("d", x, y, x, y, 10, "image", crop_padding=4, flip=True)
    phase = PhaseSpec(epochs=2, batch_size=16, lr=0.05, momentum=0.9, augment=True)
    runs = []
    for inputs in (x, as_inputs(x)):
        torch.manual_seed(0)
        model = build_model("cnn2d", (3, 8, 8), 10, torch.full((3,), 0.5), torch.full((3,), 0.25), width=4)
        seen = []
        model.register_forward_pre_hook(lambda m, i: seen.append(i[0].clone()))
        d = replace(data, x_train=inputs)
        outcome = train_phase(model, inputs, y, phase, 7, lambda xb, yb, g: augment(xb, yb, d, g), [])
        runs.append((seen, model.state_dict(), [h["train_loss"] for h in outcome.history], evaluate(model, inputs, y)))
    (seen_a, state_a, loss_a, eval_a), (seen_b, state_b, loss_b, eval_b) = runs
    assert len(seen_a) == len(seen_b) == 7  # 6 steps, then the evaluation batch
    assert all(torch.equal(a, b) for a, b in zip(seen_a, seen_b))
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert loss_a == loss_b and eval_a == eval_b


def test_workspace_stores_pixels_and_hands_out_floats(tmp_path):
    pixels = _cifar(tmp_path)
    spec = RunSpec(DataSpec("cifar10"), init=InitSpec("adversarial", replication_factor=5))
    ws = Workspace(Store(tmp_path / "out"), data_dir=tmp_path, quiet=True)
    stored, floats = ws.stored(spec), ws.dataset(spec)
    assert stored.x_train.dtype == torch.uint8 and floats.x_train.dtype == torch.float32
    assert torch.equal(floats.x_train, torch.from_numpy(pixels.astype(np.float32) / 255.0))
    compact_x, compact_y = pretraining_data(spec, ws, compact=True)
    x, labels = pretraining_data(spec, ws)
    assert compact_x.dtype == torch.uint8 and len(compact_x) == 5 * len(pixels)
    assert torch.equal(as_inputs(compact_x), x) and torch.equal(compact_y, labels)


@pytest.mark.parametrize("name", ["mnist1d", "gaussians2d"])
def test_built_in_float_data_is_left_as_it_is(name):
    data = load_dataset(name, compact=True)
    assert data.x_train.dtype == torch.float32 and not data.compact
