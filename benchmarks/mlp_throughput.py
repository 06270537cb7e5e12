"""Target 2: training throughput of the MNIST-1D MLP (40-512-512-10, batch 128) with our training
loop, in GFLOP/s, against a 2048x2048 float32 matmul, both on one thread (target: at least 60%).

FLOPs per training step, counted as 2 per multiply-add: forward 2*B*P_w (P_w = 40*512 + 512*512 +
512*10 weights), weight gradients 2*B*P_w, input gradients of the two upper layers
2*B*(512*512 + 512*10); biases, ReLUs and the loss are left out (under 1%).

    python benchmarks/mlp_throughput.py
"""
from __future__ import annotations

import time

import torch

from badminima.data import load_dataset
from badminima.models import build_model
from badminima.spec import PhaseSpec
from badminima.train import train_phase

B = 128


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - started) / 1e9


def mlp_gflops(epochs: int = 10) -> float:
    data = load_dataset("mnist1d")
    mean, std = data.standardization()
    torch.manual_seed(0)
    model = build_model("mlp", data.input_shape, 10, mean, std, width=512, depth=2)
    phase = PhaseSpec(epochs=epochs, batch_size=B, lr=0.01, stop_at_100=False)
    train_phase(model, data.x_train, data.y_train, PhaseSpec(epochs=1, batch_size=B, lr=0.01), 0, None, [])  # warm-up
    started = time.perf_counter()
    train_phase(model, data.x_train, data.y_train, phase, 0, None, [])
    seconds = time.perf_counter() - started
    weights = 40 * 512 + 512 * 512 + 512 * 10
    per_example = 2 * weights + 2 * weights + 2 * (512 * 512 + 512 * 10)
    return per_example * len(data.y_train) * epochs / seconds / 1e9


def main():
    torch.set_num_threads(1)
    peak = matmul_gflops()
    mlp = mlp_gflops()
    print(f"2048x2048 matmul, 1 thread: {peak:6.1f} GFLOP/s")
    print(f"MLP training,     1 thread: {mlp:6.1f} GFLOP/s")
    print(f"MLP training / matmul: {100 * mlp / peak:.0f}% (target >= 60%)")


if __name__ == "__main__":
    main()
