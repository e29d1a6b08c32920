"""The two-branch (BBN) search as an epoch task for the shared loop.

Four batch streams run in lockstep, each with its own generator: instance and re-balanced (`bbn.resampler`)
batches of the training part, and the same two of the validation part (cycled, since an 80/20
split has fewer validation batches than training batches). After every epoch: the validation
accuracy at the test-time μ and of each head alone, α of every component (`alpha.jsonl`), and the
two-branch genotype (backbone cells + both head cells).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ltnas.data import DeviceBatches
from ltnas.metrics import TOP_K, classification_metrics, top_k_accuracy
from ltnas.search.bbn import BbnSearch, TwoBranchSearchNetwork, mix, write_two_branch_genotype
from ltnas.search.task import cycle
from ltnas.train.loop import JsonlLog, OnStep

STREAMS = ("train_instance", "train_balanced", "val_instance", "val_balanced")


@torch.no_grad()
def predict_branches(network: TwoBranchSearchNetwork, batches: DeviceBatches
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(o_ins, o_cls, labels) on the CPU for every image once, in eval mode: one pass serves any μ."""
    was_training = network.training
    network.eval()
    outputs = [(*network.branch_logits(x), y) for x, y in batches]
    network.train(was_training)
    o_ins, o_cls, labels = (torch.cat([part[i] for part in outputs]).float().cpu() for i in range(3))
    return o_ins, o_cls, labels.long()


def mixed_metrics(o_ins: torch.Tensor, o_cls: torch.Tensor, labels: torch.Tensor, mu: float,
                  num_classes: int, train_counts: list[int],
                  shots: tuple[int | None, int | None] = (None, None)) -> dict[str, Any]:
    """`classification_metrics` (shot groups by `shots`, as there), the top-5 accuracy and the cross-entropy of
    the prediction μ·o_ins + (1 − μ)·o_cls."""
    logits = mix(o_ins, o_cls, mu)
    metrics = classification_metrics(logits.argmax(1), labels, num_classes, train_counts, shots)
    metrics["top5"] = top_k_accuracy(logits.topk(min(TOP_K, num_classes), dim=1).indices, labels, num_classes)
    metrics["loss"] = F.cross_entropy(logits, labels).item()
    return metrics


class BbnSearchTask:
    name = "search"

    def __init__(self, strategy: BbnSearch, streams: dict[str, DeviceBatches], eval_batches: DeviceBatches,
                 train_counts: list[int], mu_test: float, derive: str = "darts", threshold: float = 0.85):
        self.strategy = strategy
        self.network = strategy.network
        self.streams = streams
        self.eval_batches = eval_batches  # the validation part, in order
        self.train_counts = train_counts
        self.mu_test = mu_test
        self.derive = derive
        self.threshold = threshold

    def steps_per_epoch(self) -> int:
        return min(len(self.streams["train_instance"]), len(self.streams["train_balanced"]))

    def run_epoch(self, epoch: int, on_step: OnStep) -> dict[str, Any]:
        self.strategy.set_epoch(epoch)
        summary = self.strategy.epoch_summary()
        lr = self.strategy.lr
        loss_sum, correct, count = 0.0, 0.0, 0
        streams = zip(self.streams["train_instance"], self.streams["train_balanced"],
                      cycle(self.streams["val_instance"]), cycle(self.streams["val_balanced"]))
        for train_ins, train_cls, val_ins, val_cls in streams:
            out = self.strategy.step(train_ins, train_cls, val_ins, val_cls)
            loss_sum += out["loss"] * out["count"]
            correct += out["correct"]
            count += out["count"]
            on_step(loss=out["loss"], mu=summary["mu"])
        self.strategy.end_epoch()
        norms = self.strategy.gradient_norms()
        o_ins, o_cls, labels = predict_branches(self.network, self.eval_batches)
        classes = self.network.num_classes
        val = mixed_metrics(o_ins, o_cls, labels, self.mu_test, classes, self.train_counts)
        heads = {branch: classification_metrics(logits.argmax(1), labels, classes, self.train_counts)
                 for branch, logits in (("instance", o_ins), ("balanced", o_cls))}
        return {
            "train_loss": loss_sum / count, "train_acc": correct / count,
            "val_loss": val["loss"], "val_acc": val["overall"], "val_balanced_acc": val["balanced"],
            "val_instance_head_acc": heads["instance"]["overall"],
            "val_balanced_head_acc": heads["balanced"]["overall"], "lr": lr, **summary, **norms,
        }

    def after_epoch(self, epoch: int, folder: Path) -> None:
        weights = {k: v.detach().cpu() for k, v in self.network.relaxed_weights().items()}
        JsonlLog(folder / "alpha.jsonl").append({
            "epoch": epoch + 1, "primitives": list(self.network.primitives),
            "relaxation": self.network.relaxation.name, "weights": self.network.read_symbol, "mu": self.strategy.mu,
            **{component: w.tolist() for component, w in weights.items()},
        })
        genotype = self.network.genotype(self.derive, self.threshold)
        (folder / "genotypes").mkdir(exist_ok=True)
        write_two_branch_genotype(genotype, folder / "genotypes" / f"epoch_{epoch + 1:03d}.json")
        write_two_branch_genotype(genotype, folder / "genotype.json")

    def truncate_history(self, folder: Path, epochs_done: int) -> None:
        JsonlLog(folder / "alpha.jsonl").truncate(epochs_done)

    def state_dict(self) -> dict:
        return {"strategy": self.strategy.state_dict(),
                **{f"{name}_generator": batches.generator.get_state() for name, batches in self.streams.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.strategy.load_state_dict(state["strategy"])
        for name, batches in self.streams.items():
            batches.generator.set_state(state[f"{name}_generator"])
