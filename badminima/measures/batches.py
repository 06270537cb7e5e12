"""The data a measure reads, in chunks: one way to pass a dataset to every measure that reads one.

A measure's data are either two tensors `x, y`, cut into chunks of `batch_size`, or, with `y=None`, any
re-iterable of `(inputs, targets)` batches such as a torch DataLoader, whose batches are the chunks. A
loader is read once per pass over the data (a Hessian-vector product is one pass), so it must give the
same examples every pass: no random augmentation (a shuffling loader changes only the summation order).
Measures that average over examples count them as they read, so `drop_last` or a sampler are honoured.
"""
from __future__ import annotations

from typing import Iterator

import torch

from ..errors import BadInput


def check(x, y) -> None:
    """One `badminima: error:` line (BadInput) for data a measure cannot read."""
    if y is None and (isinstance(x, torch.Tensor) or not hasattr(x, "__iter__") or hasattr(x, "__next__")):
        raise BadInput("measures take (x, y) tensors, or with y=None a re-iterable of (x, y) batches such as a "
                       f"DataLoader (not {type(x).__name__}; a one-shot iterator cannot be read twice)")
    if y is not None and len(x) != len(y):
        raise BadInput(f"inputs and targets differ in number: {len(x)} and {len(y)}")


def batches(x, y, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(x_b, y_b) chunks of tensors x, y; or, when y is None, the batches of the iterable x (a DataLoader)."""
    check(x, y)
    if y is None:
        yield from x
        return
    for i in range(0, len(y), batch_size):
        yield x[i:i + batch_size], y[i:i + batch_size]
