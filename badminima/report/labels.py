"""Readable names for the records' keys, in one place: the report page, its Markdown tables and the figures
say "l2 path norm" where the records say `l2_path_norm` (the terminal's tables keep the short keys).

Units follow the records: accuracies and errors are in percent, angles in degrees, losses are cross-entropies
(nats) unless the key says otherwise. A key missing from LABELS still reads as words: underscores become
spaces, a `_percent` ending becomes " (%)" and a `_degrees` ending " (degrees)". Text that is not a bare key
(a header such as "||w_hat||" or "test acc %") is left as it is, but for the known keys in it
("pretrain epoch_100" -> "pretrain first epoch at 100% train accuracy").
"""
from __future__ import annotations

import re

LABELS = {
    # accuracies and errors (percent)
    "train_acc": "train accuracy (%)",
    "test_acc": "test accuracy (%)",
    "pretrain_train_acc": "pretraining train accuracy (%)",
    "train_error_percent": "train error (%)",
    "test_error_percent": "test error (%)",
    "error_gap_percent": "error gap, test - train (%)",
    "epoch_100": "first epoch at 100% train accuracy",
    "pretrain_epoch_100": "pretraining: first epoch at 100% train accuracy",
    # losses (cross-entropy)
    "train_loss": "train cross-entropy",
    "test_loss": "test cross-entropy",
    "normalized_train_loss": "normalized train cross-entropy",
    "normalized_test_loss": "normalized test cross-entropy",
    "normalized_gap": "normalized gap, test - train cross-entropy",
    "reference_loss": "reference train cross-entropy",
    # norms and distances
    "frobenius": "Frobenius norm",
    "l1_path_norm": "l1 path norm",
    "l2_path_norm": "l2 path norm",
    "spectral_product": "product of spectral norms",
    "parameter_norm": "parameter norm",
    "distance_travelled": "distance travelled",
    "product_of_normalization_factors": "product of layer Frobenius norms",
    # spectra, curvature, NTK
    "effective_rank": "effective rank",
    "max_eigenvalue": "largest Hessian eigenvalue",
    "min_eigenvalue": "smallest Hessian eigenvalue",
    "gradient_norm": "gradient norm",
    "relative_change": "relative NTK change",
    "correlation": "NTK correlation",
    # the runs' settings
    "replication_factor": "replication factor R",
    "zeroed_percent": "zeroed pixels N (%)",
    "random_label_fraction": "random-label fraction",
    "train_size": "training examples",
    "run_id": "run",
    "phase_id": "phase",
    "stop_reason": "stop reason",
}

_KEY = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_INNER_KEY = re.compile(r"(?<![\w|.^])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w|.])")  # not inside ||w_hat|| or a path
_ENDINGS = (("_percent", " (%)"), ("_degrees", " (degrees)"))


def readable(text: str) -> str:
    """The readable name of a record key (`l2_path_norm` -> "l2 path norm"; a stored measure's versioned key
    `l2_path_norm.v2` -> "l2 path norm (convention v2)"); any other text unchanged."""
    if not isinstance(text, str):
        return text
    versioned = re.fullmatch(r"([a-z][a-z0-9_]*)\.v(\d+)", text)
    if versioned:
        return f"{readable(versioned[1])} (convention v{versioned[2]})"
    if text in LABELS:
        return LABELS[text]
    if not _KEY.fullmatch(text):  # a header around a known key ("pretrain epoch_100") names it in words
        return _INNER_KEY.sub(lambda m: LABELS.get(m[0], m[0]), text)
    for ending, unit in _ENDINGS:
        if text.endswith(ending):
            return text[: -len(ending)].replace("_", " ") + unit
    return text.replace("_", " ")


def is_raw_key(text: str) -> bool:
    """True for a bare snake_case key (what a reader should never meet in a header, legend or caption)."""
    return bool(_KEY.fullmatch(text.strip()))
