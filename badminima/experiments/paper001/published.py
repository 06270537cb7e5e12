"""Numbers printed in paper 001 (Liao, Banburski, Poggio et al., "Generalization Puzzles in Deep Networks"),
shown beside ours in reports (never used to compute anything). Paper scale: CIFAR-10 with 50 000 training
examples unless said otherwise; losses are mean cross-entropies, errors fractions as printed."""

# Least-squares line of test against train cross-entropy of the normalized networks ("slope and intercept of the
# line of best fit", "ordinary and adjusted R2", "root mean square (RMSE)"), from the captions.
PAPER_001_FIGURE9_L1_FIT = {"slope": 0.8358, "intercept": 0.3783, "r2": 0.9998, "adjusted_r2": 0.9998, "rmse": 5.6567e-5}
PAPER_001_FIGURE10_FIT = {"slope": 0.836, "intercept": 0.377, "r2": 0.9998, "adjusted_r2": 0.9998, "rmse": 4.7651e-5}
PAPER_001_FIGURE10_TRAIN_LOSSES = (1.5e-4, 2.5e-3)  # "The losses range approximately from 1.5e-4 to 2.5e-3"
PAPER_001_FIGURE9_DIVISOR = 100  # "normalized layerwise by the L1 norm (divided by 100 ...)"

# Figure 20 / appendix K, MNIST (the 3-layer net), the 50K training images: f(x) of the most likely class.
PAPER_001_FIGURE20 = {"normalized_mean": 0.026683, "normalized_std": 0.007144,
                      "unnormalized_mean": 60.564373, "unnormalized_std": 16.214078}

# Figure 2c-d / appendix B: ResNet-56 "testing errors ranging from 7% to 9%" (percent).
PAPER_001_RESNET56_TEST_ERROR_PERCENT = (7.0, 9.0)

# Figure 1: a 5-layer ConvNet of 16 channels, "approximately 10000 parameters", 70 epochs of SGD, batch 100.
PAPER_001_FIGURE1_PARAMETERS = 10_000
