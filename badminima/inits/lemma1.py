"""`lemma1`: an MLP that computes a trained linear classifier on every training point, with every ReLU
active (paper 004, Lemma 1 and its proof in appendix A.1; Theorem 1 makes it a local minimum, Table 1).

1. The linear classifier G(z) = A z + b is multinomial logistic regression on the inputs the MLP sees (the
   training inputs after the model's standardization, flattened), fitted with weight decay on A:
   min_{A,b} mean_i CE(A z_i + b, y_i) + linear_l2/2 ||A||_F^2, by full-batch L-BFGS in float64 from zero
   (deterministic). The paper trains such a classifier "with weight decay" and does not give the coefficient.
2. With A = U S V^T (thin SVD, s = min(classes, inputs) singular triplets) and hidden widths n_1..n_{L-1} >= s:
   A_1 = [S V^T; 0], b_1 = c 1 with c = max_{i,j} |(A_1 z_i)_j| + 1 over the training set; for the middle
   layers A_l = [[I_s, 0], [0, 0]], b_l = [0_s; c 1]; the output layer A_L = [U 0], b_L = -c A_L 1 + b.
   Then F(z_i) = A z_i + b, and every hidden pre-activation on a training point is >= 1 > 0.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import Dataset
from ..errors import BadInput
from ..spec import InitSpec


def fit_logistic_regression(z: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float,
                            max_iter: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, b), float64, minimizing mean CE(z A^T + b, y) + l2/2 ||A||_F^2 (the bias is not penalized)."""
    z = z.double()
    weight = torch.zeros(num_classes, z.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, tolerance_grad=1e-10, tolerance_change=1e-15,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(z @ weight.T + bias, y) + 0.5 * l2 * (weight * weight).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return weight.detach(), bias.detach()


def mlp_linear_layers(net: nn.Module) -> list[nn.Linear]:
    """The Linear layers of a plain ReLU MLP (Flatten, Linear, ReLU, ..., Linear); BadInput for anything else."""
    modules = list(net.children()) if isinstance(net, nn.Sequential) else [net]
    if not all(isinstance(m, (nn.Flatten, nn.Linear, nn.ReLU)) for m in modules):
        raise BadInput("the lemma1 init needs a plain ReLU MLP (model mlp): Lemma 1 is stated for MLPs")
    return [m for m in modules if isinstance(m, nn.Linear)]


def lemma1_parameters(weight: torch.Tensor, bias: torch.Tensor, widths: list[int],
                      z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (A_l, b_l) of an MLP with hidden widths `widths` equal to z -> weight z + bias on the rows of z
    (appendix A.1 of paper 004; see the module docstring), float64."""
    n, m = weight.shape
    u, sv, vh = torch.linalg.svd(weight.double(), full_matrices=False)  # (n, k), (k,), (k, m), k = min(n, m)
    s = len(sv)
    if widths and min(widths) < s:
        rank = int((sv > sv.max() * 1e-12).sum())
        if min(widths) < rank:
            raise BadInput(f"lemma1: the linear classifier has rank {rank}, above the smallest hidden width {min(widths)}")
        u, sv, vh, s = u[:, :min(widths)], sv[:min(widths)], vh[:min(widths)], min(widths)
    if not widths:
        return [(weight.double(), bias.double())]
    first = torch.zeros(widths[0], m, dtype=torch.float64)
    first[:s] = sv[:, None] * vh
    c = float((z.double() @ first.T).abs().max()) + 1.0
    layers = [(first, torch.full((widths[0],), c, dtype=torch.float64))]
    for fan_in, width in zip(widths[:-1], widths[1:]):
        a = torch.zeros(width, fan_in, dtype=torch.float64)
        a[:s, :s] = torch.eye(s, dtype=torch.float64)
        b = torch.full((width,), c, dtype=torch.float64)
        b[:s] = 0.0
        layers.append((a, b))
    last = torch.zeros(n, widths[-1], dtype=torch.float64)
    last[:, :s] = u
    layers.append((last, bias.double() - c * last.sum(1)))
    return layers


def standardized_inputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What `model.net` sees: the Classifier's standardization of x, flattened (float64, CPU)."""
    mean, std = model.mean.detach().cpu().double(), model.std.detach().cpu().double()
    return ((x.cpu().double() - mean) / std).flatten(1)


@torch.no_grad()
def lemma1_transform(model: nn.Module, init: InitSpec, generator: torch.Generator, data: Dataset) -> None:
    """The random init's weights replaced by Lemma 1's construction of the fitted linear classifier (no randomness)."""
    del generator
    linears = mlp_linear_layers(model.net)
    z = standardized_inputs(model, data.x_train)
    with torch.enable_grad():
        weight, bias = fit_logistic_regression(z, data.y_train.cpu(), data.num_classes, init.linear_l2)
    params = lemma1_parameters(weight, bias, [m.out_features for m in linears[:-1]], z)
    for layer, (a, b) in zip(linears, params):
        layer.weight.copy_(a.to(layer.weight))
        layer.bias.copy_(b.to(layer.bias))
