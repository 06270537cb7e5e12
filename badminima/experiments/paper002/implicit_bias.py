"""`implicit-bias`: the implicit bias of gradient descent in linear models (lecture 002, "GD + LS = a red
herring" and the Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018 theorem it quotes).

(a) Under-determined least squares, min_w ||A w - b||^2 with A of 50 x 200 (the lecture's X^T), by GD
    w <- w - gamma A^T (A w - b), gamma = 1 / sigma_max(A)^2. From w_0 = 0 the iterates stay in the row
    space of A and converge to the minimum-norm interpolant A^+ b; from any w_0, to A^+ b plus the part of
    w_0 in the null space of A, (I - A^+ A) w_0.
(b) Linearly separable data {(x_n, y_n)} (no bias term), GD on the summed logistic loss log(1 + exp(-u))
    and exponential loss exp(-u) of the margins u_n = y_n w^T x_n, step eta = 1 / sigma_max(X)^2 (below
    Theorem 3's 2 / (beta sigma_max^2) with beta = 1/4 and 1): w(t) = w_hat ln t + rho(t), so ||w(t)|| grows
    like ln t and w(t)/||w(t)|| -> w_hat/||w_hat||, w_hat the hard-margin SVM (min ||w|| s.t. y_n w^T x_n >= 1).
    w_hat is computed independently of GD: the primal QP by SLSQP, polished on its active set (w_hat =
    Z_S^T (Z_S Z_S^T)^-1 1 for the support vectors' rows z = y x), checked by the KKT conditions, and compared
    with scikit-learn's SVC (linear kernel, C = 1e10) on the data and its mirror image (-x, -y), which makes
    SVC's unpenalized intercept zero.
    The direction is tested against Soudry et al.'s asymptote, not a rate: for almost every data set
    rho(t) -> w_tilde, fixed by the support vectors S through eta exp(-z_n^T w_tilde) = alpha_n (n in S), alpha
    the SVM's dual coefficients (w_hat = sum_S alpha_n z_n); the logistic loss has the same exponential tail, so
    the same w_tilde. We report ||w(t) - w_hat ln t - w_tilde|| over t and the angle of the asymptote beside
    the measured one. (The angle falls like 1/ln t only once ||w_hat|| ln t dwarfs ||w_tilde||; on these data
    ||w_tilde|| is larger than ||w_hat|| ln t at t = 10^6, so a 1/ln t fit to the run would mean nothing.)
    Angles are computed as 2 atan2(||u^ - v^||, ||u^ + v^||) for the unit vectors u^, v^ (Kahan), exact down to
    rounding; arccos of the cosine cannot resolve angles below about 1e-6 degrees.

Data: (a) A and b with i.i.d. N(0, 1) entries, the non-zero start w_0 ~ N(0, I); (b) 100 points x ~ N(0, I_2),
labelled by the sign of a random direction, keeping points at distance >= 0.1 from its hyperplane. One problem
per seed (numpy's default_rng(seed)), float64 throughout.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...report.figures import series_figure
from ...report.tables import markdown_table
from ...store import Store
from .. import Context, Experiment, register_experiment


@dataclass(frozen=True)
class Settings:
    equations: int = 50  # rows of A
    unknowns: int = 200  # columns of A
    ls_steps: int = 1000  # GD steps on least squares (the error contracts by 1 - sigma_min^2/sigma_max^2 per step)
    points: int = 100  # separable data: number of points
    dims: int = 2  # separable data: dimension
    min_distance: float = 0.1  # separable data: least distance of a point to the labelling hyperplane
    steps: int = 1_000_000  # GD steps on the separable data
    recorded: int = 80  # log-spaced steps at which the iterate is recorded


SETTINGS = {"cpu": Settings(), "paper": Settings()}  # the lecture gives no numbers; the defaults run in seconds


# ---- (a) least squares ----------------------------------------------------------------------------

def least_squares_problem(seed: int, s: Settings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, b, w_0): the system and the non-zero starting point of seed `seed`."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((s.equations, s.unknowns)), rng.standard_normal(s.equations),
            rng.standard_normal(s.unknowns))


def least_squares_gd(a: np.ndarray, b: np.ndarray, w0: np.ndarray, steps: int) -> list[np.ndarray]:
    """Iterates w_0 .. w_steps of GD on ||A w - b||^2 with the lecture's update w - gamma A^T (A w - b),
    gamma = 1 / sigma_max(A)^2."""
    gamma = 1.0 / np.linalg.norm(a, 2) ** 2
    w, out = w0.astype(np.float64).copy(), [w0.astype(np.float64).copy()]
    for _ in range(steps):
        w = w - gamma * a.T @ (a @ w - b)
        out.append(w)
    return out


def least_squares_records(seed: int, s: Settings) -> list[dict]:
    a, b, w0 = least_squares_problem(seed, s)
    pinv = np.linalg.pinv(a)
    min_norm = pinv @ b
    out = []
    for start, w_start in (("zero", np.zeros(s.unknowns)), ("random", w0)):
        null_part = w_start - pinv @ (a @ w_start)  # (I - A^+ A) w_0
        limit = min_norm + null_part
        iterates = least_squares_gd(a, b, w_start, s.ls_steps)
        steps = list(range(0, s.ls_steps + 1, max(1, s.ls_steps // 200)))
        final = iterates[-1]
        out.append({
            "problem": "least squares", "variant": f"start {start}", "seed": seed, "steps": s.ls_steps,
            "distance_to_limit": float(np.linalg.norm(final - limit)),
            "distance_to_min_norm": float(np.linalg.norm(final - min_norm)),
            "residual": float(np.linalg.norm(a @ final - b)), "norm": float(np.linalg.norm(final)),
            "min_norm": float(np.linalg.norm(min_norm)), "limit_norm": float(np.linalg.norm(limit)),
            "null_space_part": float(np.linalg.norm(null_part)),
            "series": {"step": steps, "distance_to_limit": [float(np.linalg.norm(iterates[k] - limit)) for k in steps],
                       "norm": [float(np.linalg.norm(iterates[k])) for k in steps]}})
    return out


# ---- (b) separable data ---------------------------------------------------------------------------

def separable_data(seed: int, s: Settings) -> tuple[np.ndarray, np.ndarray]:
    """(X, y): `points` points in R^dims, y = sign(v^T x) for a random v, at distance >= min_distance."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(s.dims)
    v /= np.linalg.norm(v)
    xs: list[np.ndarray] = []
    while len(xs) < s.points:
        x = rng.standard_normal((s.points, s.dims))
        xs += list(x[np.abs(x @ v) >= s.min_distance])
    x = np.array(xs[:s.points])
    return x, np.sign(x @ v)


