"""Top-k eigenvalues, stochastic Lanczos quadrature and the data/loss inputs of the Hessian operator,
against the explicit Hessian of a tiny float64 MLP (torch.autograd.functional.hessian of the loss as a
function of the flat parameter vector) and numpy.linalg.eigvalsh."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from badminima.measures.curvature import HessianOperator, full_batch_loss_and_gradient, hessian_operator
from badminima.measures.spectrum import (density_on_grid, lanczos_largest, spectral_density, spectral_moments,
                                        top_eigenvalues)
from conftest import loss_of_flat_parameters


def explicit_hessian(model, x, y, loss_fn):
    loss, flat = loss_of_flat_parameters(model, x, y, loss_fn)  # the whole set in one batch
    return torch.autograd.functional.hessian(loss, flat).numpy()


@pytest.fixture(scope="module")
def problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    x, y = torch.randn(40, 4, dtype=torch.float64), torch.randint(0, 3, (40,))
    hessian = explicit_hessian(model, x, y, F.cross_entropy)
    return model, x, y, hessian, np.linalg.eigvalsh(hessian)


def test_top_eigenvalues_match_the_explicit_hessian(problem):
    model, x, y, _, eigenvalues = problem
    op = HessianOperator(model, x, y, batch_size=9)
    top = top_eigenvalues(op, k=4, tol=1e-10)
    assert np.allclose(top["eigenvalues"], eigenvalues[::-1][:4], rtol=1e-8, atol=1e-12)
    assert top["converged"].all() and top["hvps"] == op.hvps
    assert (top["residuals"] <= 1e-10 * np.abs(top["eigenvalues"])).all()


def clusters(values, gap):
    """The distinct values of a sorted array, merging neighbours closer than `gap`."""
    groups = [[values[0]]]
    for v in values[1:]:
        (groups[-1].append(v) if v - groups[-1][-1] < gap else groups.append([v]))
    return np.array([np.mean(g) for g in groups])


def test_slq_with_full_steps_reproduces_the_eigenvalues(problem):
    model, x, y, _, eigenvalues = problem
    p = len(eigenvalues)
    op = HessianOperator(model, x, y, batch_size=40)
    result = spectral_density(op, probes=1, steps=p + 5, seed=3)
    nodes, scale = np.sort(result["nodes"]), np.abs(eigenvalues).max()
    # the last layer's logit-shift directions make 0 a multiple eigenvalue: the Krylov space sees each
    # distinct eigenvalue once, so the nodes are the distinct eigenvalues
    distinct = clusters(eigenvalues, 1e-9 * scale)
    assert len(nodes) == len(distinct) < p and result["hvps"] == len(nodes)
    assert np.allclose(nodes, distinct, atol=1e-8 * scale)
    assert result["weights"].sum() == pytest.approx(1.0, abs=1e-12)
    assert list(result["table"].columns) == ["probe", "node", "weight"] and len(result["table"]) == len(nodes)


def test_slq_moments_estimate_normalised_traces_of_powers(problem):
    model, x, y, hessian, _ = problem
    p, probes = len(hessian), 200
    op = HessianOperator(model, x, y, batch_size=40)
    moments = spectral_moments(spectral_density(op, probes=probes, steps=3, seed=0))
    assert moments[0] == pytest.approx(1.0, abs=1e-12)
    for j in (1, 2):
        a = np.linalg.matrix_power(hessian, j)
        # per probe (steps >= 2: exact for degree <= 3) the moment is u^T A u / p, u Rademacher, whose
        # variance is 2 (||A||_F^2 - sum_i A_ii^2) / p^2 (Hutchinson's estimator)
        sigma = np.sqrt(2 * (np.sum(a ** 2) - np.sum(np.diag(a) ** 2)) / probes) / p
        assert abs(moments[j] - np.trace(a) / p) <= 4 * sigma, (j, moments[j], np.trace(a) / p, sigma)
        assert sigma < 0.2 * abs(np.trace(a) / p)  # the check has teeth


def test_broadened_density_is_a_density(problem):
    model, x, y, _, eigenvalues = problem
    result = spectral_density(HessianOperator(model, x, y), probes=3, steps=10, seed=1)
    sigma = 0.01 * (eigenvalues[-1] - eigenvalues[0])
    grid = np.linspace(eigenvalues[0] - 10 * sigma, eigenvalues[-1] + 10 * sigma, 4001)
    density = density_on_grid(result, grid, sigma)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, rel=1e-6)
    mean = np.trapezoid(grid * density, grid)
    assert mean == pytest.approx(spectral_moments(result)[1], rel=1e-6)


def test_dataloader_input_gives_the_same_products(problem):
    model, x, y, hessian, _ = problem
    v = torch.randn(len(hessian), dtype=torch.float64)
    loader = DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True)  # 40 = 5 x 7 + 5: unequal chunks
    from_loader = hessian_operator(model, loader)
    from_tensors = hessian_operator(model, (x, y), chunk_size=11)
    assert torch.allclose(from_loader.matvec(v), from_tensors.matvec(v), atol=1e-12)
    assert np.allclose(from_loader.matvec(v).numpy(), hessian @ v.numpy(), atol=1e-10)
    loss, _ = full_batch_loss_and_gradient(model, loader)
    assert loss == pytest.approx(float(F.cross_entropy(model(x), y).detach()), rel=1e-12)


def test_a_custom_loss_is_honoured(problem):
    model, x, y, _, _ = problem

    def mse(out, target):
        return F.mse_loss(out, F.one_hot(target, 3).double())

    hessian = explicit_hessian(model, x, y, mse)
    op = hessian_operator(model, DataLoader(TensorDataset(x, y), batch_size=6), loss_fn=mse)
    columns = np.stack([op.matvec(e).numpy() for e in torch.eye(op.dim, dtype=torch.float64)], 1)
    assert np.allclose(columns, hessian, atol=1e-10)
    top = top_eigenvalues(op, k=2, tol=1e-10)
    assert np.allclose(top["eigenvalues"], np.linalg.eigvalsh(hessian)[::-1][:2], rtol=1e-8)


def test_lanczos_largest_within_its_error_estimate(problem):
    model, x, y, _, eigenvalues = problem
    op = HessianOperator(model, x, y)
    top = lanczos_largest(op, tol=1e-6)
    assert top["converged"] and top["hvps"] == op.hvps < len(eigenvalues)
    assert top["eigenvalue"] <= eigenvalues[-1] + 1e-12  # a Rayleigh quotient
    assert eigenvalues[-1] - top["eigenvalue"] <= max(top["error_bound"], 1e-12)
    assert eigenvalues[-1] - top["eigenvalue"] <= 1e-6 * eigenvalues[-1]


def test_kept_graph_gives_the_same_products(problem):
    model, x, y, hessian, _ = problem
    op = hessian_operator(model, (x, y), keep_graph=True)
    assert op.keep_graph and not hessian_operator(model, (x, y), chunk_size=10, keep_graph=True).keep_graph
    for _ in range(2):  # the graph is reused
        v = torch.randn(len(hessian), dtype=torch.float64)
        assert np.allclose(op.matvec(v).numpy(), hessian @ v.numpy(), atol=1e-10)
    assert op.hvps == 2
