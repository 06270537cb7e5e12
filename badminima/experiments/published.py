"""Numbers published in the papers, shown beside ours in reports (never used to compute anything).

Paper 000 (Liu, Papailiopoulos, Achlioptas, NeurIPS 2020), Table 2: ResNet18 on CIFAR-10,
mean +- std over 5 seeds, accuracies in percent: (train mean, train std, test mean, test std).
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
