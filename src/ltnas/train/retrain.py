"""Retraining a genotype from scratch with the DARTS evaluation recipe, as an epoch task.

SGD with momentum (over one buffer holding every parameter, train/flat.py) and cosine LR, or a step schedule
(`train.sgd.schedule`) (optionally after a linear warm-up, `train.warmup_epochs`), gradient clipping, auxiliary
head (loss weight 0.4), drop-path rising linearly to its maximum, cutout, optionally precise BatchNorm statistics
after each epoch (`train.precise_bn`, train/precise_bn.py); the long-tail plug-ins (loss re-weighting, DRW,
class-balanced sampling) come from the `train.longtail` section. Baseline networks (`train.network`) train the same
way; auxiliary head and drop-path are cell-network features they do not have. Each epoch is monitored on a
validation part held out of the training set (`train.val_fraction`), never on the test set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ltnas import distributed
from ltnas.config import TrainConfig
from ltnas.data import DeviceBatches
from ltnas.evaluate import predict
from ltnas.longtail import LongTailLoss
from ltnas.metrics import classification_metrics
from ltnas.space import DiscreteNetwork
from ltnas.train.flat import FlatParameters
from ltnas.train.loop import OnStep
from ltnas.train.lr_schedule import follow_config, lr_scheduler
from ltnas.train.precise_bn import recalibrate_batchnorm
from ltnas.train.precision import autocast


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: the learning rate of step s (from 0) is scaled by (s + 1) / W while s < W."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


class RetrainTask:
    name = "train"

    def __init__(self, model: DiscreteNetwork, config: TrainConfig, criterion: LongTailLoss,
                 train_batches: DeviceBatches, val_batches: DeviceBatches | None, train_counts: list[int],
                 num_classes: int, shots: tuple[int | None, int | None] = (None, None),
                 recalibration: DeviceBatches | None = None):
        self.model = model
        self.config = config
        self.criterion = criterion
        self.train_batches = train_batches
        self.val_batches = val_batches  # held out of the training set; None: nothing monitored
        self.train_counts = train_counts
        self.num_classes = num_classes
        self.shots = shots  # (many, few) shot-group thresholds of the per-epoch validation metrics
        self.recalibration = recalibration  # training images for precise BatchNorm after each epoch; None: off
        self.weights = FlatParameters(model.parameters())  # one buffer: clipping and SGD in few kernels (train/flat.py)
        self.optimizer = torch.optim.SGD(
            [self.weights.flat], config.sgd.lr, momentum=config.sgd.momentum, weight_decay=config.sgd.weight_decay
        )
        self.scheduler = lr_scheduler(self.optimizer, config.sgd, config.epochs)  # cosine or step (train.sgd.schedule)

    def steps_per_epoch(self) -> int:
        return len(self.train_batches)

    def run_epoch(self, epoch: int, on_step: OnStep) -> dict[str, Any]:
        config = self.config
        self.criterion.set_epoch(epoch)
        self.model.drop_path_prob = config.drop_path * epoch / config.epochs
        groups = self.optimizer.param_groups
        scheduled = [group["lr"] for group in groups]
        lr = scheduled[0]
        steps = len(self.train_batches)
        self.model.train()
        loss_sum, correct, count = 0.0, 0, 0
        for step, (x, y) in enumerate(self.train_batches):
            if epoch < config.warmup_epochs:
                for group, scheduled_lr in zip(groups, scheduled):
                    group["lr"] = scheduled_lr * warmup_factor(epoch * steps + step, config.warmup_epochs * steps)
            self.weights.zero_grad()
            with autocast(x.device, config.amp):
                output = self.model(x)
                logits, aux_logits = output if isinstance(output, tuple) else (output, None)
                loss = self.criterion(logits, y)
                if aux_logits is not None:
                    loss = loss + config.auxiliary_weight * self.criterion(aux_logits, y)
            loss.backward()
            self.weights.gather_gradients()
            distributed.average_gradients([self.weights.flat])
            nn.utils.clip_grad_norm_([self.weights.flat], config.sgd.grad_clip)
            self.optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            count += len(y)
            on_step(loss=loss.item())
        for group, scheduled_lr in zip(groups, scheduled):  # the schedule continues from its own value
            group["lr"] = scheduled_lr
        self.scheduler.step()
        loss_sum, correct, count = distributed.sum_over_ranks(loss_sum, correct, count)
        distributed.average_buffers(self.model)
        if self.recalibration is not None:  # the statistics the validation and the saved model use
            recalibrate_batchnorm(self.model, self.recalibration)
        row = {"train_loss": loss_sum / count, "train_acc": correct / count, "lr": lr}
        if self.val_batches is not None:  # never the test set: nothing here may be used to pick a model on it
            predictions, labels, val_loss = predict(self.model, self.val_batches)
            val = classification_metrics(predictions, labels, self.num_classes, self.train_counts, self.shots)
            row.update({"val_loss": val_loss, "val_acc": val["overall"], "val_balanced_acc": val["balanced"],
                        **{f"val_{group}_acc": val[group] for group in ("many", "medium", "few")}})
        return row

    def after_epoch(self, epoch: int, folder: Path) -> None:
        pass  # everything a retrain epoch produces is in its metrics row and checkpoint

    def truncate_history(self, folder: Path, epochs_done: int) -> None:
        pass

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "train_generator": self.train_batches.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        follow_config(self.scheduler, self.config.sgd, self.config.epochs)  # `--set train.epochs=N` extends a cosine
        self.train_batches.generator.set_state(state["train_generator"])
