"""`local-minima` (paper 004 Table 1): its measurements on one set against an explicit Hessian, and training from
Lemma 1's init against independent gradients and the best affine classifier."""
import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import nn

from badminima.experiments.paper004 import local_minima
from badminima.inits.lemma1 import lemma1_transform
from badminima.models import Classifier
from badminima.runs import Workspace
from badminima.spec import DataSpec, ModelSpec, RunSpec
from badminima.store import Store
from badminima.train.loop import train_phase
from conftest import loss_of_flat_parameters


def _explicit(model, x, y):
    """Loss, gradient and Hessian of the mean cross-entropy over all of (x, y), by torch.func in float64."""
    loss, flat = loss_of_flat_parameters(model.double().eval(), x.double(), y)

    return float(loss(flat)), torch.func.grad(loss)(flat), torch.func.hessian(loss)(flat)


def test_loss_gradient_and_hessian_are_on_the_same_whole_training_set():
    torch.manual_seed(0)
    x, y = torch.randn(1500, 1, 8), torch.randint(0, 3, (1500,))
    net = nn.Sequential(nn.Flatten(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    model = Classifier(net, torch.zeros(1), torch.ones(1), 2)
    with torch.no_grad():
        net[1].bias += 0.5
    data = SimpleNamespace(x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    rec = local_minima.landscape(model, data, 0, local_minima.CPU)  # the cpu preset's settings
    loss, grad, hessian = _explicit(Classifier(net, torch.zeros(1), torch.ones(1), 2), x, y)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    assert rec["loss"] == pytest.approx(loss, rel=1e-5)
    assert rec["gradient_norm"] == pytest.approx(float(grad.norm()), rel=1e-4)
    assert rec["min_eigenvalue"] == pytest.approx(float(eigenvalues[0]), rel=2e-3)
    assert rec["max_eigenvalue"] == pytest.approx(float(eigenvalues[-1]), rel=2e-3)
    assert rec["examples"] == 1500 and rec["min_eigenvalue_converged"] and rec["max_eigenvalue_converged"]
    assert float(eigenvalues[0]) < 0
    # the paper's protocol beside it: whatever it returns, its flag must be true only if its residual says so
    for end in ("min", "max"):
        if rec[f"{end}_eigenvalue_power_converged"]:
            assert float((eigenvalues - rec[f"{end}_eigenvalue_power"]).abs().min()) <= 1e-3 * abs(rec[f"{end}_eigenvalue_power"]) + 1e-9


def _best_affine_loss(z, y):
    """The lowest mean cross-entropy of any affine map of z (scikit-learn, regularization ~ 0)."""
    clf = LogisticRegression(C=1e8, tol=1e-12, max_iter=20000).fit(z, y)
    return float(F.cross_entropy(torch.as_tensor(z @ clf.coef_.T + clf.intercept_), torch.as_tensor(y)))


def _stats(model, x, y):
    """Loss, gradient norm (float64 autograd) and the lowest hidden pre-activation, walking the MLP by hand."""
    model = copy.deepcopy(model).double().eval()
    loss = F.cross_entropy(model(x), y)
    grad = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))])
    h, lowest = (x - model.mean) / model.std, float("inf")
    for m in model.net:
        h = m(h)
        if isinstance(m, nn.Linear) and m is not model.net[-1]:
            lowest = min(lowest, h.min().item())
    return loss.item(), grad.norm().item(), lowest


def test_gradient_descent_from_lemma1_moves_along_its_minimum(tmp_path):
    # the experiment's own Lemma 1 cell (its optimizer, rate and schedule), on 400 examples and width 16
    base = RunSpec(DataSpec("mnist1d", train_size=400), ModelSpec("mlp", width=16))
    ((_, spec),) = [(row, s) for row, s in local_minima._cells(base, [0], "cpu") if row == "lemma1"]
    ws = Workspace(Store(tmp_path), quiet=True)
    data = ws.dataset(spec)
    model = ws.skeleton(spec)
    lemma1_transform(model, spec.init, torch.Generator(), data)
    x, y = data.x_train.double(), data.y_train
    loss0, grad0, lowest0 = _stats(model, x, y)
    assert lowest0 >= 1 - 1e-4  # Lemma 1: every hidden pre-activation >= 1 on every training point
    train_phase(model, data.x_train, data.y_train, spec.recipe, spec.seed, None, [])
    loss1, grad1, lowest1 = _stats(model, x, y)
    assert grad1 <= 0.8 * grad0  # it moved: 500 steps at lr 1e-5 left the gradient norm where it was
    assert loss1 < loss0
    assert lowest1 > 0  # every ReLU still on for every training point: an affine map of the inputs ...
    assert loss1 >= _best_affine_loss(x.flatten(1).numpy(), y.numpy()) - 1e-5  # ... so no better than the best one
