"""Numbers published in the papers, shown beside ours in reports (never used to compute anything).

Paper 000 (Liu, Papailiopoulos, Achlioptas, NeurIPS 2020), Table 2: ResNet18 on CIFAR-10,
mean +- std over 5 seeds, accuracies in percent: (train mean, train std, test mean, test std).

Paper 000, Table 1 (mean of 5 runs): seven relative distances per (dataset, model), 16 rows. The
extracted header of the table is unreadable, so the order of its columns is derived here.

Notation (section 3.3): d(X -> Y) = ||W_Y - W_X||_F / ||W_X||_F, relative to the first model. W0R is
the random init, W0A the adversarial init grown from it, WVR/WSR the vanilla/SOTA solutions from W0R,
WVA/WSA those from W0A. Write c1..c7 for a row's printed numbers, in printed order.

Which readings are geometrically possible. With r = ||W0R|| and rho = ||W0A|| / ||W0R||, a reading gives
Euclidean lengths between the points 0, W0R, W0A, WVR, WSR, WVA, WSA: |0 W0R| = r, |0 W0A| = rho r,
|W0R X| = r d(W0R -> X) for X in {W0A, WVR, WSR, WVA, WSA}, |W0A Y| = rho r d(W0A -> Y) for Y in
{WVA, WSA}. The graph of known lengths is chordal: three triangles sharing the edge W0R-W0A,
(0, W0R, W0A), (W0R, W0A, WVA), (W0R, W0A, WSA), and two pendant edges to WVR and WSR. A partial
Euclidean distance matrix on a chordal graph can be completed iff every fully specified clique is
Euclidean (Bakonyi and Johnson, SIAM J. Matrix Anal. Appl. 16, 1995), and a triangle is Euclidean iff
its sides satisfy the triangle inequality. Every inequality is linear in rho, so a row is possible iff
the intersection of three intervals (`table1_rho_bounds`) is not empty:
    rho in [1 - d(W0R->W0A), 1 + d(W0R->W0A)]                                      (0, W0R, W0A)
    rho d(W0A->Y) in [|d(W0R->W0A) - d(W0R->Y)|, d(W0R->W0A) + d(W0R->Y)]   for Y = WVA, WSA.

What follows.
- The reading c1 = d(W0R->W0A), c3 = d(W0R->WVR) (this module's earlier one) is impossible on 8 of the
  16 rows; e.g. Restricted ImageNet / VGG16: 1 - 0.836 = 0.164 > (0.836 + 2.871) / 83.035 = 0.045.
- Of the 7! = 5040 assignments of the seven distances to the seven columns, 696 are possible on every
  row. Section 3.3's text leaves exactly four of them: from a random init SGD travels "about 0.9"
  whether the labels are random (d(W0R->W0A)) or true (d(W0R->WVR)), so both lie in {c1, c3, c4}, the
  columns near 0.9; vanilla SGD from the adversarial init travels "approximately 0.2", so
  d(W0A->WVA) = c6; SOTA SGD travels "nearly an order of magnitude" further from W0A than from W0R, so
  d(W0A->WSA) = c7 and d(W0R->WSR) is c2 or c5. All four have c1 = d(W0R->WVR), c6 and c7 as said,
  {c3, c4} = {d(W0R->W0A), d(W0R->WVA)} and {c2, c5} = {d(W0R->WSR), d(W0R->WSA)}. Within each pair the
  two values differ by at most 2.4% on every row, so which member is which changes no comparison; we
  keep the earlier reading's order inside each pair (PAPER_000_TABLE1_COLUMNS).
- Under this reading rho = ||W0A|| / ||W0R|| lies between 0.02 and 0.48 on every row (the bounds of
  each row are in tests/experiments/paper000/test_published_table1.py): in the paper's runs the adversarial
  init has a much smaller norm than the random one. `distances` records our rho beside the distances.
"""

