"""CIFAR-10 and CIFAR-100 from the official *binary* versions (no unpickling).

CIFAR-10 (cifar-10-batches-bin/): data_batch_1..5.bin and test_batch.bin, records of
1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major 32x32).
CIFAR-100 (cifar-100-binary/): train.bin and test.bin, records of 1 coarse + 1 fine label byte
+ 3072 pixel bytes; we use the fine (100-class) labels. Images are kept as their uint8 pixel bytes
(data.as_inputs gives the inputs k/255).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import BadInput
from . import Dataset

PIXELS = 3 * 32 * 32


def _find(root: Path, subdir: str, names: list[str]) -> Path:
    for base in (root / subdir, root):
        if all((base / n).is_file() for n in names):
            return base
    raise BadInput(f"{root} does not hold the binary files {', '.join(names)} (in {subdir}/ or directly)")


def read_records(path: Path, label_bytes: int, label_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + PIXELS
    if raw.size == 0 or raw.size % record:
        raise BadInput(f"{path}: size {raw.size} bytes is not a whole number of {record}-byte records")
    raw = raw.reshape(-1, record)
    labels = torch.from_numpy(raw[:, label_index].astype(np.int64))
    images = torch.from_numpy(np.ascontiguousarray(raw[:, label_bytes:]).reshape(-1, 3, 32, 32))  # uint8 pixels
    return images, labels


def _load(root: Path, subdir: str, train: list[str], test: list[str], label_bytes: int,
          label_index: int, num_classes: int, name: str) -> Dataset:
    base = _find(root, subdir, train + test)
    parts = [read_records(base / n, label_bytes, label_index) for n in train]
    x_test, y_test = read_records(base / test[0], label_bytes, label_index)
    x_train, y_train = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    for y in (y_train, y_test):
        if int(y.max()) >= num_classes:
            raise BadInput(f"{base}: label {int(y.max())} out of range for {name}")
    return Dataset(name, x_train, y_train, x_test, y_test, num_classes, "image", crop_padding=4, flip=True)


def cifar10(root: Path) -> Dataset:
    return _load(root, "cifar-10-batches-bin", [f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"],
                 1, 0, 10, "cifar10")


def cifar100(root: Path) -> Dataset:
    return _load(root, "cifar-100-binary", ["train.bin"], ["test.bin"], 2, 1, 100, "cifar100")
