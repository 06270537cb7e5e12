"""Data augmentation on batches of in-memory tensors (no DataLoader).

images: random crop with `crop_padding` zero padding (a random shift), plus a horizontal flip
where the dataset allows it (CIFAR, CINIC-10, Restricted ImageNet: pad 4 + flip, as in paper 000);
signals (mnist1d): the 1-D analogue, a random shift of up to `crop_padding` (4) positions with zero
padding, and no flip (a reversed MNIST-1D signal is a different digit);
points (gaussians2d): paper 000's toy augmentation, "replicating each training point twice and adding
Gaussian noise" - every batch becomes two copies of itself, each with fresh N(0, noise_std^2) noise
(natural units), so the copies change every epoch.

Images may be uint8 pixels (see data.as_inputs): cropping with zero padding and flipping move pixels
without arithmetic, so augmenting pixels then converting equals converting then augmenting, bit for bit.
The random numbers are drawn from the CPU generator (the same numbers on every device) and reach the
device by an asynchronous copy from pinned memory, so a GPU step never waits for the host.
"""
from __future__ import annotations

import torch

from . import Dataset


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor on `device` without a host synchronisation (pinned memory, asynchronous copy)."""
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad the spatial dims by `pad` and cut back to the original size at a random offset."""
    if pad == 0:
        return x
    n, spatial = x.shape[0], x.shape[2:]
    out = torch.nn.functional.pad(x, (pad, pad) * len(spatial))
    for d, size in enumerate(spatial):
        dim = 2 + d
        offset = to_device(torch.randint(0, 2 * pad + 1, (n,), generator=generator), x.device)
        index = offset.view(-1, 1) + torch.arange(size, device=x.device)  # (n, size): the kept positions along dim
        view = [n] + [1] * (out.dim() - 1)
        view[dim] = size
        target = list(out.shape)
        target[dim] = size
        out = out.gather(dim, index.view(view).expand(target))
    return out


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = to_device(torch.rand(x.shape[0], generator=generator) < 0.5, x.device)
    return torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)


def augment(x: torch.Tensor, y: torch.Tensor, data: Dataset,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """An augmented batch (inputs, labels) for `data`'s kind."""
    if data.kind == "points":
        copies = torch.cat([x, x]) + data.noise_std * to_device(torch.randn((2 * len(x),) + x.shape[1:], generator=generator), x.device)
        return copies, torch.cat([y, y])
    x = random_crop(x, data.crop_padding, generator)
    return (random_flip(x, generator) if data.flip else x), y