PAPER_000_TABLE2_SOURCE = "paper 000, Table 2 (ResNet18, CIFAR-10, paper scale, 5 seeds)"
PAPER_000_TABLE2 = {
    ("random", "vanilla"): (100.000, 0.000, 84.838, 0.193),
    ("adversarial", "vanilla"): (100.000, 0.000, 56.024, 0.883),
    ("random", "DA"): (100.000, 0.000, 93.370, 0.115),
    ("adversarial", "DA"): (99.995, 0.003, 89.402, 0.175),
    ("random", "l2"): (100.000, 0.000, 87.352, 0.055),
    ("adversarial", "l2"): (100.000, 0.000, 83.172, 3.732),
    ("random", "momentum"): (100.000, 0.000, 89.200, 0.176),
    ("adversarial", "momentum"): (100.000, 0.000, 89.016, 0.142),
    ("random", "DA+l2"): (100.000, 0.000, 94.680, 0.071),
    ("adversarial", "DA+l2"): (100.000, 0.000, 94.192, 0.173),
    ("random", "DA+momentum"): (100.000, 0.000, 93.448, 0.242),
    ("adversarial", "DA+momentum"): (100.000, 0.001, 92.756, 0.347),
    ("random", "l2+momentum"): (100.000, 0.000, 89.050, 0.110),
    ("adversarial", "l2+momentum"): (100.000, 0.000, 88.932, 0.373),
    ("random", "sota"): (100.000, 0.000, 95.324, 0.086),
    ("adversarial", "sota"): (100.000, 0.001, 95.346, 0.098),
}

# The printed columns c1..c7 of Table 1, as derived in the module docstring.
PAPER_000_TABLE1_COLUMNS = ("W0R->WVR", "W0R->WSR", "W0R->W0A", "W0R->WVA", "W0R->WSA", "W0A->WVA", "W0A->WSA")
PAPER_000_TABLE1_SOURCE = ("paper 000, Table 1 (paper scale, mean of 5 runs; the order of its columns is derived "
                           "from the geometry of its rows and section 3.3, see experiments/paper000/published.py)")
# (dataset, model) -> c1..c7 as printed. The second block's dataset label is extracted as "CIFAR 10"; it is
# CIFAR-100, the one dataset of section 2's four (CIFAR-10, CIFAR-100, CINIC-10, Restricted ImageNet) missing.
PAPER_000_TABLE1 = {
    ("CIFAR-10", "DenseNet40"): (0.810, 3.715, 0.946, 0.950, 3.715, 0.347, 28.669),
    ("CIFAR-10", "ResNet18"): (0.953, 3.917, 0.873, 0.879, 3.902, 0.207, 12.421),
    ("CIFAR-10", "ResNet50"): (0.894, 8.552, 0.919, 0.923, 8.608, 0.194, 36.311),
    ("CIFAR-10", "VGG16"): (0.907, 3.464, 0.950, 0.953, 3.433, 0.264, 26.838),
    ("CIFAR-100", "DenseNet40"): (0.917, 2.008, 0.946, 0.968, 1.980, 0.538, 13.290),
    ("CIFAR-100", "ResNet18"): (0.915, 2.609, 0.852, 0.862, 2.597, 0.210, 7.243),
    ("CIFAR-100", "ResNet50"): (0.917, 4.941, 0.925, 0.927, 4.882, 0.172, 24.598),
    ("CIFAR-100", "VGG16"): (0.919, 2.029, 0.960, 0.962, 2.035, 0.253, 19.388),
    ("CINIC-10", "DenseNet40"): (0.917, 1.415, 0.955, 0.976, 1.440, 0.491, 12.102),
    ("CINIC-10", "ResNet18"): (0.836, 1.565, 0.942, 0.951, 1.560, 0.212, 10.961),
    ("CINIC-10", "ResNet50"): (0.837, 3.260, 0.952, 0.955, 3.274, 0.157, 24.940),
    ("CINIC-10", "VGG16"): (0.844, 1.406, 0.974, 0.977, 1.397, 0.241, 17.916),
    ("Restricted ImageNet", "DenseNet40"): (0.940, 3.378, 0.966, 0.982, 3.377, 0.520, 39.314),
    ("Restricted ImageNet", "ResNet18"): (0.849, 3.154, 0.969, 0.973, 3.164, 0.163, 47.184),
    ("Restricted ImageNet", "ResNet50"): (0.883, 7.123, 0.913, 0.916, 7.139, 0.164, 30.841),
    ("Restricted ImageNet", "VGG16"): (0.836, 2.885, 0.985, 0.986, 2.871, 0.172, 83.035),
}


def table1_rho_bounds(distances: dict[str, float]) -> tuple[float, float]:
    """The interval of rho = ||W0A|| / ||W0R|| that the distances of one Table 1 row allow (named as in
    PAPER_000_TABLE1_COLUMNS); empty (low > high) when no Euclidean configuration has them."""
    ra = distances["W0R->W0A"]
    low, high = 1 - ra, 1 + ra
    for end in ("VA", "SA"):
        from_r, from_a = distances["W0R->W" + end], distances["W0A->W" + end]
        low, high = max(low, abs(ra - from_r) / from_a), min(high, (ra + from_r) / from_a)
    return low, high
