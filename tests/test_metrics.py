"""ltnas.metrics against hand-computed answers."""

import json
import re

import numpy as np
import pytest
import torch

from ltnas.errors import LtnasError
from ltnas.metrics import classification_metrics, shot_groups

# 3 classes; class 0 is many-shot, 1 medium-shot, 2 few-shot.
TRAIN_COUNTS = [500, 50, 5]
LABELS = [0, 0, 0, 0, 1, 1, 2, 2]
PREDICTIONS = [0, 0, 0, 1, 1, 0, 2, 0]


def test_hand_computed_example() -> None:
    metrics = classification_metrics(PREDICTIONS, LABELS, 3, TRAIN_COUNTS)

    # Correct: three of class 0, one of class 1, one of class 2 → 5 of 8.
    assert metrics["overall"] == pytest.approx(5 / 8)
    assert metrics["per_class"] == pytest.approx([3 / 4, 1 / 2, 1 / 2])
    assert metrics["balanced"] == pytest.approx((3 / 4 + 1 / 2 + 1 / 2) / 3)
    assert metrics["many"] == pytest.approx(3 / 4)
    assert metrics["medium"] == pytest.approx(1 / 2)
    assert metrics["few"] == pytest.approx(1 / 2)
    assert metrics["confusion"] == [[3, 1, 0], [1, 1, 0], [1, 0, 1]]
    assert metrics["groups"] == {"many": [0], "medium": [1], "few": [2]}
    assert metrics["num_samples"] == 8


def test_result_is_json_ready_and_accepts_tensors_and_arrays() -> None:
    from_lists = classification_metrics(PREDICTIONS, LABELS, 3, TRAIN_COUNTS)
    from_tensors = classification_metrics(torch.tensor(PREDICTIONS), torch.tensor(LABELS), 3, TRAIN_COUNTS)
    from_arrays = classification_metrics(np.array(PREDICTIONS), np.array(LABELS, dtype=np.float32), 3, TRAIN_COUNTS)

    assert from_tensors == from_lists == from_arrays
    assert json.loads(json.dumps(from_lists)) == from_lists


def test_scores_are_reduced_to_their_argmax() -> None:
    logits = torch.nn.functional.one_hot(torch.tensor(PREDICTIONS), 3).float() * 5 - 1

    assert classification_metrics(logits, LABELS, 3, TRAIN_COUNTS) == classification_metrics(
        PREDICTIONS, LABELS, 3, TRAIN_COUNTS
    )


@pytest.mark.parametrize(
    ("count", "group"), [(101, "many"), (100, "medium"), (20, "medium"), (19, "few"), (0, "few")]
)
def test_shot_group_boundaries(count: int, group: str) -> None:
    groups = shot_groups([count], many=100, few=20)  # CIFAR's thresholds, given

    assert groups[group] == [0]
    assert sum(len(members) for members in groups.values()) == 1


def test_class_absent_from_the_test_set_is_left_out_of_the_means() -> None:
    # Class 2 (the only few-shot class) has no test samples, though the model predicts it once.
    metrics = classification_metrics([0, 2, 1, 1], [0, 0, 1, 1], 3, TRAIN_COUNTS)

    assert metrics["per_class"] == [0.5, 1.0, None]
    assert metrics["balanced"] == pytest.approx(0.75)
    assert metrics["few"] is None
    assert metrics["overall"] == pytest.approx(0.75)
    assert metrics["confusion"][2] == [0, 0, 0]


@pytest.mark.parametrize(
    ("predictions", "labels", "num_classes", "train_counts", "message"),
    [
        ([0, 1], [0, 1, 2], 3, TRAIN_COUNTS, "2 predictions for 3 labels"),
        ([0, 1, 3], [0, 1, 2], 3, TRAIN_COUNTS, "predictions contain class index 3"),
        ([0, 1, 2], [0, -1, 2], 3, TRAIN_COUNTS, "labels contain class index -1"),
        ([0, 1, 2], [0, 1, 5], 3, TRAIN_COUNTS, "labels contain class index 5"),
        ([0, 1, 2], [0, 1, 2], 3, [500, 50], "train_counts has 2 entries but num_classes is 3"),
        ([0.5, 1, 2], [0, 1, 2], 3, TRAIN_COUNTS, "whole class indices"),
        ([[0.1, 0.9]], [1], 3, TRAIN_COUNTS, "2 columns but num_classes is 3"),
        ([0, 1, 2], [[0, 1, 2]], 3, TRAIN_COUNTS, "labels has shape (1, 3)"),
        ([], [], 3, TRAIN_COUNTS, "no test samples"),
    ],
)
def test_bad_input_raises_one_line_error(predictions, labels, num_classes, train_counts, message) -> None:
    with pytest.raises(LtnasError, match=re.escape(message)) as caught:
        classification_metrics(predictions, labels, num_classes, train_counts)

    assert "\n" not in str(caught.value)
    assert ";" in str(caught.value)  # what is wrong; what to do


