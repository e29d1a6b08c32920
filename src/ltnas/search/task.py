"""A search as an epoch task for the shared loop: strategy steps over paired train/val batches,
validation metrics, α history and the genotype derived after every epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ltnas import distributed
from ltnas.data import DeviceBatches
from ltnas.metrics import classification_metrics
from ltnas.evaluate import predict
from ltnas.train.loop import JsonlLog, OnStep


class SearchTask:
    name = "search"

    def __init__(self, strategy, train_batches: DeviceBatches, val_batches: DeviceBatches,
                 eval_batches: DeviceBatches, train_counts: list[int], derive: str = "darts",
                 threshold: float = 0.85):
        self.strategy = strategy
        self.network = strategy.network
        self.train_batches = train_batches
        self.val_batches = val_batches
        self.eval_batches = eval_batches  # the validation set, in order, for per-epoch metrics
        self.train_counts = train_counts
        self.derive = derive
        self.threshold = threshold

    def steps_per_epoch(self) -> int:
        return min(len(self.train_batches), len(self.val_batches))

    def run_epoch(self, epoch: int, on_step: OnStep) -> dict[str, Any]:
        self.strategy.set_epoch(epoch)
        lr = self.strategy.lr
        loss_sum, correct, count = 0.0, 0, 0
        for train, val in zip(self.train_batches, self.val_batches):
            out = self.strategy.step(train, val)
            loss_sum += out["loss"] * out["count"]
            correct += out["correct"]
            count += out["count"]
            on_step(loss=out["loss"])
        self.strategy.end_epoch()
        loss_sum, correct, count = distributed.sum_over_ranks(loss_sum, correct, count)
        distributed.average_buffers(self.network)  # same BatchNorm statistics (and checkpoint) on every rank
        predictions, labels, val_loss = predict(self.network, self.eval_batches)
        val = classification_metrics(predictions, labels, self.network.num_classes, self.train_counts)
        return {
            "train_loss": loss_sum / count, "train_acc": correct / count,
            "val_loss": val_loss, "val_acc": val["overall"], "val_balanced_acc": val["balanced"], "lr": lr,
        }

    def after_epoch(self, epoch: int, folder: Path) -> None:
        weights = {k: v.detach().cpu() for k, v in self.network.relaxed_weights().items()}
        JsonlLog(folder / "alpha.jsonl").append({
            "epoch": epoch + 1, "primitives": list(self.network.primitives),
            "relaxation": self.network.relaxation.name,
            **{kind: w.tolist() for kind, w in weights.items()},
        })
        genotype = self.network.genotype(self.derive, self.threshold)
        (folder / "genotypes").mkdir(exist_ok=True)
        genotype.to_json(folder / "genotypes" / f"epoch_{epoch + 1:03d}.json")
        genotype.to_json(folder / "genotype.json")

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
