"""Issue 15's benchmark: one epoch of paper 000's ResNet18 / CIFAR-10 protocol (batch 128, SGD with momentum
0.9 and l2 5e-4, random crop with 4-pixel padding and horizontal flip, the test set evaluated after the epoch),
three ways in one run, on a synthetic CIFAR-10 of the real size (50,000 + 10,000 random 32x32 images written
in the official binary format and read by our loader):

  (a) the authors' style: a torch DataLoader over the images with a per-image crop and flip on the CPU
      (their cifar10_dataset.py: torchvision RandomCrop(32, 4), RandomHorizontalFlip, ToTensor, Normalize;
      4 loader workers with pinned memory on a GPU, cudnn.benchmark), loss read every step, fp32;
  (b) our engine in fp32: uint8 images on the device, augmentation on the device, no per-step host sync;
  (c) our engine with the fastest options (default on a GPU: bf16 autocast + channels_last + torch.compile).

It prints images per second (training images / seconds of the epoch with its test evaluation), the ratios to
(a), and the model FLOP utilisation: FLOPs counted by torch.utils.flop_counter on a training step and an
evaluation batch, over the epoch's seconds, against the device's peak (GPUs: the datasheet's dense peak for
the precision; a CPU: the measured rate of a 2048x2048 matmul in that precision). fp32 means IEEE float32
(TF32 off) in all three ways, as on the paper's GPUs.

  python benchmarks/paper_epoch.py              # the full configuration on a GPU; a scaled one on a CPU, said so
  python benchmarks/paper_epoch.py --packing 1,2,4   # also K runs at once on the device: runs/hour for each K
Targets on an H100: (c) at least 5x (a); K packed runs at least 1.5x the runs/hour of one.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from badminima.data import as_inputs, load_dataset
from badminima.data.augment import augment
from badminima.models import build_model
from badminima.spec import ComputeSpec, PhaseSpec
from badminima.train import evaluate, train_phase
from badminima.train.callbacks import evaluate_on
from badminima.train.loop import precision

PHASE = PhaseSpec(epochs=1, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, augment=True)
# dense peaks from NVIDIA's datasheets, TFLOP/s: (IEEE fp32, bf16 tensor cores)
GPU_PEAKS = {"H100 SXM": (67.0, 989.0), "H100 PCIe": (51.0, 756.0), "H100 NVL": (60.0, 835.0), "H100": (67.0, 989.0),
             "H200": (67.0, 989.0), "A100": (19.5, 312.0), "L40S": (91.6, 362.0)}


def write_cifar(folder: Path, train: int, test: int) -> None:
    """Random images and labels in the official binary format (cifar-10-batches-bin/, 5 training files)."""
    rng = np.random.default_rng(0)
    out = folder / "cifar-10-batches-bin"
    out.mkdir(parents=True)
    sizes = [train // 5 + (i < train % 5) for i in range(5)]
    for name, n in [(f"data_batch_{i + 1}.bin", s) for i, s in enumerate(sizes)] + [("test_batch.bin", test)]:
        records = np.concatenate([rng.integers(0, 10, (n, 1), dtype=np.uint8),
                                  rng.integers(0, 256, (n, 3072), dtype=np.uint8)], axis=1)
        records.tofile(out / name)


class AuthorsStyle(torch.utils.data.Dataset):
    """Per-image augmentation on the CPU, as torchvision's transforms do it: pad 4 and crop, flip, to float,
    normalize (the authors' constants)."""

    MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32).reshape(3, 1, 1)
    STD = np.array([0.2023, 0.1994, 0.2010], dtype=np.float32).reshape(3, 1, 1)

    def __init__(self, x: np.ndarray, y: np.ndarray, train: bool):
        self.x, self.y, self.train = x, y, train

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        img = self.x[i]
        if self.train:
            padded = np.pad(img, ((0, 0), (4, 4), (4, 4)))
            dy, dx = np.random.randint(0, 9, size=2)
            img = padded[:, dy:dy + 32, dx:dx + 32]
            if np.random.rand() < 0.5:
                img = img[:, :, ::-1]
        img = (img.astype(np.float32) / 255.0 - self.MEAN) / self.STD
        return torch.from_numpy(np.ascontiguousarray(img)), int(self.y[i])


def model_for(data, width: int, device: str):
    torch.manual_seed(0)
    mean, std = (t.cpu() for t in data.standardization())
    return build_model("resnet18", data.input_shape, data.num_classes, mean, std, width=width).to(device)