def max_margin_direction(x: np.ndarray, y: np.ndarray, tol: float = 1e-9) -> dict:
    """The hard-margin SVM without bias, argmin ||w|| s.t. y_n w^T x_n >= 1: SLSQP on the primal QP, then
    polished on its active set; `kkt` says whether the polished w satisfies the KKT conditions."""
    from scipy.optimize import minimize

    z = x * y[:, None]
    start = np.linalg.lstsq(z, np.ones(len(z)), rcond=None)[0]
    start = start / max(float((z @ start).min()), 1e-12) if (z @ start).min() > 0 else start
    res = minimize(lambda w: 0.5 * w @ w, start, jac=lambda w: w, method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda w: z @ w - 1.0, "jac": lambda w: z}],
                   options={"ftol": 1e-15, "maxiter": 2000})
    w = res.x
    active = np.flatnonzero(z @ w - 1.0 <= 1e-6)
    zs = z[active]
    alpha = np.linalg.lstsq(zs @ zs.T, np.ones(len(active)), rcond=None)[0]
    polished = zs.T @ alpha
    kkt = bool((alpha >= -tol).all() and (z @ polished >= 1.0 - 1e-9).all())
    return {"w": polished if kkt else w, "support": active.tolist(), "alpha": alpha.tolist(), "kkt": kkt}


