"""A search as an epoch task for the shared loop: strategy steps over paired train/val batches,
validation metrics, α history and the genotype derived after every epoch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ltnas import distributed
from ltnas.atomic import atomic_write_text
from ltnas.data import DeviceBatches
from ltnas.errors import LtnasError
from ltnas.metrics import classification_metrics
from ltnas.evaluate import predict
from ltnas.train.loop import JsonlLog, OnStep


def cycle(batches: DeviceBatches) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches, a fresh epoch order (from the stream's own generator) each pass."""
    if len(batches) == 0:
        raise LtnasError("the validation part of the search is empty; give the classes more images or raise "
                         "data.val_fraction")
    while True:
        yield from batches


class SearchTask:
    name = "search"

    def __init__(self, strategy, train_batches: DeviceBatches, val_batches: DeviceBatches,
                 eval_batches: DeviceBatches, train_counts: list[int], derive: str = "darts",
                 threshold: float = 0.85, shots: tuple[int | None, int | None] = (None, None)):
        self.strategy = strategy
        self.network = strategy.network
        self.train_batches = train_batches
        self.val_batches = val_batches
        self.eval_batches = eval_batches  # the validation set, in order, for per-epoch metrics
        self.train_counts = train_counts
        self.derive = derive
        self.threshold = threshold
        self.shots = shots  # (many, few) shot-group thresholds of the per-epoch validation metrics

    def steps_per_epoch(self) -> int:
        return len(self.train_batches)

    def run_epoch(self, epoch: int, on_step: OnStep) -> dict[str, Any]:
        self.strategy.set_epoch(epoch)
        lr = self.strategy.lr
        # Sample-weighted sums of every loss a step reports: `loss` (supervised) and any extra term
        # a strategy adds (e.g. SSF-NAS's `ssl_loss`), logged as train_<name>.
        sums: dict[str, float] = {}
        correct, count = 0, 0
        # Every training batch each epoch, as in DARTS' code; a smaller validation part (an 80/20
        # split) is cycled rather than cutting the epoch short.
        for train, val in zip(self.train_batches, cycle(self.val_batches)):
            out = self.strategy.step(train, val)
            for key, value in out.items():
                if key not in ("correct", "count"):
                    sums[key] = sums.get(key, 0.0) + value * out["count"]
            correct += out["correct"]
            count += out["count"]
            on_step(loss=out["loss"])
        self.strategy.end_epoch()
        names = sorted(sums)  # the same on every rank: one strategy
        *totals, correct, count = distributed.sum_over_ranks(*(sums[name] for name in names), correct, count)
        sums = dict(zip(names, totals))
        distributed.average_buffers(self.network)  # same BatchNorm statistics (and checkpoint) on every rank
        predictions, labels, val_loss = predict(self.network, self.eval_batches)
        val = classification_metrics(predictions, labels, self.network.num_classes, self.train_counts, self.shots)
        return {
            **{f"train_{key}": total / count for key, total in sums.items()}, "train_acc": correct / count,
            "val_loss": val_loss, "val_acc": val["overall"], "val_balanced_acc": val["balanced"],
            **{f"val_{group}_acc": val[group] for group in ("many", "medium", "few")}, "lr": lr,
            **getattr(self.strategy, "epoch_metrics", dict)(),
        }

    @property
    def stop(self) -> dict | None:
        """The strategy's early stop (search.cures), if a rule fired: the loop then ends the search."""
        return getattr(self.strategy, "stop", None)

    def after_epoch(self, epoch: int, folder: Path) -> None:
        weights = {k: v.detach().cpu() for k, v in self.network.relaxed_weights().items()}
        JsonlLog(folder / "alpha.jsonl").append({
            "epoch": epoch + 1, "primitives": list(self.network.primitives),
            # the forward pass's relaxation, and what the logged weights are (PC-DARTS: softmax(α)·β̂)
            "relaxation": self.network.relaxation.name, "weights": self.network.read_symbol,
            **{kind: w.tolist() for kind, w in weights.items()},
        })
        genotype = self.network.genotype(self.derive, self.threshold)
        (folder / "genotypes").mkdir(exist_ok=True)
        genotype.to_json(folder / "genotypes" / f"epoch_{epoch + 1:03d}.json")
        kept = (self.stop or {}).get("genotype_epoch", epoch + 1)  # an early stop may keep an earlier epoch's
        if kept == epoch + 1:
            genotype.to_json(folder / "genotype.json")
        else:
            atomic_write_text((folder / "genotypes" / f"epoch_{kept:03d}.json").read_text(encoding="utf-8"),
                              folder / "genotype.json")

    def truncate_history(self, folder: Path, epochs_done: int) -> None:
        JsonlLog(folder / "alpha.jsonl").truncate(epochs_done)

    def state_dict(self) -> dict:
        return {
            "strategy": self.strategy.state_dict(),
            "train_generator": self.train_batches.generator.get_state(),
            "val_generator": self.val_batches.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.strategy.load_state_dict(state["strategy"])
        self.train_batches.generator.set_state(state["train_generator"])
        self.val_batches.generator.set_state(state["val_generator"])
