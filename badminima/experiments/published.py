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

# Paper 000, Table 1, CIFAR-10 block (mean of 5 runs). The extracted header is garbled; we read the seven
# columns, in order, as d(W0R->W0A), d(W0R->WSR), d(W0R->WVR), d(W0R->WVA), d(W0R->WSA), d(W0A->WVA),
# d(W0A->WSA) (see experiments/distances.py), which fits the text of section 3.3 (about 0.9 from a random
# init for either labelling, about 0.2 for vanilla SGD from the adversarial init).
PAPER_000_TABLE1_SOURCE = ("paper 000, Table 1, CIFAR-10 rows (paper scale, mean of 5 runs; column reading "
                           "ours, the extracted header is garbled)")
PAPER_000_TABLE1 = {
    "DenseNet40 / CIFAR-10": (0.810, 3.715, 0.946, 0.950, 3.715, 0.347, 28.669),
    "ResNet18 / CIFAR-10": (0.953, 3.917, 0.873, 0.879, 3.902, 0.207, 12.421),
    "ResNet50 / CIFAR-10": (0.894, 8.552, 0.919, 0.923, 8.608, 0.194, 36.311),
    "VGG16 / CIFAR-10": (0.907, 3.464, 0.950, 0.953, 3.433, 0.264, 26.838),
}
