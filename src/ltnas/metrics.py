"""Classification metrics that stay honest on long-tailed data.

Overall accuracy on a long-tailed test set is dominated by the head classes, so every result is
reported per class and per shot group as well: many / medium / few-shot classes have > 100, 20-100
and < 20 training images on CIFAR-LT-sized data (the convention since LDAM-DRW (Cao et al., 2019)), and the same fractions of the largest
class on smaller data (`shot_thresholds`).

Everything here is a pure function of predictions and labels. Inputs may be torch tensors, NumPy
arrays or plain lists, and the results are plain Python numbers and lists, ready for `json.dump`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ltnas.errors import LtnasError

SHOT_GROUPS: tuple[str, ...] = ("many", "medium", "few")


# CIFAR-LT's convention (Liu et al., 2019; LDAM-DRW): many > 100, few < 20 training images, set for
# data whose largest class has 500 (CIFAR-100-LT) or 5,000 (CIFAR-10-LT) images.
CIFAR_MANY, CIFAR_FEW = 100, 20


def shot_thresholds(train_counts: list[int], many: int | None = None, few: int | None = None) -> tuple[int, int]:
    """(many, few) thresholds: those given, else by the size of the largest class n_max —
    many = min(100, n_max // 5), few = min(20, n_max // 25). That is CIFAR's 100 / 20 for data the
    size of CIFAR-LT (n_max >= 500) and the same fractions of n_max for smaller data (e.g. n_max 124:
    many > 24, few < 4), so a small dataset is not all "medium" and "few"."""
    n_max = max(train_counts, default=0)
    many = min(CIFAR_MANY, n_max // 5) if many is None else many
    few = min(CIFAR_FEW, n_max // 25) if few is None else few
    return many, few


def shot_groups(train_counts: list[int], many: int | None = None, few: int | None = None) -> dict[str, list[int]]:
    """Split class indices by training-set size: > `many` images, `few`..`many` inclusive, < `few`
    (thresholds by `shot_thresholds` unless given)."""
    many, few = shot_thresholds(train_counts, many, few)
    return {
        "many": [c for c, n in enumerate(train_counts) if n > many],
        "medium": [c for c, n in enumerate(train_counts) if few <= n <= many],
        "few": [c for c, n in enumerate(train_counts) if n < few],
    }


def classification_metrics(
    predictions: Any, labels: Any, num_classes: int, train_counts: list[int],
    shots: tuple[int | None, int | None] = (None, None),
) -> dict[str, Any]:
    """Accuracy overall, class-balanced, per class and per shot group, plus the confusion matrix.

    `predictions` are class indices of shape (N,), or scores of shape (N, num_classes) whose
    argmax is taken. `labels` are class indices of shape (N,). Accuracies are fractions in [0, 1].
    A class without test samples has recall `None` and is left out of every mean, so a test set
    that lacks a class is not penalised for it.
    """
    predicted, true = _validated_inputs(predictions, labels, num_classes, train_counts)
    confusion = confusion_matrix(predicted, true, num_classes)
    recalls = per_class_recall(confusion)
    precision, f1 = precision_and_f1(predicted, true, num_classes)
    thresholds = shot_thresholds(list(train_counts), *shots)
    groups = shot_groups(list(train_counts), *thresholds)
    return {
        "overall": float(np.trace(confusion) / confusion.sum()),
        "balanced": _mean_defined(recalls),
        "per_class": recalls,
        **{name: _mean_defined([recalls[c] for c in classes]) for name, classes in groups.items()},
        "groups": groups,
        "shot_thresholds": {"many": thresholds[0], "few": thresholds[1]},
        "confusion": confusion.tolist(),
        "num_samples": int(true.size),
        "precision": precision,
        "f1": f1,
        "support": confusion.sum(axis=1).tolist(),        # test images of each class
        "predicted_counts": confusion.sum(axis=0).tolist(),  # how often each class was predicted
    }


TOP_K = 5  # eval.json's "top5": ImageNet's second accuracy (FairDARTS (Chu et al., 2020)'s Table 2, DARTS's Table 3)


def top_k_accuracy(ranked: Any, labels: Any, num_classes: int, k: int = TOP_K) -> float | None:
    """Share of samples whose true class is among their k highest-scored classes: (1/N) Σ_i [y_i ∈ top-k(i)].

    `ranked` holds each sample's classes by falling score, shape (N, m) with m >= k (only the first k
    columns count; scores must be ranked first, e.g. `logits.topk(k).indices`). None when num_classes <= k,
    where every sample is trivially right.
    """
    if num_classes <= k:
        return None
    ranked, true = _as_numpy(ranked), _as_numpy(labels)
    if ranked.ndim != 2 or ranked.shape[1] < k or ranked.shape[0] != true.size:
        raise LtnasError(f"top-{k} accuracy needs each of the {true.size} samples' {k} best classes (shape "
                         f"(N, >= {k})), got shape {tuple(ranked.shape)}")
    if true.size == 0:
        raise LtnasError("got no test samples; evaluate on a non-empty test set")
    return float((ranked[:, :k] == true[:, None]).any(axis=1).mean())


def precision_and_f1(predicted: np.ndarray, true: np.ndarray, num_classes: int) -> tuple[list, list]:
    """Per-class precision TP / (TP + FP) and F1 = 2PR / (P + R) = 2 TP / (2 TP + FP + FN) (scikit-learn's
    precision_recall_fscore_support, tested equal; in numpy, which spares each process the second it takes to
    import sklearn.metrics); a class never predicted has precision None, a class with no test images F1 None
    (nothing to measure)."""
    hits = np.bincount(true[predicted == true], minlength=num_classes)  # TP
    predicted_counts = np.bincount(predicted, minlength=num_classes)  # TP + FP
    support = np.bincount(true, minlength=num_classes)  # TP + FN
    return ([float(hits[c] / predicted_counts[c]) if predicted_counts[c] else None for c in range(num_classes)],
            [float(2 * hits[c] / (predicted_counts[c] + support[c])) if support[c] else None
             for c in range(num_classes)])


def confusion_matrix(predicted: np.ndarray, true: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of shape (num_classes, num_classes): rows are the true class, columns the prediction."""
    # One bincount over the flattened (true, predicted) pair index is a 2-D histogram in a single pass.
    flat = np.bincount(true * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def per_class_recall(confusion: np.ndarray) -> list[float | None]:
    """Recall of each class (diagonal over row sum); `None` where the class has no test samples."""
    support = confusion.sum(axis=1)
    return [float(confusion[c, c] / n) if n > 0 else None for c, n in enumerate(support)]


def _mean_defined(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _validated_inputs(
    predictions: Any, labels: Any, num_classes: int, train_counts: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Turn the inputs into two int64 vectors, or raise `LtnasError` saying what to fix."""
    if num_classes < 1:
        raise LtnasError(f"num_classes must be at least 1, got {num_classes}; pass the dataset's class count")
    if len(train_counts) != num_classes:
        raise LtnasError(
            f"train_counts has {len(train_counts)} entries but num_classes is {num_classes}; "
            "pass one training-image count per class"
        )
    scores = _as_numpy(predictions)
    if scores.ndim == 2:
        if scores.shape[1] != num_classes:
            raise LtnasError(
                f"predictions are scores with {scores.shape[1]} columns but num_classes is {num_classes}; "
                "pass scores of shape (N, num_classes) or class indices of shape (N,)"
            )
        scores = scores.argmax(axis=1)
    predicted = _as_class_indices(scores, "predictions", num_classes)
    true = _as_class_indices(_as_numpy(labels), "labels", num_classes)
    if predicted.size != true.size:
        raise LtnasError(
            f"got {predicted.size} predictions for {true.size} labels; pass one prediction per test sample"
        )
    if true.size == 0:
        raise LtnasError("got no test samples; evaluate on a non-empty test set")
    return predicted, true


def _as_numpy(values: Any) -> np.ndarray:
    # Duck-typed so that this module never imports torch: a tensor (on any device) has `detach`.
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _as_class_indices(values: np.ndarray, name: str, num_classes: int) -> np.ndarray:
    """`values` as an int64 vector of indices in 0..num_classes-1, or `LtnasError`."""
    if values.ndim != 1:
        raise LtnasError(f"{name} has shape {tuple(values.shape)}; pass class indices of shape (N,)")
    if values.size and not np.issubdtype(values.dtype, np.integer):
        # Whole-valued floats (e.g. labels stored as float32) are accepted; anything else is a mix-up.
        if not np.issubdtype(values.dtype, np.number) or not np.all(np.mod(values, 1) == 0):
            raise LtnasError(f"{name} must be whole class indices, got dtype {values.dtype}; pass integers")
    indices = values.astype(np.int64)
    out_of_range = indices[(indices < 0) | (indices >= num_classes)]
    if out_of_range.size:
        raise LtnasError(
            f"{name} contain class index {int(out_of_range[0])}, outside 0..{num_classes - 1}; "
            "check num_classes and the dataset's label mapping"
        )
    return indices


def stage_seconds(rows: list[dict[str, Any]]) -> float:
    """Wall time of a stage: the sum of its epochs' `seconds` (the rows of its metrics.jsonl, written by
    the shared loop); 0 for none. The one place a stage's time is computed (stages, report, cost tables)."""
    return float(sum(row.get("seconds") or 0.0 for row in rows))


# --- rank agreement between two scorings of the same architectures ------------------------------------
def average_ranks(values: Any) -> np.ndarray:
    """Ranks 1..n of `values`, ascending; tied values share the mean of the ranks they span."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2  # mean of ranks start+1 .. end
            start = end
    return ranks


def spearman_rho(a: Any, b: Any) -> float | None:
    """Spearman's ρ: Pearson's correlation of the average ranks of `a` and of `b`. None when either is
    constant (no ranking) or fewer than two items are given."""
    x, y = _paired(a, b)
    if len(x) < 2:
        return None
    rx, ry = average_ranks(x) - (len(x) + 1) / 2, average_ranks(y) - (len(y) + 1) / 2
    denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else None


def kendall_tau(a: Any, b: Any) -> float | None:
    """Kendall's τ-b over all pairs i < j: (C − D) / √((n₀ − n₁)(n₀ − n₂)), C and D the concordant and
    discordant pairs, n₀ = n(n − 1)/2, n₁ and n₂ the pairs tied in `a` and in `b`. None as spearman_rho."""
    x, y = _paired(a, b)
    if len(x) < 2:
        return None
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu(np.ones((len(x), len(x)), dtype=bool), 1)
    s = float((dx * dy)[upper].sum())  # C − D
    # n₀ − n₁ and n₀ − n₂: the pairs not tied in a, and not tied in b
    untied_x, untied_y = float((dx[upper] != 0).sum()), float((dy[upper] != 0).sum())
    denominator = math.sqrt(untied_x * untied_y)
    return s / denominator if denominator > 0 else None


def _paired(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if len(x) != len(y):
        raise LtnasError(f"rank correlation needs two scorings of the same items; got {len(x)} and {len(y)} scores")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise LtnasError("rank correlation needs finite scores; a scoring holds NaN or infinity")
    return x, y
