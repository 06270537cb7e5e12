"""Hessian-vector products, eigenvalues and trace against the full Hessian from
torch.autograd.functional.hessian and torch.linalg.eigvalsh, on a tiny network in float64."""
import copy

import pytest
import torch
from torch import nn

from badminima.measures import (HessianOperator, extreme_eigenvalues_power, full_batch_loss_and_gradient,
                                gradient_norm, hutchinson_trace, lanczos_eigenvalue, power_iteration)
from badminima.models import Classifier
from conftest import loss_of_flat_parameters


@pytest.fixture(scope="module")
def problem():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    model = Classifier(net, torch.full((3,), 0.2), torch.full((3,), 1.5), 1).double()
    x, y = torch.randn(23, 3, dtype=torch.float64), torch.randint(0, 3, (23,))
    loss, flat = loss_of_flat_parameters(model, x, y)  # one batch: no accumulation

    hessian = torch.autograd.functional.hessian(loss, flat)
    gradient = torch.autograd.functional.jacobian(loss, flat)
    return model, x, y, hessian, torch.linalg.eigvalsh(hessian), gradient, float(loss(flat))


def test_hessian_vector_products_accumulated_over_batches(problem):
    model, x, y, hessian, _, _, _ = problem
    op = HessianOperator(model, x, y, batch_size=7)
    columns = torch.stack([op.matvec(e) for e in torch.eye(op.dim, dtype=torch.float64)], 1)
    assert torch.allclose(columns, hessian, atol=1e-10)
    assert op.hvps == op.dim


def test_loss_and_gradient(problem):
    model, x, y, _, _, gradient, loss = problem
    value, grad = full_batch_loss_and_gradient(model, x, y, batch_size=5)
    assert value == pytest.approx(loss, rel=1e-12)
    assert torch.allclose(grad, gradient, atol=1e-12)
    assert gradient_norm(model, x, y, batch_size=10) == pytest.approx(float(gradient.norm()), rel=1e-12)


def test_lanczos_extreme_eigenvalues(problem):
    model, x, y, _, eigenvalues, _, _ = problem
    op = HessianOperator(model, x, y, batch_size=10)
    top = lanczos_eigenvalue(op, "LA", tol=1e-10)
    bottom = lanczos_eigenvalue(op, "SA", tol=1e-10)
    assert top["eigenvalue"] == pytest.approx(float(eigenvalues[-1]), rel=1e-8)
    assert bottom["eigenvalue"] == pytest.approx(float(eigenvalues[0]), abs=1e-8 * float(eigenvalues.abs().max()))
    assert top["hvps"] > 0 and op.hvps == top["hvps"] + bottom["hvps"]


def test_power_iteration_and_the_shifted_minimum(problem):
    model, x, y, _, eigenvalues, _, _ = problem
    op = HessianOperator(model, x, y, batch_size=23)
    scale = float(eigenvalues.abs().max())
    dominant = power_iteration(op, iterations=3000, tol=1e-9)
    assert abs(dominant["eigenvalue"]) == pytest.approx(scale, rel=1e-6) and dominant["converged"]
    both = extreme_eigenvalues_power(op, iterations=3000, tol=1e-9)
    assert both["max"] == pytest.approx(float(eigenvalues[-1]), rel=1e-6)
    assert both["min"] == pytest.approx(float(eigenvalues[0]), abs=1e-5 * scale)
    assert both["hvps"] <= 6000
    fixed = power_iteration(op, iterations=7, tol=0.0)  # paper 004's protocol: a fixed number of products
    assert fixed["hvps"] == 7


def test_hutchinson_trace(problem):
    model, x, y, hessian, _, _, _ = problem
    op = HessianOperator(model, x, y, batch_size=23)
    estimate = hutchinson_trace(op, samples=400)
    exact = float(hessian.trace())
    assert estimate["hvps"] == 400
    assert abs(estimate["trace"] - exact) < 4 * estimate["std_error"]
    # Rademacher variance is 2 * sum of squared off-diagonal entries: the reported error matches it
    off = hessian - torch.diag(hessian.diagonal())
    assert estimate["std_error"] == pytest.approx(float((2 * (off ** 2).sum() / 400).sqrt()), rel=0.25)


