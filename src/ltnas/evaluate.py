"""Evaluate a classifier on an image set: predictions on the device, honest per-class metrics."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ltnas.data import DeviceBatches, ImageSet, LongTailDataset, batches_of
from ltnas.metrics import TOP_K, classification_metrics, top_k_accuracy


@torch.no_grad()
def predict_ranked(model: nn.Module, batches: DeviceBatches, k: int = 1) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(the k highest-scored classes of each image, best first: N × min(k, classes); labels; mean cross-entropy)
    over every image once, in eval mode. Column 0 is the arg-max prediction."""
    was_training = model.training
    model.eval()
    ranked, labels, loss_sum = [], [], 0.0
    for x, y in batches:
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        top = logits.argmax(1, keepdim=True) if k == 1 else logits.topk(min(k, logits.shape[1]), dim=1).indices
        ranked.append(top.cpu())
        labels.append(y.cpu())
    model.train(was_training)
    labels_all = torch.cat(labels)
    return torch.cat(ranked), labels_all, loss_sum / max(len(labels_all), 1)


def predict(model: nn.Module, batches: DeviceBatches) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(predictions, labels, mean cross-entropy) over every image once, in eval mode."""
    ranked, labels, loss = predict_ranked(model, batches)
    return ranked[:, 0], labels, loss


def evaluation_batches(images: ImageSet, dataset: LongTailDataset, device, batch_size: int) -> DeviceBatches:
    return batches_of(images, dataset, batch_size, device)


def rank_images(model: nn.Module, images: ImageSet, dataset: LongTailDataset, device,
                batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor, float]:
    """`predict_ranked` over an image set with the top-`TOP_K` classes: what `ranked_metrics` and
    `misclassified_examples` read (one pass over the images serves both)."""
    return predict_ranked(model, evaluation_batches(images, dataset, device, batch_size), TOP_K)


def evaluate_model(model: nn.Module, images: ImageSet, dataset: LongTailDataset, device,
                   batch_size: int = 256, train_counts: list[int] | None = None,
                   shots: tuple[int | None, int | None] = (None, None)) -> dict:
    """Overall, balanced, per-class and many/medium/few accuracy plus the confusion matrix, and the top-5
    accuracy ("top5"; None for 5 classes or fewer, where it is 1 by construction).

    Shot groups follow the counts the model was trained on (the long-tailed training set by default),
    with the (many, few) thresholds `shots` (None: by dataset size, `ltnas.metrics.shot_thresholds`).
    """
    return ranked_metrics(rank_images(model, images, dataset, device, batch_size), dataset, train_counts, shots)


def ranked_metrics(ranking: tuple[torch.Tensor, torch.Tensor, float], dataset: LongTailDataset,
                   train_counts: list[int] | None = None,
                   shots: tuple[int | None, int | None] = (None, None)) -> dict:
    """`evaluate_model`'s metrics from a `rank_images` result (ranked classes, labels, mean loss)."""
    ranked, labels, loss = ranking
    metrics = classification_metrics(ranked[:, 0], labels, dataset.num_classes, train_counts or dataset.train_counts,
                                     shots)
    metrics["top5"] = top_k_accuracy(ranked, labels, dataset.num_classes)
    metrics["loss"] = loss
    return metrics


def misclassified_examples(ranking: tuple[torch.Tensor, torch.Tensor, float], images: ImageSet,
                           dataset: LongTailDataset, limit: int = 32) -> tuple[torch.Tensor, list[int], list[int]]:
    """Up to `limit` misclassified images (uint8), their true and predicted classes, from a model's `rank_images`
    result on `images`: taken in turn from each true class, rarest training class first, so the tail's mistakes are
    not crowded out."""
    ranked, labels, _ = ranking
    predictions = ranked[:, 0]
    wrong = (predictions != labels).nonzero().flatten().tolist()
    by_class: dict[int, list[int]] = {}
    for index in wrong:
        by_class.setdefault(int(labels[index]), []).append(index)
    order = sorted(by_class, key=lambda c: (dataset.train_counts[c], c))
    chosen: list[int] = []
    while len(chosen) < limit and any(by_class[c] for c in order):
        for c in order:
            if by_class[c] and len(chosen) < limit:
                chosen.append(by_class[c].pop(0))
    return images.images[chosen], [int(labels[i]) for i in chosen], [int(predictions[i]) for i in chosen]
