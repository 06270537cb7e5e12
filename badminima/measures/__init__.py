"""Measures: pure functions of (model, data) for the quantities the papers study.

One module per family: distance (000 sec 3.3), norms (000 sec 3.6, 001), normalized (001), margins
(001 appendix A, 000 Figure 1), rank (004 sec 5), attacks (000 sec 3.7, 004 sec 5), curvature (004 sec 2), spectrum (top-k eigenvalues, SLQ density),
ntk (004 sec 4); layers holds what they share (weight layers, batch-norm folding, input sizes).
`command` computes them for a stored run (the `badminima measure` command).
"""
from .attacks import fgsm, fgsm_accuracy, pgd, pgd_accuracy, robust_accuracy  # noqa: F401
from .curvature import (HessianOperator, extreme_eigenvalues_power, full_batch_loss_and_gradient,  # noqa: F401
                        gradient_norm, hessian_operator, hutchinson_trace, lanczos_eigenvalue,
                        power_iteration)
from .distance import relative_distance, relative_distance_per_layer  # noqa: F401
from .layers import fold_batchnorm, inner_layers, input_sizes, is_shortcut, weight_layers  # noqa: F401
from .margins import (boundary_length, class_regions, decision_boundary_summary, decision_grid,  # noqa: F401
                      margin_percentile, margin_summary, output_margins)
from .normalized import (L1_DIVISOR, normalization_factors, normalized_cross_entropy, normalized_network,  # noqa: F401
                         output_normalized_cross_entropy)
from .norms import (conv_operator_norm, conv_singular_values, frobenius_norm, l1_path_norm, l2_path_norm,  # noqa: F401
                    layer_frobenius_norms, layer_singular_values, layer_table, path_norm, product_of_frobenius_norms,
                    spectral_norm_product, spectral_norms, sum_of_frobenius_norms)
from .ntk import empirical_ntk, ntk_change, ntk_correlation, ntk_norm, ntk_relative_change  # noqa: F401
from .spectrum import density_on_grid, spectral_density, spectral_moments, top_eigenvalues  # noqa: F401
from .rank import (effective_rank, entropy_effective_rank, layer_ranks, numerical_rank,  # noqa: F401
                   stable_rank)
