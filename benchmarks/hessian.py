"""Our Hessian measures against PyHessian (Yao, Gholami, Keutzer & Mahoney 2020, `pip install pyhessian`,
the `bench` extra) on the same model, data and precision, side by side in one run.

Model: the MNIST-1D MLP 40-W-W-10 (W = --width, default 512) after a few epochs of SGD; loss: mean
cross-entropy on the first N (--examples, default 1000) training examples, in float32 (PyHessian computes in
the model's dtype), the whole set as one PyHessian batch (its `data=` mode) and one chunk for us.
lambda_max: PyHessian's `eigenvalues()` (power iteration, stopping when the estimate changes by less than
1e-3 relative between iterations) against `lanczos_eigenvalue` (eigsh; stops on the residual
||H u - theta u|| <= tol |theta|); both are also compared with a float64 reference (eigsh at tol 1e-10).
Trace: Hutchinson with the same number of Rademacher probes for both (PyHessian's `trace(tol=0)`, which then
runs all of them), mean +- standard error. Ours uses `keep_graph=True` (the data are one chunk, so the gradient's
graph is built once and reused, as PyHessian's single-batch mode does). PyHessian's default stopping rule
(change below 1e-3) stops early on a slowly converging power iteration, several percent below lambda_max; the
wall-time ratio at equal accuracy is against its run with a tighter change tolerance that does reach 1e-3. Wall times are of single-threaded CPU torch; PyHessian's time
includes its set-up pass (one forward and backward that keeps the graph).

    python benchmarks/hessian.py [--width 512] [--examples 1000] [--probes 50]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from badminima.data import load_dataset
from badminima.measures.curvature import HessianOperator, hutchinson_trace, lanczos_eigenvalue
from badminima.measures.spectrum import lanczos_largest
from badminima.models import build_model
from badminima.spec import PhaseSpec
from badminima.train import train_phase


def clock(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def counting(fn, counter):
    """fn, counting its calls into counter[-1] (a fresh count after each pop)."""
    def wrapped(*args, **kwargs):
        if not counter:
            counter.append(0)
        counter[-1] += 1
        return fn(*args, **kwargs)
    return wrapped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--ncv", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import importlib

    from pyhessian import hessian as PyHessian
    module = importlib.import_module("pyhessian.hessian")  # the module, which its package's class name shadows

    torch.set_num_threads(1)
    data = load_dataset("mnist1d")
    mean, std = data.standardization()
    torch.manual_seed(0)
    model = build_model("mlp", data.input_shape, 10, mean, std, width=args.width)
    train_phase(model, data.x_train, data.y_train, PhaseSpec(epochs=args.epochs, stop_at_100=False), 0, None, [])
    model.eval()
    x, y = data.x_train[:args.examples], data.y_train[:args.examples]
    dim = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"MNIST-1D MLP width {args.width} ({dim} parameters), {args.examples} examples, float32, "
          f"{torch.get_num_threads()} thread")

    reference = lanczos_eigenvalue(HessianOperator(model, x, y, dtype=torch.float64), tol=1e-10)["eigenvalue"]
    print(f"lambda_max float64 reference {reference:.6f}; median wall time of {args.repeats} runs each")

    def ours_gap():
        return lanczos_largest(HessianOperator(model, x, y, batch_size=len(y), keep_graph=True), tol=args.tol)

    def ours_eigsh():
        return lanczos_eigenvalue(HessianOperator(model, x, y, batch_size=len(y), keep_graph=True), tol=args.tol,
                                  ncv=args.ncv)

    def pyhessian_power(tol):
        def run():
            torch.manual_seed(0)
            value = PyHessian(model, F.cross_entropy, data=(x, y), cuda=False).eigenvalues(maxIter=5000, tol=tol)[0][0]
            model.zero_grad(set_to_none=True)  # PyHessian leaves create_graph gradients in .grad
            return {"eigenvalue": value, "hvps": counted.pop()}
        return run

    counted = []
    module.hessian_vector_product = counting(module.hessian_vector_product, counted)
    methods = {f"ours: Lanczos, gap estimate {args.tol:g}": ours_gap,
               f"ours: eigsh, residual {args.tol:g}": ours_eigsh,
               "PyHessian: power, change 1e-3": pyhessian_power(1e-3)}
    methods |= {f"PyHessian: power, change {tol:g}": pyhessian_power(tol) for tol in (1e-4, 1e-5)}
    times, values = {}, {}
    for name, fn in methods.items():
        runs = [clock(fn) for _ in range(args.repeats)]
        result, times[name] = runs[0][0], float(np.median([t for _, t in runs]))
        values[name] = result["eigenvalue"]
        print(f"  {name:34s} {values[name]:.6f} (error {abs(values[name] / reference - 1):.1e}, "
              f"{result['hvps']:4d} products, {times[name]:.3f} s)")
    ours = next(iter(methods))
    for theirs in list(methods)[2:]:
        print(f"  ours / {theirs}: relative difference {abs(values[ours] / values[theirs] - 1):.1e}, "
              f"wall time ratio {times[ours] / times[theirs]:.2f}")

    trace, t_trace = clock(lambda: hutchinson_trace(HessianOperator(model, x, y, batch_size=len(y), keep_graph=True),
                                                     args.probes))
    torch.manual_seed(1)
    samples, t_their_trace = clock(lambda: PyHessian(model, F.cross_entropy, data=(x, y), cuda=False)
                                   .trace(maxIter=args.probes, tol=0.0))
    model.zero_grad(set_to_none=True)
    their_trace = float(np.mean(samples))
    their_se = float(np.std(samples, ddof=1) / math.sqrt(len(samples)))
    gap = abs(trace["trace"] - their_trace) / math.hypot(trace["std_error"], their_se)
    print(f"trace, {args.probes} probes each: ours {trace['trace']:.4f} +- {trace['std_error']:.4f} ({t_trace:.2f} s), "
          f"PyHessian {their_trace:.4f} +- {their_se:.4f} ({len(samples)} probes, {t_their_trace:.2f} s); "
          f"difference {gap:.2f} combined standard errors")


if __name__ == "__main__":
    main()