def sklearn_max_margin(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scikit-learn's SVC (linear kernel, C = 1e10) on the data and its mirror image, whose SVM has
    intercept 0 and the same w as the SVM without bias on the data."""
    from sklearn.svm import SVC

    svc = SVC(kernel="linear", C=1e10, tol=1e-10).fit(np.vstack([x, -x]), np.concatenate([y, -y]))
    return svc.coef_.ravel()


def angle_degrees(u: np.ndarray, v: np.ndarray) -> float:
    """The angle between u and v in degrees, 2 atan2(||u^ - v^||, ||u^ + v^||) with u^ = u / ||u|| (Kahan's
    formula: accurate for tiny and for nearly opposite angles, where arccos of the cosine is not)."""
    a, b = u / np.linalg.norm(u), v / np.linalg.norm(v)
    return float(np.degrees(2 * np.arctan2(np.linalg.norm(a - b), np.linalg.norm(a + b))))


def gd_step(x: np.ndarray) -> float:
    """GD's step on the separable data: eta = 1 / sigma_max(X)^2."""
    return 1.0 / np.linalg.norm(x, 2) ** 2


def soudry_asymptote(x: np.ndarray, y: np.ndarray, svm: dict, eta: float) -> dict:
    """w_tilde of GD's asymptote w(t) = w_hat ln t + w_tilde + o(1) (Soudry et al. 2018, Theorem 3 and eq. 2.2):
    eta exp(-z_n^T w_tilde) = alpha_n for every support vector n, z_n = y_n x_n, alpha the dual coefficients of
    w_hat = sum_n alpha_n z_n. Solved by least squares (the least-norm solution); `determined` says whether the
    support vectors span R^d (otherwise the part of w_tilde orthogonal to them is not fixed by these equations
    and is left at zero)."""
    z = (x * y[:, None])[svm["support"]]
    alpha = np.asarray(svm["alpha"])
    w_tilde = np.linalg.lstsq(z, -np.log(alpha / eta), rcond=None)[0]
    return {"w_tilde": w_tilde, "determined": bool(np.linalg.matrix_rank(z) == x.shape[1])}


LOSSES = {  # name -> (loss of the margins, -d loss / d margin)
    "logistic": (lambda u: np.logaddexp(0.0, -u), lambda u: np.exp(-np.logaddexp(0.0, u))),
    "exponential": (lambda u: np.exp(-u), lambda u: np.exp(-u)),
}


def recorded_steps(steps: int, count: int) -> list[int]:
    return sorted({int(t) for t in np.round(np.logspace(0, np.log10(steps), count))})


def separable_gd(x: np.ndarray, y: np.ndarray, loss: str, steps: int, record: list[int]) -> dict[int, np.ndarray]:
    """GD from w = 0 on sum_n loss(y_n w^T x_n), step 1 / sigma_max(X)^2; the iterates at the steps in `record`."""
    z = x * y[:, None]
    eta = gd_step(x)
    _, slope = LOSSES[loss]
    w = np.zeros(x.shape[1])
    wanted, out = set(record), {}
    for t in range(1, steps + 1):
        w = w + eta * z.T @ slope(z @ w)
        if t in wanted:
            out[t] = w.copy()
    return out


def separable_records(seed: int, s: Settings) -> list[dict]:
    x, y = separable_data(seed, s)
    svm = max_margin_direction(x, y)
    w_hat = svm["w"]
    reference = sklearn_max_margin(x, y)
    steps = sorted(set(recorded_steps(s.steps, s.recorded)) | {max(1, s.steps // 10)})  # T/10: a decade before the end
    asymptote = soudry_asymptote(x, y, svm, gd_step(x))
    w_tilde = asymptote["w_tilde"]
    predicted = {t: w_hat * np.log(t) + w_tilde for t in steps}
    out = []
    for loss in LOSSES:
        iterates = separable_gd(x, y, loss, s.steps, steps)
        norms = [float(np.linalg.norm(iterates[t])) for t in steps]
        late = [i for i, t in enumerate(steps) if t >= s.steps / 10]  # the last decade of steps
        growth = float(np.polyfit(np.log([steps[i] for i in late]), [norms[i] for i in late], 1)[0])
        residual = [float(np.linalg.norm(iterates[t] - predicted[t])) for t in steps]
        final = iterates[steps[-1]]
        out.append({
            "problem": "separable", "variant": f"{loss} loss", "seed": seed, "steps": s.steps,
            "final_angle_degrees": angle_degrees(final, w_hat),
            "final_angle_to_sklearn_degrees": angle_degrees(final, reference),
            "svm_qp_vs_sklearn_degrees": angle_degrees(w_hat, reference), "svm_kkt": svm["kkt"],
            "support_vectors": len(svm["support"]), "max_margin_norm": float(np.linalg.norm(w_hat)),
            "norm": norms[-1], "norm_growth_per_log_step": growth,
            "growth_over_max_margin_norm": growth / float(np.linalg.norm(w_hat)),
            "final_loss": float(LOSSES[loss][0](x @ final * y).sum()),
            "w_tilde_norm": float(np.linalg.norm(w_tilde)), "asymptote_determined": asymptote["determined"],
            "asymptote_angle_degrees": angle_degrees(predicted[steps[-1]], w_hat),
            "asymptote_residual": residual[-1], "asymptote_residual_decade_before": residual[late[0]],
            "series": {"step": steps, "angle_degrees": [angle_degrees(iterates[t], w_hat) for t in steps],
                       "asymptote_angle_degrees": [angle_degrees(predicted[t], w_hat) for t in steps],
                       "asymptote_residual": residual, "norm": norms}})
    return out


# ---- the experiment -------------------------------------------------------------------------------

def records(ctx: Context) -> list[dict]:
    s = SETTINGS.get(ctx.preset, SETTINGS["cpu"])
    out = []
    for seed in ctx.seeds:
        out += least_squares_records(seed, s) + separable_records(seed, s)
    return out


def _fmt(v, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


HEADER = ["problem", "variant", "seed", "steps T", "distance to its limit", "distance to A^+ b",
          "angle to max margin (deg)", "angle of w_hat ln T + w_tilde (deg)", "||w(T) - w_hat ln T - w_tilde||",
          "same at T/10", "||w|| growth per ln t / ||w_hat||"]


def table(recs: list[dict]) -> tuple[list[str], list[list]]:
    return HEADER, [[r["problem"], r["variant"], r["seed"], r["steps"], _fmt(r.get("distance_to_limit"), 3),
                     _fmt(r.get("distance_to_min_norm"), 3), _fmt(r.get("final_angle_degrees")),
                     _fmt(r.get("asymptote_angle_degrees")), _fmt(r.get("asymptote_residual"), 3),
                     _fmt(r.get("asymptote_residual_decade_before"), 3),
                     _fmt(r.get("growth_over_max_margin_norm"), 3)] for r in recs]


def _series(recs: list[dict], key: str) -> tuple[list[int], list[list[float]]]:
    """(steps, values over seeds at each step) of records that share their recorded steps."""
    steps = recs[0]["series"]["step"]
    return steps, [[r["series"][key][i] for r in recs] for i in range(len(steps))]


def growth(record: dict, i: int) -> float:
    """(||w|| at recorded step i+1 - at step i) / (ln of their ratio): the local slope of ||w(t)|| in ln t."""
    steps, norms = record["series"]["step"], record["series"]["norm"]
    return (norms[i + 1] - norms[i]) / float(np.log(steps[i + 1] / steps[i]))


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    """implicit-bias-least-squares.png, implicit-bias-separable.png and implicit-bias.md."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    ls = {v: [r for r in recs if r["problem"] == "least squares" and r["variant"] == v] for v in ("start zero", "start random")}
    if all(ls.values()):
        paths.append(series_figure(folder / "implicit-bias-least-squares.png", [
            {"series": {f"{v}: ||w_k - limit||": _series(rs, "distance_to_limit") for v, rs in ls.items()},
             "yscale": "log", "xlabel": "GD step k", "ylabel": "distance", "title": "distance to the predicted limit "
             "(A^+ b; from w_0: A^+ b + (I - A^+ A) w_0)"},
            {"series": {f"{v}: ||w_k||": _series(rs, "norm") for v, rs in ls.items()},
             "hlines": {"||A^+ b|| (limit from 0)": float(np.mean([r["min_norm"] for r in ls["start zero"]])),
                        "||A^+ b + (I - A^+ A) w_0|| (limit from w_0)":
                            float(np.mean([r["limit_norm"] for r in ls["start random"]]))},
             "xlabel": "GD step k", "ylabel": "norm", "title": "norm of the iterate"}],
            f"Lecture 002: GD on under-determined least squares ({recs[0]['steps'] if recs else ''} steps)"))
    sep = {v: [r for r in recs if r["problem"] == "separable" and r["variant"] == v] for v in ("logistic loss", "exponential loss")}
    sep = {v: rs for v, rs in sep.items() if rs}
    if sep:
        first = next(iter(sep.values()))
        steps = first[0]["series"]["step"]
        mid = [float(np.sqrt(a * b)) for a, b in zip(steps, steps[1:])]
        paths.append(series_figure(folder / "implicit-bias-separable.png", [
            {"series": {**{v: _series(rs, "angle_degrees") for v, rs in sep.items()},
                        "asymptote w_hat ln t + w_tilde": _series(first, "asymptote_angle_degrees")},
             "xscale": "log", "yscale": "log", "xlabel": "GD step t", "ylabel": "angle (degrees)",
             "title": "angle between w(t) and the max-margin w_hat"},
            {"series": {v: _series(rs, "asymptote_residual") for v, rs in sep.items()}, "xscale": "log", "yscale": "log",
             "xlabel": "GD step t", "ylabel": "||w(t) - w_hat ln t - w_tilde||",
             "title": "distance to Soudry et al.'s asymptote (-> 0)"},
            {"series": {f"||w(t)||, {v}": _series(rs, "norm") for v, rs in sep.items()}, "xscale": "log",
             "xlabel": "GD step t", "ylabel": "norm", "title": "norm of w(t)"},
            {"series": {v: (mid, [[growth(r, i) for r in rs] for i in range(len(mid))]) for v, rs in sep.items()},
             "hlines": {"||w_hat|| (seed mean)": float(np.mean([r["max_margin_norm"] for r in first]))},
             "xscale": "log", "xlabel": "GD step t", "ylabel": "d||w|| / d ln t",
             "title": "growth of ||w(t)|| per unit of ln t (-> ||w_hat||)"}],
            "Soudry et al. 2018 (lecture 002): GD on separable data converges in direction to the hard-margin SVM"))
    text = ("# implicit-bias: lecture 002 (GD on least squares and on separable data)\n\n"
            "Synthetic problems in float64 numpy, one per seed (see the module docstring of "
            "badminima/experiments/paper002/implicit_bias.py). (a) GD from w_0 on an under-determined least-squares problem "
            "converges to A^+ b + (I - A^+ A) w_0 (the minimum-norm interpolant from w_0 = 0). (b) GD on separable "
            "data with logistic or exponential loss: w(t) follows Soudry et al.'s asymptote w_hat ln t + w_tilde, "
            "w_hat the hard-margin SVM (a QP, checked against scikit-learn's SVC) and w_tilde fixed by its support "
            "vectors (eta exp(-y_n x_n^T w_tilde) = alpha_n); the table gives the distance to it at T and T/10 "
            "(it shrinks), the angle of w(T) to w_hat beside the angle of the asymptote at T, and the slope of "
            "||w|| against ln t over the last decade over ||w_hat|| (1 in the limit). The angle falls like 1/ln t "
            "only once ||w_hat|| ln t dwarfs ||w_tilde||, far beyond these runs (see ||w_tilde|| / ||w_hat|| "
            "below against ln T).\n\n" + markdown_table(*table(recs)))
    extra = [[r["variant"], r["seed"], _fmt(r["svm_qp_vs_sklearn_degrees"], 3), r["svm_kkt"], r["support_vectors"],
              _fmt(r["max_margin_norm"]), _fmt(r["w_tilde_norm"]), r["asymptote_determined"],
              _fmt(r["w_tilde_norm"] / r["max_margin_norm"], 3), _fmt(float(np.log(r["steps"])), 3), _fmt(r["norm"]),
              _fmt(r["final_loss"], 3)]
             for r in recs if r["problem"] == "separable"]
    if extra:
        text += ("\n## Separable data: the reference and the iterate\n\n"
                 + markdown_table(["loss", "seed", "QP vs SVC angle (deg)", "KKT holds", "support vectors", "||w_hat||",
                                   "||w_tilde||", "w_tilde fixed by the SVs", "||w_tilde|| / ||w_hat||", "ln T",
                                   "||w(T)||", "final loss"], extra))
    md = folder / "implicit-bias.md"
    md.write_text(text)
    return [md] + paths


register_experiment(Experiment(
    "implicit-bias", records, table, render,
    scale=lambda ctx: f"synthetic linear problems (float64 numpy), {ctx.preset} preset"))
