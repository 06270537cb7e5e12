"""Image-folder datasets: CINIC-10 and Restricted ImageNet, resized to 32x32 RGB in [0, 1]."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import BadInput
from . import Dataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
CINIC10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# Restricted ImageNet (Tsipras et al. 2018): super-classes as ranges of ImageNet class indices
# (indices into the sorted list of the 1000 synset ids), both ends inclusive.
RESTRICTED_IMAGENET_RANGES = {
    "dog": (151, 268), "cat": (281, 285), "frog": (30, 32), "turtle": (33, 37), "bird": (80, 100),
    "primate": (365, 382), "fish": (389, 397), "crab": (118, 121), "insect": (300, 319),
}


def read_image(path: Path, size: int = 32) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise BadInput(f"cannot read image {path}: {exc}") from None


def read_folders(folders: list[tuple[Path, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of every (folder, label) pair, files in sorted order."""
    images, labels = [], []
    for folder, label in folders:
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            images.append(read_image(path))
            labels.append(label)
    if not images:
        raise BadInput(f"no images found under {folders[0][0].parent}")
    x = torch.from_numpy(np.stack(images))  # uint8 pixels (data.as_inputs gives the inputs k/255)
    return x, torch.tensor(labels, dtype=torch.int64)


def _split_dir(root: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise BadInput(f"{root} has no {' or '.join(n + '/' for n in names)} folder")


def cinic10(root: Path) -> Dataset:
    splits = []
    for names in (("train",), ("test",)):
        split = _split_dir(root, names)
        missing = [c for c in CINIC10_CLASSES if not (split / c).is_dir()]
        if missing:
            raise BadInput(f"{split} lacks the class folders {', '.join(missing)}")
        splits.append(read_folders([(split / c, i) for i, c in enumerate(CINIC10_CLASSES)]))
    (x_train, y_train), (x_test, y_test) = splits
    return Dataset("cinic10", x_train, y_train, x_test, y_test, 10, "image", crop_padding=4, flip=True)


def restricted_imagenet_folders(split: Path) -> list[tuple[Path, int]]:
    """(folder, super-class) pairs: either the 9 super-class folders, or the 1000 ImageNet synset folders."""
    supers = list(RESTRICTED_IMAGENET_RANGES)
    if all((split / s).is_dir() for s in supers):
        return [(split / s, i) for i, s in enumerate(supers)]
    synsets = sorted(p.name for p in split.iterdir() if p.is_dir())
    if len(synsets) != 1000:
        raise BadInput(f"{split} must hold the 9 super-class folders ({', '.join(supers)}) "
                       f"or the 1000 ImageNet synset folders, found {len(synsets)} folders")
    return [(split / synsets[idx], label) for label, (lo, hi) in enumerate(RESTRICTED_IMAGENET_RANGES.values())
            for idx in range(lo, hi + 1)]


def restricted_imagenet(root: Path) -> Dataset:
    (x_train, y_train), (x_test, y_test) = (
        read_folders(restricted_imagenet_folders(_split_dir(root, names))) for names in (("train",), ("val", "test")))
    return Dataset("restricted-imagenet", x_train, y_train, x_test, y_test, 9, "image", crop_padding=4, flip=True)
