"""Target 3: the empirical NTK of 25 inputs (N x N x k x k) against one backward pass per kernel entry
(target: at least 50x faster), on two models:

- a CNN with batch norm, convolutions and biases: the WideResNet-16-1 of `ntk-width` on 8x8 digits
  (175k parameters), where only the general path applies (`jacobian_ntk`: one backward per (input, logit),
  then one matrix product);
- the MNIST-1D MLP 40-512-512-10, where `empirical_ntk` takes the linear-layer Gram path (it never forms
  the Jacobian) after checking that it may; the general path is timed there too.

The baseline is the loop of the authors' kernel code: for each (input i, logit a) the gradient of
f_a(x_i) by one backward pass, and for each entry (j, b) one more backward pass for f_b(x_j) and the dot
product - N*k*(1 + N*k) backward passes. It is timed on --rows of the N*k rows of the kernel (the entries
(i, a, :, :) for a few (i, a)) and scaled to all N*k rows (each row costs the same work); those entries are
also compared with the fast kernels. --rows 0 runs the whole loop. Each path is called once on one input before
it is timed: the first torch.func call of a process spends 1-2 s setting up, once.

    python benchmarks/ntk.py [--inputs 25] [--rows 2]
"""
from __future__ import annotations

import argparse
import time

import torch

from badminima.data import load_dataset
from badminima.measures.ntk import _linear_layers_ntk, empirical_ntk, jacobian_ntk
from badminima.models import build_model, num_parameters


def naive_rows(model, x, rows):
    """Kernel rows Phi[i, :, a, :] for (i, a) in rows, one backward pass per entry (eval mode)."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    n, k = len(x), model(x[:1]).shape[1]

    def grad(i, a):
        return torch.cat([g.flatten() for g in torch.autograd.grad(model(x[i:i + 1])[0, a], params)])

    out = torch.zeros(len(rows), n, k)
    for r, (i, a) in enumerate(rows):
        gi = grad(i, a)
        for j in range(n):
            for b in range(k):
                out[r, j, b] = gi @ grad(j, b)
    return out


def timed(fn, *args):
    started = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - started


def compare(label, model, x, rows, paths):
    n, k = len(x), model(x[:1]).shape[1]
    rows = [(i, a) for i in range(n) for a in range(k)] if rows == 0 else [(r * 7 % n, r * 3 % k) for r in range(rows)]
    naive, seconds = timed(naive_rows, model, x, rows)
    naive_total = seconds * n * k / len(rows)
    print(f"{label}: {num_parameters(model)} parameters, {n} inputs x {k} logits")
    print(f"  one backward per entry: {naive_total:9.2f} s ({n * k * (1 + n * k)} backward passes; "
          f"timed on {len(rows)} of {n * k} kernel rows)")
    for name, fn in paths:
        _, warmup = timed(fn, model, x[:1])  # the first torch.func call of a process sets it up (~1-2 s)
        kernel, took = timed(fn, model, x)
        got = torch.stack([kernel[i, :, a, :] for i, a in rows]).float()
        error = float((got - naive).abs().max() / naive.abs().max())
        print(f"  {name:28s}: {took:9.3f} s, {naive_total / took:7.0f}x faster (target >= 50x), "
              f"max relative difference on the timed rows {error:.1e} (after a {warmup:.2f} s warm-up call on 1 input)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=25)
    parser.add_argument("--rows", type=int, default=2, help="kernel rows the baseline is timed on (0: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    digits = load_dataset("digits")
    cnn = build_model("wrn", digits.input_shape, 10, *digits.standardization(), width=1).eval()
    compare("WideResNet-16-1 (convolutions, batch norm in eval mode, biases), 8x8 digits", cnn,
            digits.x_train[:args.inputs], args.rows, [("general path (jacobian_ntk)", jacobian_ntk)])
    mnist1d = load_dataset("mnist1d")
    mlp = build_model("mlp", mnist1d.input_shape, 10, *mnist1d.standardization()).eval()
    x = mnist1d.x_train[:args.inputs]
    assert _linear_layers_ntk(mlp, x) is not None  # the MLP takes the Gram path
    compare("MLP 40-512-512-10, MNIST-1D", mlp, x, args.rows,
            [("empirical_ntk (Gram path)", empirical_ntk), ("general path (jacobian_ntk)", jacobian_ntk)])


if __name__ == "__main__":
    main()