def test_top5_accuracy_by_hand():
    """Seven classes, three images: the true class ranks 7th (miss), 2nd (hit) and 5th (hit) → 2/3."""
    from torch import nn

    from ltnas.evaluate import predict_ranked
    from ltnas.metrics import top_k_accuracy

    scores = torch.tensor([[0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                           [0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                           [7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    labels = torch.tensor([1, 6, 4])
    ranked, seen, _ = predict_ranked(nn.Flatten(), [(scores, labels)], k=5)
    assert ranked.tolist() == [[0, 6, 5, 4, 3], [0, 6, 5, 4, 3], [0, 1, 2, 3, 4]]
    assert top_k_accuracy(ranked, seen, 7) == pytest.approx(2 / 3)
    assert top_k_accuracy(ranked, torch.tensor([1, 6, 5]), 7) == pytest.approx(1 / 3)  # rank 6 misses
    assert top_k_accuracy(ranked, seen, 5) is None  # five classes or fewer: always right, not reported
    with pytest.raises(LtnasError, match="top-5"):
        top_k_accuracy(ranked[:, :3], seen, 7)


def test_precision_and_f1_equal_scikit_learns() -> None:
    """ltnas computes per-class precision and F1 in numpy; scikit-learn's precision_recall_fscore_support (with
    zero_division=0) gives the same numbers wherever ltnas reports one (None: never predicted / no test image)."""
    from sklearn.metrics import precision_recall_fscore_support

    from ltnas.metrics import precision_and_f1

    rng = np.random.default_rng(0)
    for trial in range(20):
        classes = int(rng.integers(2, 8))
        true = rng.integers(0, classes, size=int(rng.integers(1, 40)))
        predicted = np.where(rng.random(true.size) < 0.4, true, rng.integers(0, classes, size=true.size))
        if trial % 3 == 0:
            predicted[predicted == classes - 1] = 0  # a class never predicted
        precision, f1 = precision_and_f1(predicted, true, classes)
        p, _, f, support = precision_recall_fscore_support(true, predicted, labels=list(range(classes)),
                                                           zero_division=0)
        predicted_counts = np.bincount(predicted, minlength=classes)
        assert precision == [pytest.approx(float(p[c])) if predicted_counts[c] else None for c in range(classes)]
        assert f1 == [pytest.approx(float(f[c])) if support[c] else None for c in range(classes)]


def test_one_pass_over_the_test_set_gives_the_metrics_and_the_misclassified_grid() -> None:
    """The evaluate stage predicts the balanced test set once (`rank_images`) and reads both the metrics and the
    misclassified images from it: the metrics are `evaluate_model`'s, predicting on its own, and the grid is the
    same from a pass in other batches. The grid takes each class's mistakes in turn, rarest training class first."""
    from torch import nn

    from ltnas.data.imageset import ImageSet, LongTailDataset
    from ltnas.evaluate import evaluate_model, misclassified_examples, rank_images, ranked_metrics

    generator = torch.Generator().manual_seed(0)
    test = ImageSet(torch.randint(0, 256, (24, 1, 2, 2), dtype=torch.uint8, generator=generator),
                    torch.arange(24) % 6)
    train = ImageSet(torch.zeros(21, 1, 2, 2, dtype=torch.uint8), torch.tensor([c for c in range(6) for _ in range(6 - c)]))
    data = LongTailDataset("toy", [str(c) for c in range(6)], train, test, None, (0.5,), (0.25,), "exp", 6.0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 6))
    ranking = rank_images(model, test, data, "cpu", batch_size=5)
    assert ranked_metrics(ranking, data) == evaluate_model(model, test, data, "cpu", batch_size=5)
    images, true, predicted = misclassified_examples(ranking, test, data, limit=5)
    again = misclassified_examples(rank_images(model, test, data, "cpu", batch_size=24), test, data, limit=5)
    assert torch.equal(images, again[0]) and (true, predicted) == again[1:]
    wrong = {c: [i for i in range(24) if test.labels[i] == c and ranking[0][i, 0] != c] for c in range(6)}
    order = [c for c in reversed(range(6)) if wrong[c]]  # class 5 has the fewest training images, class 0 the most
    assert len(order) >= 3 and true == (order + [c for c in order if len(wrong[c]) > 1])[:5]
    firsts = [wrong[c][0] for c in order] + [wrong[c][1] for c in order if len(wrong[c]) > 1]
    assert torch.equal(images, test.images[firsts[:5]]) and predicted == [int(ranking[0][i, 0]) for i in firsts[:5]]