def authors_epoch(data, width: int, device: str, n: int, warmup: int) -> float:
    cuda = device == "cuda"
    torch.backends.cudnn.benchmark = cuda
    net = model_for(data, width, device).net  # their net normalizes in the transform, not in the model
    opt = torch.optim.SGD(net.parameters(), lr=PHASE.lr, momentum=PHASE.momentum, weight_decay=PHASE.weight_decay)
    kwargs = {"num_workers": 4, "pin_memory": True} if cuda else {}
    x, y = data.x_train[:n].cpu().numpy(), data.y_train[:n].cpu().numpy()
    train = DataLoader(AuthorsStyle(x, y, True), batch_size=PHASE.batch_size, shuffle=True, **kwargs)
    test = DataLoader(AuthorsStyle(data.x_test.cpu().numpy(), data.y_test.cpu().numpy(), False),
                      batch_size=PHASE.batch_size, **kwargs)

    def steps(limit=None):
        net.train()
        total = 0.0
        for i, (xb, yb) in enumerate(train):
            if limit is not None and i >= limit:
                break
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        net.eval()
        with torch.no_grad():
            correct = sum((net(xb.to(device)).argmax(1).cpu() == yb).sum().item() for xb, yb in test) if limit is None else 0
        return total, correct

    with precision(ComputeSpec("fp32"), device):
        steps(warmup)
        _sync(device)
        started = time.perf_counter()
        steps()
        _sync(device)
    torch.backends.cudnn.benchmark = False
    return time.perf_counter() - started


def engine_epoch(data, width: int, device: str, n: int, warmup: int, compute: ComputeSpec) -> float:
    model = model_for(data, width, device)
    x, y = data.x_train[:n], data.y_train[:n]
    aug = lambda xb, yb, g: augment(xb, yb, data, g)  # noqa: E731
    train_phase(model, x[:warmup * PHASE.batch_size], y[:warmup * PHASE.batch_size], PHASE, 0, aug, [],
                compute=compute)  # warm-up (and compilation)
    evaluate(model, data.x_test[:1024], data.y_test[:1024], compute=compute)
    _sync(device)
    started = time.perf_counter()
    train_phase(model, x, y, PHASE, 1, aug, [evaluate_on(data.x_test, data.y_test, "test")], compute=compute)
    _sync(device)
    return time.perf_counter() - started


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def flops(data, width: int, device: str) -> tuple[float, float]:
    """(FLOPs of a training step per image, FLOPs of an evaluation per image), counted by torch."""
    model = model_for(data, width, device)
    x = as_inputs(data.x_train[:8])
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), data.y_train[:8]).backward()
    train = counter.get_total_flops() / 8
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return train, counter.get_total_flops() / 8


def peak(device: str, bf16: bool) -> tuple[float, str]:
    """The device's peak FLOP/s in the precision, and where the number comes from."""
    if device == "cuda":
        name = torch.cuda.get_device_name()
        for key, (fp32, bf) in GPU_PEAKS.items():
            if key in name:
                return (bf if bf16 else fp32) * 1e12, f"{name} datasheet"
    dtype = torch.bfloat16 if bf16 else torch.float32
    a = torch.randn(2048, 2048, device=device, dtype=dtype)
    a @ a
    _sync(device)
    started = time.perf_counter()
    for _ in range(5):
        a @ a
    _sync(device)
    return 5 * 2 * 2048 ** 3 / (time.perf_counter() - started), f"measured 2048x2048 {dtype} matmul"


def parse_fast(text: str) -> ComputeSpec:
    parts = set(filter(None, text.split(",")))
    unknown = parts - {"bf16", "tf32", "channels_last", "compile"}
    if unknown:
        raise SystemExit(f"paper_epoch.py: unknown option(s) {', '.join(sorted(unknown))}")
    return ComputeSpec("bf16" if "bf16" in parts else "tf32" if "tf32" in parts else "fp32",
                       "channels_last" in parts, "compile" in parts)


def _packed_worker(folder: str, width: int, device: str, n: int, warmup: int, compute: ComputeSpec, k: int,
                   barrier, results) -> None:
    torch.set_num_threads(1 if device == "cpu" else torch.get_num_threads())
    data = _load(folder, device)
    if device == "cuda":  # each worker checks its 1/K share before it starts, and is capped there
        from badminima.train.memory import check_budget, phase_need
        model = model_for(data, width, device)
        need = phase_need(model, as_inputs(data.x_train[:1]), PHASE.batch_size)
        budget = check_budget(need, k, lambda: torch.cuda.mem_get_info(), torch.cuda.memory_reserved())
        torch.cuda.set_per_process_memory_fraction(budget / torch.cuda.mem_get_info()[1])
    engine_epoch(data, width, device, warmup * PHASE.batch_size, warmup, compute)  # warm-up, compile
    barrier.wait()
    results.put(engine_epoch(data, width, device, n, warmup, compute))


