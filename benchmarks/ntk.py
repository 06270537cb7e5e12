"""Target 3: the empirical NTK of 25 inputs (N x N x k x k) against one backward pass per kernel
entry, on the MNIST-1D MLP (target: at least 50x).

Timed: `empirical_ntk` (for networks of linear layers it sums per-layer products of input and
output-gradient Gram matrices and never forms the Jacobian), `jacobian_ntk` (torch.func: vmap of
jacrev, then a contraction over the parameters; any architecture), and the naive loop.

The naive loop takes, for each (i, a), the gradient of f_a(x_i) by one backward pass, and then for
every entry (j, b) one more backward pass for the gradient of f_b(x_j) and their dot product:
N*k*(1 + N*k) backward passes.

    python benchmarks/ntk.py [--inputs 25]
"""
from __future__ import annotations

import argparse
import time

import torch

from badminima.data import load_dataset
from badminima.measures.ntk import empirical_ntk, jacobian_ntk
from badminima.models import build_model


def naive_ntk(model, x):
    params = [p for p in model.parameters() if p.requires_grad]
    n, k = len(x), model(x[:1]).shape[1]

    def grad(i, a):
        return torch.cat([g.flatten() for g in torch.autograd.grad(model(x[i:i + 1])[0, a], params)])

    kernel = torch.zeros(n, n, k, k)
    for i in range(n):
        for a in range(k):
            gi = grad(i, a)
            for j in range(n):
                for b in range(k):
                    kernel[i, j, a, b] = gi @ grad(j, b)
    return kernel


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("mnist1d")
    mean, std = data.standardization()
    torch.manual_seed(0)
    model = build_model("mlp", data.input_shape, 10, mean, std).eval()
    x = data.x_train[:args.inputs]
    timings, kernels = {}, {}
    for name, fn in (("ours", empirical_ntk), ("torch.func", jacobian_ntk), ("naive", naive_ntk)):
        started = time.perf_counter()
        kernels[name] = fn(model, x)
        timings[name] = time.perf_counter() - started
        print(f"{name:10s}: {timings[name]:8.3f} s", flush=True)
    for name in ("ours", "torch.func"):
        error = (kernels[name].float() - kernels["naive"]).abs().max() / kernels["naive"].abs().max()
        print(f"{name:10s} vs one backward per entry: {timings['naive'] / timings[name]:6.0f}x faster "
              f"(target >= 50x), max relative difference {error:.1e}")


if __name__ == "__main__":
    main()
