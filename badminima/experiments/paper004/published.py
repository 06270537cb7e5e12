"""Paper 004's published numbers (Goldblum, Geiping, Schwarzschild, Moeller & Goldstein, "Truth or
backpropaganda? An empirical investigation of deep learning theory", ICLR 2020), shown beside ours."""
from __future__ import annotations

SOURCE = "Goldblum et al., ICLR 2020 (paper 004)"

# Table 1, MLP on CIFAR-10: row -> (loss, grad norm, min Hessian eigenvalue) at init, then after training
TABLE1 = {
    "default": (4.5963, 0.5752, -1.5549, 0.0061, 0.0074, 0.0007),
    "lemma1": (1.5702, 0.0992, 0.03125, 1.5699, 0.0414, 0.0156),
    "bias+20": (31.204, 343.99, -1.7421, 2.3301, 0.0090, 0.0005),
    "bias U(-50,50)": (51.445, 378.36, -430.49, 2.3153, 0.0048, 0.0000),
    "bias U(-10,10) NM": (12.209, 42.454, -47.733, 0.2198, 0.0564, 0.0013),
}
TABLE1_MAX_EIGENVALUE_LEMMA1 = 113598.85  # Remark 2.2: after training from the Lemma 1 init
# Table 5, ResNet-18 on CIFAR-10, vanilla gradient descent: row -> (loss, grad norm) at init, then after training
TABLE5 = {
    "default": (2.30312, 0.05000, 0.00014, 0.01410),
    "zero": (2.30258, 0.00025, 2.30259, 0.00013),
    "bias+20": (12.95754, 590.12170, 2.30658, 0.00004),
    "bias U(-10,10)": (12.96790, 214.68600, 2.30260, 0.00123),
    "bias U(-50,50)": (84.67800, 1190.23500, 2.30260, 0.00702),
}
# Table 6, ResNet-18 on CIFAR-100, same layout
TABLE6 = {
    "default": (4.60591, 0.02346, 0.00030, 0.00466),
    "zero": (4.60517, 0.00019, 4.60517, 0.00003),
    "bias+20": (34.37053, 655.51569, 4.60517, 0.00015),
    "bias U(-100,100)": (178.74391, 2615.72534, 4.60517, 0.00003),
}
# Table 7, MLP on CIFAR-100, same layout
TABLE7 = {
    "default": (4.60670, 0.16154, 0.02579, 0.01482),
    "zero": (4.60517, 0.00019, 4.60517, 0.00011),
    "bias+10": (15.77286, 359.65710, 4.60517, 0.00079),
    "bias U(-5,5)": (8.69149, 63.59983, 2.15917, 0.09718),
    "bias U(-10,10)": (13.02693, 158.78347, 2.58368, 0.09233),
}

# Table 3 (normalized CIFAR-10; our models always standardize their inputs): test accuracy %, mean (standard
# error) over 10 runs: no weight decay, weight decay, norm-bias
TABLE3 = {
    "ResNet-18": ((93.40, 0.04), (94.76, 0.03), (94.99, 0.05)),
    "DenseNet-40": ((90.78, 0.08), (92.26, 0.06), (92.46, 0.04)),
    "MobileNetV2": ((92.84, 0.05), (93.64, 0.05), (93.64, 0.03)),
    "ResNet-20 Fixup": ((10.00, 0.00), (91.42, 0.04), (91.55, 0.07)),
    "MLP (4 layers)": ((58.88, 0.10), (58.95, 0.07), (59.13, 0.09)),
}
# Table 2 (non-normalized CIFAR-10) and Table 8 (normalized CIFAR-100), same layout
TABLE2 = {
    "ResNet-18": ((93.46, 0.05), (94.06, 0.07), (94.86, 0.05)),
    "DenseNet-40": ((89.26, 0.08), (92.27, 0.06), (92.49, 0.06)),
    "MobileNetV2": ((92.88, 0.06), (92.88, 0.09), (93.50, 0.09)),
}
TABLE8 = {
    "ResNet-18": ((71.73, 0.25), (74.66, 0.17), (75.90, 0.16)),
    "DenseNet-40": ((65.61, 0.33), (68.98, 0.25), (69.24, 0.11)),
    "ResNet-20 Fixup": ((1.000, 0.00), (65.08, 0.30), (65.58, 0.17)),
}
# Appendix A.5: mean parameter l2 norm of ResNet-20 with Fixup after training (CIFAR-10), by regularizer
FIXUP_PARAMETER_NORMS = {"weight decay": 24.51, "norm-bias (absolute)": 31.62}
NEGATIVE_WEIGHT_DECAY_CLAIM = ("ResNet-18 on CIFAR-10 with negative weight decay: test accuracy above 90% while the "
                               "parameter norm blows up; still below the regularized runs")

# Table 9 (MLP, CIFAR-10): method -> (train %, clean test %, robust % at eps 8/255, robust % at eps 1/255)
TABLE9 = {"natural": (100.00, 58.79, 3.76, 28.94), "RankMax": (99.97, 58.19, 3.72, 26.63),
          "RankMin": (100.00, 58.06, 3.76, 28.48)}
# Table 4 (ResNet-18, CIFAR-10): method -> (clean test %, robust % at 8/255, robust % at 1/255)
TABLE4 = {"natural": (94.66, 0.00, 31.98), "RankMax": (93.66, 0.00, 22.01), "RankMin": (94.44, 0.00, 31.53),
          "adversarial": (79.37, 35.38, 74.27), "RankMaxAdv": (80.00, 35.55, 74.92),
          "RankMinAdv": (78.34, 33.68, 73.19)}
# Table 10 (ResNet-18, CIFAR-100): method -> (train %, clean test %, robust % at 8/255, robust % at 1/255)
TABLE10 = {"natural": (99.97, 73.08, 0.00, 17.5), "RankMax": (99.90, 72.67, 0.00, 16.95),
           "RankMin": (99.92, 72.57, 0.00, 17.63), "adversarial": (99.92, 50.88, 17.81, 45.99),
           "RankMaxAdv": (99.73, 51.04, 16.80, 45.74), "RankMinAdv": (99.91, 50.22, 16.64, 45.03)}
