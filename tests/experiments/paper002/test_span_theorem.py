"""span-theorem (lecture 002): the limits of GD, SGD, heavy ball, Nesterov and Adam on under-determined least
squares against numpy's pseudo-inverse, an SVD basis of the null space, and Adam's first step computed by hand."""
import numpy as np
import pytest

from badminima.cli import main
from badminima.experiments import list_experiments
from badminima.experiments.paper002 import span_theorem as st

TINY = st.Settings(equations=10, unknowns=40, batch_size=2)  # 10 x 40 (the default: 50 x 200)


def _null_basis(a):
    """Orthonormal basis of the null space of A (rows of V^T beyond the rank), from numpy's SVD."""
    return np.linalg.svd(a)[2][np.linalg.matrix_rank(a):]


@pytest.mark.parametrize("name", ["GD", "SGD", "heavy ball", "Nesterov"])
def test_span_algorithms_from_zero_reach_the_pinv_solution(name):
    a, b, _ = st.problem(0, TINY)
    w = st.run_algorithm(name, a, b, np.zeros(40), TINY)["w"]
    assert np.linalg.norm(w - np.linalg.pinv(a) @ b) < 1e-9
    coefficients = np.linalg.lstsq(a.T, w, rcond=None)[0]  # w = A^T c: a combination of the data rows
    assert np.linalg.norm(a.T @ coefficients - w) < 1e-9


@pytest.mark.parametrize("name", ["GD", "SGD", "heavy ball"])
def test_span_algorithms_from_w0_keep_its_null_space_part(name):
    """Limit A^+ b + (I - A^+ A) w0, with the projector built from an SVD basis V_0 of the null space: V_0 V_0^T w0."""
    a, b, w0 = st.problem(1, TINY)
    v0 = _null_basis(a)
    expected = np.linalg.pinv(a) @ b + v0.T @ (v0 @ w0)
    w = st.run_algorithm(name, a, b, w0, TINY)["w"]
    assert np.linalg.norm(w - expected) < 1e-9
    assert np.linalg.norm(w - np.linalg.pinv(a) @ b) == pytest.approx(np.linalg.norm(v0 @ w0), rel=1e-9)
    assert np.linalg.norm(v0 @ w0) > 1.0  # the start's null-space part is far from zero: the test can fail


def test_adam_from_zero_interpolates_off_the_span():
    a, b, _ = st.problem(0, TINY)
    pinv_solution = np.linalg.pinv(a) @ b
    w = st.run_algorithm("Adam", a, b, np.zeros(40), TINY)["w"]
    assert np.linalg.norm(a @ w - b) < 1e-9  # an interpolant
    gap = np.linalg.norm(w - pinv_solution)
    assert gap > 0.1 * np.linalg.norm(pinv_solution)  # not the minimum-norm one
    v0 = _null_basis(a)
    assert np.linalg.norm(v0 @ w) == pytest.approx(gap, rel=1e-8)  # the gap is its null-space part
    assert np.linalg.norm(w) ** 2 == pytest.approx(np.linalg.norm(pinv_solution) ** 2 + gap ** 2, rel=1e-9)


def test_adams_first_step_leaves_the_row_space():
    """From zero, Adam's bias-corrected first step is -lr g / (|g| + eps) = lr sign(A^T b) elementwise (g = -A^T b)."""
    a, b, _ = st.problem(0, TINY)
    w = st.run_algorithm("Adam", a, b, np.zeros(40), st.Settings(equations=10, unknowns=40, adam_steps=1))["w"]
    g = -a.T @ b
    assert np.allclose(w, -TINY.adam_lr * g / (np.abs(g) + 1e-8), rtol=1e-12, atol=0)
    assert np.linalg.norm(_null_basis(a) @ w) > 0.5 * np.linalg.norm(w)


def test_records_and_verdict_against_numpy():
    recs = [r | {"tolerance": TINY.tolerance} for r in st.seed_records(2, TINY)]
    a, b, w0 = st.problem(2, TINY)
    pinv_norm = np.linalg.norm(np.linalg.pinv(a) @ b)
    for r in recs:
        assert r["pinv_norm"] == pytest.approx(pinv_norm, rel=1e-12)
        assert r["start_null_space_part"] == pytest.approx(0.0 if r["start"] == "zero" else
                                                           np.linalg.norm(_null_basis(a) @ w0), abs=1e-12, rel=1e-9)
    outcomes = {(r["algorithm"], r["start"]): st.outcome(r) for r in recs}
    assert outcomes[("Adam", "zero")] == "interpolant, not min-norm"
    assert outcomes[("GD", "w0")] == "A^+ b + P_null w0" and outcomes[("SGD", "zero")] == "min-norm A^+ b"
    assert st.verdict(recs).startswith("theorem HOLDS")
    broken = [r | {"distance_to_limit": 1e-3, "distance_to_pinv": 1e-3} if (r["algorithm"], r["start"]) == ("SGD", "zero")
              else r for r in recs]  # a span-preserving run that missed A^+ b
    assert st.verdict(broken).startswith("theorem DOES NOT HOLD")


def test_run_by_name(tmp_path, capsys, monkeypatch):
    from badminima.store import Store

    monkeypatch.setitem(st.SETTINGS, "cpu", TINY)
    assert "span-theorem" in list_experiments()
    assert main(["list", "experiments"]) == 0 and "span-theorem" in capsys.readouterr().out
    # gaussians2d: the CLI checks the (unused) base spec's data before running, and these are the cheapest
    assert main(["run", "span-theorem", "--seeds", "3", "--dataset", "gaussians2d", "--out", str(tmp_path), "--quiet"]) == 0
    assert "theorem HOLDS" in capsys.readouterr().out
    store = Store(tmp_path)
    (entry,) = store.experiments()
    store.close()
    a, b, _ = st.problem(3, TINY)
    pinv_solution = np.linalg.pinv(a) @ b
    gd = next(r for r in entry["records"] if (r["algorithm"], r["start"]) == ("GD", "zero"))
    assert gd["distance_to_pinv"] < 1e-9 and gd["pinv_norm"] == pytest.approx(np.linalg.norm(pinv_solution), rel=1e-12)