def packing(folder: str, width: int, device: str, n: int, warmup: int, compute: ComputeSpec, ks: list[int]) -> dict:
    """Wall seconds for K processes each training one epoch at once on the device (started together)."""
    ctx = mp.get_context("spawn")
    out = {}
    for k in ks:
        barrier, results = ctx.Barrier(k + 1), ctx.Queue()
        procs = [ctx.Process(target=_packed_worker, args=(folder, width, device, n, warmup, compute, k, barrier, results))
                 for _ in range(k)]
        for p in procs:
            p.start()
        barrier.wait()
        started = time.perf_counter()
        for _ in range(k):
            results.get()
        out[k] = time.perf_counter() - started
        for p in procs:
            p.join()
    return out


def _load(folder: str, device: str):
    data = load_dataset("cifar10", folder, compact=True)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        setattr(data, name, getattr(data, name).to(device))
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--fast", help="options of way (c), comma-separated from bf16, tf32, channels_last, compile "
                                       "(default: bf16,channels_last,compile on a GPU; bf16,channels_last on a CPU)")
    parser.add_argument("--packing", help="also run K engines at once, e.g. 1,2,4 (runs/hour for each K)")
    parser.add_argument("--images", type=int, help="training images per epoch (default: 50000 on a GPU, 1024 on a CPU)")
    parser.add_argument("--width", type=int, help="ResNet18 stem channels (default: 64 on a GPU, 16 on a CPU)")
    args = parser.parse_args()
    gpu = args.device == "cuda"
    n = args.images or (50_000 if gpu else 1024)
    width = args.width or (64 if gpu else 16)
    test = 10_000 if gpu else 512
    compute = parse_fast(args.fast if args.fast is not None else ("bf16,channels_last,compile" if gpu else "bf16,channels_last"))
    warmup = 5 if gpu else 1
    scaled = n < 50_000 or width != 64 or test < 10_000
    with tempfile.TemporaryDirectory() as folder:
        write_cifar(Path(folder), max(n, 5), test)
        data = _load(folder, args.device)
        device_name = torch.cuda.get_device_name() if gpu else f"CPU ({torch.get_num_threads()} torch threads)"
        print(f"device: {device_name}; torch {torch.__version__}")
        print(("SCALED configuration (a CPU): " if scaled else "full configuration: ") +
              f"ResNet18 width {width}, {n} training + {test} test images of 3x32x32 (written in CIFAR-10's binary "
              f"format, read by badminima's loader), batch {PHASE.batch_size}, one epoch after {warmup} warm-up step(s)")
        train_flops, eval_flops = flops(data, width, args.device)
        epoch_flops = n * train_flops + test * eval_flops
        ways = [("(a) authors' style, DataLoader + per-image CPU augmentation, fp32", None),
                ("(b) our engine, fp32", ComputeSpec()),
                (f"(c) our engine, precision {compute.precision}, channels_last {compute.channels_last}, "
                 f"compile {compute.compile}", compute)]
        seconds = {}
        for label, c in ways:
            t = authors_epoch(data, width, args.device, n, warmup) if c is None else \
                engine_epoch(data, width, args.device, n, warmup, c)
            seconds[label[:3]] = t
            bf16 = c is not None and c.precision == "bf16"
            top, source = peak(args.device, bf16)
            print(f"{label}: {t:.2f} s, {n / t:,.0f} images/s, {epoch_flops / t / 1e9:,.1f} GFLOP/s = "
                  f"{100 * epoch_flops / t / top:.1f}% MFU of {top / 1e9:,.1f} GFLOP/s ({source})", flush=True)
        print(f"ratios per epoch: (b)/(a) {seconds['(a)'] / seconds['(b)']:.2f}x, (c)/(a) "
              f"{seconds['(a)'] / seconds['(c)']:.2f}x (target on an H100: (c) >= 5x (a))")
        print(f"FLOPs per training image {train_flops / 1e9:.3f} G (forward + backward), per evaluated image "
              f"{eval_flops / 1e9:.3f} G")
        if args.packing:
            ks = [int(k) for k in args.packing.split(",")]
            walls = packing(folder, width, args.device, n, warmup, compute, ks)
            one = walls[ks[0]] / ks[0]
            for k in ks:
                per_hour = k * 3600 / walls[k]  # epochs/hour of the device, all K runs together
                print(f"K = {k}: {walls[k]:.2f} s for {k} epoch(s) at once: {per_hour:,.0f} epochs/hour = "
                      f"{per_hour / 350:.2f} Table 2 runs/hour (350 epochs, pretraining not counted); "
                      f"{one * k / walls[k]:.2f}x K = {ks[0]} (target: >= 1.5x one)")


if __name__ == "__main__":
    sys.exit(main())
