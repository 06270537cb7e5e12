"""Label and input corruptions: Algorithm 1 of paper 000 (replicas with zeroed pixels, random labels)."""
from __future__ import annotations

import torch

CHUNK = 8192


def zero_out(x: torch.Tensor, zeroed_percent: float, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Zero exactly round(N% of the positions) in every example, chosen uniformly without replacement.

    mode "pixels": a position is a pixel (all its channels are zeroed together), as Algorithm 1 says;
    mode "values": a position is one entry of the tensor, as the authors' code did.
    For points (n, d) both modes zero individual features.
    """
    shape = x.shape[2:] if (mode == "pixels" and x.dim() > 2) else x.shape[1:]
    positions = int(torch.tensor(shape).prod())
    k = int(round(zeroed_percent / 100.0 * positions))
    out = x.clone()
    for start in range(0, x.shape[0], CHUNK):  # chunks bound the memory of the random orderings
        n = min(CHUNK, x.shape[0] - start)
        order = torch.rand(n, positions, generator=generator).argsort(dim=1)
        keep = torch.ones(n, positions, dtype=x.dtype)
        keep.scatter_(1, order[:, :k], 0.0)
        keep = keep.view(n, *shape)
        if mode == "pixels" and x.dim() > 2:
            keep = keep.unsqueeze(1)
        out[start:start + n] *= keep
    return out


def random_labels(y: torch.Tensor, num_classes: int, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """A copy of `y` in which a random `fraction` of the entries is replaced by a uniform random class.

    (A replaced label may by chance equal the true one, as in Zhang et al. 2017.)
    """
    y = y.clone()
    k = int(round(fraction * len(y)))
    chosen = torch.randperm(len(y), generator=generator)[:k]
    y[chosen] = torch.randint(0, num_classes, (k,), generator=generator)
    return y


def adversarial_dataset(x: torch.Tensor, y: torch.Tensor, num_classes: int, replication_factor: int,
                        zeroed_percent: float, mode: str, random_label_fraction: float,
                        generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1's set C: R replicas of every input, each with N% zeroed and a random label."""
    xs = x.repeat(replication_factor, *([1] * (x.dim() - 1)))
    ys = y.repeat(replication_factor)
    return (zero_out(xs, zeroed_percent, mode, generator),
            random_labels(ys, num_classes, random_label_fraction, generator))
