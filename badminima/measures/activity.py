"""ReLU activity on a data set (paper 004 section 2: at Lemma 1's local minima "all activations of all
training examples are positive", so the network is affine on the training set; Table 1's minima).

A unit is one entry of the input of an nn.ReLU module for one example (a hidden neuron of an MLP; a channel
at one position of a convolutional net). It is active on x when its pre-activation is > 0. The model is in
eval mode; ReLUs applied as functions (F.relu) cannot be seen, so models without nn.ReLU modules get None.
"""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def activity(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> dict | None:
    """{"always_active": fraction of units active on every row of x, "never_active": fraction active on none,
    "units": their number} over all nn.ReLU modules of `model`; None if it has none."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        return None
    always: dict[int, torch.Tensor] = {}
    ever: dict[int, torch.Tensor] = {}

    def hook(index):
        def record(module, inputs, output):
            positive = (inputs[0] > 0).flatten(1)
            a, e = positive.all(0), positive.any(0)
            always[index] = always[index] & a if index in always else a
            ever[index] = ever[index] | e if index in ever else e
        return record

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(relus)]
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    a, e = torch.cat(list(always.values())), torch.cat(list(ever.values()))
    return {"always_active": float(a.float().mean()), "never_active": float((~e).float().mean()), "units": int(a.numel())}
