"""Loaders of on-disk datasets, on small files written here in the official formats."""
import numpy as np
import pytest
import torch
from PIL import Image

from badminima.data import load_dataset
from badminima.data.folders import CINIC10_CLASSES, RESTRICTED_IMAGENET_RANGES
from badminima.errors import BadInput


def _records(n, label_bytes, rng):
    labels = rng.integers(0, 10, size=(n, label_bytes), dtype=np.uint8)
    pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return labels, pixels


def _write(path, labels, pixels):
    np.concatenate([labels, pixels], axis=1).tofile(path)


def test_cifar10_binary(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    written = []
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels, pixels = _records(3, 1, rng)
        _write(folder / name, labels, pixels)
        written.append((labels, pixels))
    data = load_dataset("cifar10", tmp_path)
    assert data.x_train.shape == (15, 3, 32, 32) and data.x_test.shape == (3, 3, 32, 32)
    labels, pixels = written[1]  # second batch -> training examples 3..5
    assert data.y_train[3:6].tolist() == labels[:, 0].tolist()
    # channel-major 32x32 planes: red of pixel (row 1, col 2) is byte 1*32+2, its blue is byte 2048+34
    assert data.x_train[3, 0, 1, 2].item() == pytest.approx(pixels[0, 34] / 255)
    assert data.x_train[3, 2, 1, 2].item() == pytest.approx(pixels[0, 2048 + 34] / 255)
    assert data.y_test.tolist() == written[5][0][:, 0].tolist()
    assert data.num_classes == 10 and data.flip and data.crop_padding == 4


def test_cifar100_binary_uses_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    labels, pixels = _records(4, 2, rng)
    labels[:, 1] = [99, 0, 42, 7]
    _write(folder / "train.bin", labels, pixels)
    _write(folder / "test.bin", *_records(2, 2, rng))
    data = load_dataset("cifar100", folder)  # the batches folder itself also works
    assert data.y_train.tolist() == [99, 0, 42, 7] and data.num_classes == 100


def test_cifar_malformed(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(b"\x00" * 100)  # not a whole record
    with pytest.raises(BadInput, match="records"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(BadInput, match="binary files"):
        load_dataset("cifar10", tmp_path / "cifar-10-batches-bin" / ".." / "..")


def test_missing_data_dir(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        load_dataset("cifar10", tmp_path / "absent")
    with pytest.raises(BadInput, match="--data-dir"):
        load_dataset("cinic10", None)


def _png(path, color, size=32):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)


def test_cinic10_folders(tmp_path):
    for split in ("train", "valid", "test"):
        for i, cls in enumerate(CINIC10_CLASSES):
            _png(tmp_path / split / cls / f"{split}-{i}.png", (i * 20, 0, 255))
    data = load_dataset("cinic10", tmp_path)
    assert data.x_train.shape == (10, 3, 32, 32) and data.y_train.tolist() == list(range(10))
    assert data.x_train[4, 0, 0, 0].item() == pytest.approx(80 / 255)
    assert data.x_train[4, 2].min().item() == 1.0


def test_restricted_imagenet_superclass_folders_resized(tmp_path):
    for split in ("train", "val"):
        for i, cls in enumerate(RESTRICTED_IMAGENET_RANGES):
            _png(tmp_path / split / cls / "a.JPEG", (10 * i, 0, 0), size=64)
    data = load_dataset("restricted-imagenet", tmp_path)
    assert data.x_train.shape == (9, 3, 32, 32) and data.num_classes == 9
    assert data.y_test.tolist() == list(range(9))


# WordNet ids with what ImageNet calls them, and the super-class each must land in (Tsipras et al.'s ranges, by
# meaning): the first and last synset of every range, and neighbours just outside the ranges.
INSIDE = {"n02085620": "dog",  # Chihuahua (class 151)
          "n02113978": "dog",  # Mexican hairless (268)
          "n02123045": "cat", "n02124075": "cat",  # tabby, Egyptian cat
          "n01641577": "frog", "n01644900": "frog",  # bullfrog, tailed frog
          "n01664065": "turtle", "n01669191": "turtle",  # loggerhead, box turtle
          "n01795545": "bird", "n01860187": "bird",  # black grouse, black swan
          "n02480495": "primate", "n02494079": "primate",  # orangutan, squirrel monkey
          "n02514041": "fish", "n02655020": "fish",  # barracouta, puffer
          "n01978287": "crab", "n01981276": "crab",  # Dungeness crab, king crab
          "n02165105": "insect", "n02268443": "insect"}  # tiger beetle, dragonfly
OUTSIDE = ["n01440764", "n02114367", "n02125311", "n01632777", "n01675722", "n01784675", "n02497673", "n02666196",
           "n01983481", "n02268853"]  # tench, timber wolf, cougar, axolotl, banded gecko, centipede, Madagascar cat
# (a lemur), abacus, American lobster, damselfly


def _synset_tree(root, others: bool, drop: str | None = None):
    """train/ and val/ with a folder per restricted synset (empty but for INSIDE's), minus `drop`; with `others`,
    also folders of synsets outside the ranges (one image each) and stray folders, as a real ImageNet copy may
    hold. Every image has a colour of its own, so its label can be traced back to its folder."""
    from badminima.data.folders import RESTRICTED_IMAGENET_SYNSETS

    folders = [w for ids in RESTRICTED_IMAGENET_SYNSETS.values() for w in ids] + (OUTSIDE + ["n99999999", "README"] if others else [])
    colours = {}
    for split in ("train", "val"):
        for i, wnid in enumerate(folders):
            if wnid == drop:
                continue
            (root / split / wnid).mkdir(parents=True, exist_ok=True)
            if wnid in INSIDE or wnid in OUTSIDE:
                colours[wnid] = (i % 256, i // 256, 7)
                _png(root / split / wnid / "a.png", colours[wnid], size=40)
    return colours


@pytest.mark.parametrize("others", [False, True], ids=["only-the-restricted-synsets", "with-others-and-strays"])
def test_restricted_imagenet_maps_synsets_by_wordnet_id(tmp_path, others):
    colours = _synset_tree(tmp_path, others)
    data = load_dataset("restricted-imagenet", tmp_path)
    names = list(RESTRICTED_IMAGENET_RANGES)
    by_colour = {tuple(round(255 * float(v)) for v in x[:, 0, 0]): names[int(y)] for x, y in zip(data.x_train, data.y_train)}
    assert by_colour == {colours[w]: cls for w, cls in INSIDE.items()}  # every named synset, none of the others
    assert len(data.y_test) == len(INSIDE)


def test_restricted_imagenet_folders_per_class_are_the_ranges(tmp_path):
    from badminima.data.folders import restricted_imagenet_folders

    _synset_tree(tmp_path, others=True)
    labels = [label for _, label in restricted_imagenet_folders(tmp_path / "train")]
    assert [labels.count(i) for i in range(9)] == [hi - lo + 1 for lo, hi in RESTRICTED_IMAGENET_RANGES.values()]
    assert sum(hi - lo + 1 for lo, hi in RESTRICTED_IMAGENET_RANGES.values()) == 203


def test_restricted_imagenet_with_a_missing_synset_folder_fails_with_one_line(tmp_path, capsys):
    from badminima.cli import main

    _synset_tree(tmp_path / "data", others=True, drop="n02113978")
    assert main(["run", "bad-minima", "--dataset", "restricted-imagenet", "--data-dir", str(tmp_path / "data"),
                 "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("badminima: error: ") and "n02113978" in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_folder_dataset_with_neither_layout(tmp_path):
    (tmp_path / "train" / "n0001").mkdir(parents=True)
    (tmp_path / "val").mkdir()
    with pytest.raises(BadInput, match="super-class folders .* or the ImageNet synset folders"):
        load_dataset("restricted-imagenet", tmp_path)
    (tmp_path / "train" / "dog").mkdir()
    with pytest.raises(BadInput, match="lacks the super-class folders cat, frog"):
        load_dataset("restricted-imagenet", tmp_path)


def test_builtin_datasets():
    m = load_dataset("mnist1d")
    assert m.x_train.shape == (4000, 1, 40) and m.x_test.shape == (1000, 1, 40)
    assert set(m.y_train.unique().tolist()) == set(range(10))
    d = load_dataset("digits")
    assert len(d.y_train) + len(d.y_test) == 1797 and 0 <= d.x_train.min() and d.x_train.max() <= 1
    g = load_dataset("gaussians2d")
    assert g.x_train.shape == (100, 2) and torch.bincount(g.y_train).tolist() == [50, 50]
    sub = load_dataset("mnist1d", train_size=300, seed=1)
    assert len(sub.y_train) == 300


def test_standardization_uses_training_split_only():
    d = load_dataset("digits")
    mean, std = d.standardization()
    assert mean.item() == pytest.approx(d.x_train.mean().item(), rel=1e-5)
    assert std.item() == pytest.approx(d.x_train.std().item(), rel=1e-5)