class DiagonalOperator:
    """A symmetric operator with a known spectrum, counting its products like HessianOperator."""

    def __init__(self, eigenvalues, seed=0):
        q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), dtype=torch.float64,
                                           generator=torch.Generator().manual_seed(seed)))
        self.matrix = q @ torch.diag(torch.as_tensor(eigenvalues, dtype=torch.float64)) @ q.T
        self.dim, self.dtype, self.device, self.hvps = len(eigenvalues), torch.float64, torch.device("cpu"), 0

    def matvec(self, v):
        self.hvps += 1
        return self.matrix @ v


def test_shifted_power_method_is_not_fooled_by_a_cluster():
    # like a trained network's Hessian: one large eigenvalue, a bulk near zero, a small negative one.
    # Shifted by lambda_max the bulk sits at 0.967 of the dominant magnitude: the Rayleigh quotient creeps,
    # and stopping when it stops changing would report lambda_min ~ 0.
    bulk = torch.linspace(-0.01, 0.02, 200).tolist()
    op = DiagonalOperator([7.77, -0.27] + bulk)
    both = extreme_eigenvalues_power(op, iterations=3000, tol=1e-6)
    assert both["max"] == pytest.approx(7.77, rel=1e-6)
    assert both["min"] == pytest.approx(-0.27, abs=1e-3)
    assert both["converged"] and op.hvps == both["hvps"]


def test_shifted_power_method_reports_an_unconverged_minimum_honestly():
    # Lemma 1's Hessian, schematically: lambda_max = 3.2e4, lambda_min = -11.5, a bulk in [0, 1]. Shifted by
    # lambda_max, the minimum's share grows by a factor 1 + 3.6e-4 per product: 500 products leave the iterate
    # in the bulk, with theta + shift ~ 0.4 and a residual ~ 0.3 - within 1e-4 * |theta| = 3.2 of the shifted
    # eigenvalue, but 1000 times |lambda| of the eigenvalue it stands for.
    op = DiagonalOperator([32000.0, -11.5] + torch.linspace(0.0, 1.0, 300).tolist())
    both = extreme_eigenvalues_power(op, iterations=500, tol=1e-4)
    assert both["min"] > 0  # far from -11.5 ...
    assert not both["converged"]  # ... and it says so
    assert not both["min_converged"] and both["max"] == pytest.approx(32000.0, rel=1e-6) and both["max_converged"]
    assert both["min_residual"] > 1e-4 * abs(both["min"])
    assert both["max_hvps"] + both["min_hvps"] == both["hvps"] == op.hvps
    # Lanczos finds it, with a certificate relative to -11.5
    bottom = lanczos_eigenvalue(op, "SA", tol=1e-6)
    assert bottom["eigenvalue"] == pytest.approx(-11.5, rel=1e-6) and bottom["converged"]
    assert bottom["residual"] <= 1e-6 * 11.5


def test_lanczos_certificate_and_an_unconverged_answer(problem):
    model, x, y, _, eigenvalues, _, _ = problem
    op = HessianOperator(model, x, y, batch_size=10)
    bottom = lanczos_eigenvalue(op, "SA", tol=1e-8)
    assert bottom["converged"] and bottom["residual"] <= 1e-8 * abs(bottom["eigenvalue"])
    # an explicit check of the certificate: some eigenvalue of the explicit Hessian lies within the residual
    assert float((eigenvalues - bottom["eigenvalue"]).abs().min()) <= bottom["residual"] + 1e-12
    # out of products before convergence: still a Rayleigh quotient (an upper bound on lambda_min, a lower bound
    # on lambda_max), flagged as not converged, and within its residual of some eigenvalue
    start = op.hvps
    cut = lanczos_eigenvalue(op, "SA", tol=1e-12, max_hvps=5, ncv=5)
    assert op.hvps - start == cut["hvps"] == 5  # the budget is exact
    assert not cut["converged"] and cut["eigenvalue"] >= float(eigenvalues[0]) - 1e-12
    assert float((eigenvalues - cut["eigenvalue"]).abs().min()) <= cut["residual"] + 1e-12
    top = lanczos_eigenvalue(op, "LA", tol=1e-12, max_hvps=5, ncv=5)
    assert not top["converged"] and top["eigenvalue"] <= float(eigenvalues[-1]) + 1e-12


