"""The compute options (bf16 autocast, channels_last, torch.compile) on the CPU: each takes effect, and each
trains to the same numbers as an explicit fp32 loop written here (plain SGD over the loop's documented order),
within a tolerance stated per option; each is recorded in the run's id."""
import hashlib
import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from badminima.cli import build_parser
from badminima.launch import resolve_base
from badminima.models import build_model
from badminima.runs import plan
from badminima.spec import ComputeSpec, PhaseSpec, RunSpec, merge, run_id, validate
from badminima.errors import BadInput
from badminima.train import derive_seed, evaluate, train_phase

# small steps, batch 32: on this tiny batch-norm net larger steps (lr 0.05, batch 16) make the path chaotic, so that
# float32 rounding differences of 1e-7 grow to 1e-2 within 8 steps and no tolerance would mean anything
PHASE = PhaseSpec(epochs=2, batch_size=32, lr=0.01, momentum=0.9, weight_decay=5e-4)
SEED = 3


def _setup():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 4, (64,), generator=g)
    xf = x.float() / 255
    mean, std = xf.mean(dim=(0, 2, 3)), xf.std(dim=(0, 2, 3))
    torch.manual_seed(1)
    model = build_model("resnet18", (3, 8, 8), 4, mean, std, width=4)  # batch norm, residuals: the paper's net, small
    return model, x, y


def _reference(model, x, y):
    """Plain fp32 SGD written out: epoch e visits randperm(n) of a generator seeded by derive_seed(seed, e)
    (the loop's documented order) in batches; no augmentation. Returns (weights, per-epoch mean loss)."""
    model = _copy(model)
    opt = torch.optim.SGD(model.parameters(), lr=PHASE.lr, momentum=PHASE.momentum, weight_decay=PHASE.weight_decay)
    losses = []
    for epoch in (1, 2):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(derive_seed(SEED, epoch)))
        total = 0.0
        for i in range(0, len(y), PHASE.batch_size):
            idx = order[i:i + PHASE.batch_size]
            loss = F.cross_entropy(model(x[idx].float() / 255), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(y))
    return _flat(model), losses


def _copy(model):
    import copy
    return copy.deepcopy(model)


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _ours(model, x, y, compute):
    model = _copy(model)
    outcome = train_phase(model, x, y, PHASE, SEED, None, [], compute=compute)
    return model, _flat(model), [h["train_loss"] for h in outcome.history]


def _relative(a, b):
    return float((a - b).norm() / b.norm())


def test_fp32_default_equals_the_explicit_loop():
    model, x, y = _setup()
    ref_w, ref_losses = _reference(model, x, y)
    _, w, losses = _ours(model, x, y, None)
    # the same float32 operations in the same order: equal up to summation order in the loss record
    assert torch.allclose(w, ref_w, rtol=0, atol=1e-6)
    assert losses == pytest.approx(ref_losses, rel=1e-6)


def test_bf16_autocast_takes_effect_and_stays_close():
    model, x, y = _setup()
    ref_w, ref_losses = _reference(model, x, y)
    seen = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    _, w, losses = _ours(model, x, y, ComputeSpec(precision="bf16"))
    assert seen and all(d == torch.bfloat16 for d in seen)  # the convolutions ran in bfloat16
    # Why 2%: bf16 keeps 8 significant bits (relative rounding 2^-9). A batch-norm net at its random init builds its
    # gradient by cancellation (here float32 and float64 gradients already differ by ~0.6%), so bf16 gradients differ
    # by tens of percent in direction while the losses along the path agree to ~1%: we bound those at 2%.
    assert losses == pytest.approx(ref_losses, rel=2e-2)
    assert _relative(w, ref_w) > 1e-4  # it did compute something other than fp32
    assert _relative(w, ref_w) < _relative(_flat(model), ref_w)  # and stayed nearer fp32's end than the start is


def test_channels_last_takes_effect_and_stays_close():
    model, x, y = _setup()
    ref_w, ref_losses = _reference(model, x, y)
    layouts = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_pre_hook(lambda m, i: layouts.append(i[0].is_contiguous(memory_format=torch.channels_last)))
    trained, w, losses = _ours(model, x, y, ComputeSpec(channels_last=True))
    assert layouts and all(layouts)  # every batch reached the convolutions in NHWC order
    first = next(m for m in trained.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.weight.is_contiguous(memory_format=torch.channels_last)
    # the same float32 arithmetic in another memory order (other kernels, other summation orders): measured ~2e-7,
    # bounded at 1e-5
    assert losses == pytest.approx(ref_losses, rel=1e-5)
    assert _relative(w, ref_w) < 1e-5


@pytest.mark.slow  # compiling takes minutes on a busy CPU; the loop's path with compile off is tested above
def test_compile_stays_close():
    """torch.compile of a small ConvNet (compile time grows with the graph; resnet18 takes minutes here)."""
    torch._dynamo.reset()
    from torch._dynamo.utils import counters
    counters.clear()
    _, x, y = _setup()
    torch.manual_seed(2)
    model = build_model("cnn2d", (3, 8, 8), 4, torch.full((3,), 0.5), torch.full((3,), 0.29), width=4)
    ref_w, ref_losses = _reference(model, x, y)
    _, w, losses = _ours(model, x, y, ComputeSpec(compile=True))
    assert counters["stats"]["unique_graphs"] >= 1  # the model's forward went through torch.compile
    # fused float32 kernels sum in other orders: bounded at 1e-5, as channels_last
    assert losses == pytest.approx(ref_losses, rel=1e-5)
    assert _relative(w, ref_w) < 1e-5


def test_evaluate_under_bf16_is_close_to_fp32_and_uint8_equals_floats():
    model, x, y = _setup()
    fp32 = evaluate(model, x.float() / 255, y)
    assert evaluate(model, x, y) == fp32  # uint8 pixels: the same batches, bit for bit
    loss, acc = evaluate(model, x, y, compute=ComputeSpec(precision="bf16"))
    assert loss == pytest.approx(fp32[0], rel=2e-2) and abs(acc - fp32[1]) <= 3 / len(y)


def test_compute_is_in_the_ids_and_the_default_keeps_them():
    empty = hashlib.sha256(json.dumps({}, sort_keys=True).encode()).hexdigest()[:12]
    assert run_id(RunSpec()) == empty  # the default compute adds nothing to the hash
    assert run_id(RunSpec(compute=ComputeSpec(precision="fp32", channels_last=False, compile=False))) == empty
    base = merge(RunSpec(), {"init": {"name": "adversarial"}})
    for change in ({"precision": "bf16"}, {"channels_last": True}, {"compile": True}):
        other = replace(base, compute=replace(base.compute, **change))
        a, b = plan(base), plan(other)
        assert a[0].id == b[0].id  # the random init is computed the same way for all
        assert a[1].id != b[1].id and a[2].id != b[2].id  # pretraining and training say how they were computed
    with pytest.raises(BadInput, match="precision"):
        validate(RunSpec(compute=ComputeSpec(precision="fp16")))


def test_flags_set_the_compute_fields():
    args = build_parser().parse_args(["run", "bad-minima", "--precision", "bf16", "--channels-last", "--compile"])
    spec = resolve_base(args)
    assert spec.compute == ComputeSpec("bf16", True, True)
    assert resolve_base(build_parser().parse_args(["run", "bad-minima"])).compute == ComputeSpec()