def test_float64_products_of_a_float32_model(problem):
    model, x, y, hessian, _, _, _ = problem
    single = copy.deepcopy(model).float()
    op = HessianOperator(single, x.float(), y, dtype=torch.float64)
    assert next(single.parameters()).dtype == torch.float32  # a copy is converted, not the model
    v = torch.randn(op.dim, dtype=torch.float64)
    assert op.matvec(v).dtype == torch.float64
    assert torch.allclose(op.matvec(v), hessian @ v, rtol=1e-5, atol=1e-6)  # float32 weights, float64 products


def test_measure_output_shows_each_eigenvalues_flag_and_products():
    from badminima.measuring import value_lines

    lines = value_lines({"min_lanczos": -11.5, "min_lanczos_converged": True, "min_lanczos_hvps": 31,
                         "min_power": 0.007, "min_power_converged": False, "min_power_hvps": 500, "examples": 1000}, "")
    assert lines == ["min_lanczos: -11.5 (converged, 31 products)", "min_power: 0.007 (NOT converged, 500 products)",
                     "examples: 1000"]


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_lanczos_keeps_its_best_direction_through_arpacks_restarts(which):
    # A closed-form spectrum that ARPACK needs several restarts for (ncv = 20, 50-150 products): the answer must be
    # the extreme eigenvalue, not the Ritz value of only the last products, which after two restarts no longer
    # span ARPACK's kept direction (read that way it was 0.9989 for 1.05, flagged unconverged).
    values = torch.rand(299, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).tolist() + [1.05]
    op = DiagonalOperator(values)
    result = lanczos_eigenvalue(op, which, tol=1e-8, max_hvps=3000)
    true = max(values) if which == "LA" else min(values)
    assert result["hvps"] > 40  # restarted at least twice
    assert result["eigenvalue"] == pytest.approx(true, abs=1e-9)
    assert abs(result["eigenvalue"] - true) <= result["residual"] < 1e-6  # its certificate, honest and small


class Float32Operator(DiagonalOperator):
    """The same operator with float32 products, as a float32 model's Hessian-vector products (relative
    rounding ~1e-7)."""

    def __init__(self, eigenvalues, seed=0):
        super().__init__(eigenvalues, seed)
        self.matrix, self.dtype = self.matrix.float(), torch.float32

    def matvec(self, v):
        self.hvps += 1
        return self.matrix @ v.float()


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_lanczos_with_rounded_products_stays_a_rayleigh_quotient(which):
    # A bulk near 0 beside three large eigenvalues, float32 products, a tolerance that float32 cannot meet (so
    # hundreds of products and many restarts). Carrying a Ritz vector that already lies in the span of the
    # products made the span's basis nearly singular, and dividing the products' rounding by its tiny singular
    # values read lambda_min as -0.065 for 0.0004 (and lambda_max of a network's Hessian as 14.7 for 1.43).
    for seed in range(4):
        uniform = torch.rand(297, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        values = (-uniform.log() / 10).tolist() + [1.0, 0.99, 0.98]  # the bulk: exponential, mean 0.1
        result = lanczos_eigenvalue(Float32Operator(values), which, tol=1e-10, max_hvps=600)
        assert not result["converged"]  # 1e-10 is beyond float32's products, and the flag says so
        # a Rayleigh quotient, up to float32 rounding: never beyond the extreme eigenvalue it estimates
        if which == "LA":
            assert result["eigenvalue"] <= max(values) + 1e-6
        else:
            assert result["eigenvalue"] >= min(values) - 1e-6
        if seed == 3:  # where 600 products reach it (seeds 0 and 1 stop 5.5e-5 and 5.5e-6 above lambda_min)
            assert result["eigenvalue"] == pytest.approx(max(values) if which == "LA" else min(values), abs=1e-6)


def test_lanczos_prefers_the_extreme_value_to_a_certified_neighbour():
    # Eigenvalues 0, 1/299, ..., 1: a Ritz pair at the second smallest (0.0033) can carry a tiny residual, and
    # so a certificate, while the value at 0 cannot (relative to 0, with atol = 0). The answer is the more
    # extreme value, flagged not converged, not the certified neighbour 0.0033 away.
    result = lanczos_eigenvalue(DiagonalOperator(torch.linspace(0.0, 1.0, 300).tolist()), "SA", tol=1e-3)
    assert abs(result["eigenvalue"]) < 1e-4 and not result["converged"]
