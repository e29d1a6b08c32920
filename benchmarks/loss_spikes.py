"""Where do the early test-loss spikes of a cell network retrained on the quickstart data come from?

    python benchmarks/loss_spikes.py train.cell.init_channels=16 train.cell.layers=3  # overrides of the recipe

Retrains DARTS_V2 on the quickstart data with the quickstart's recipe at lr 0.05 (overrides after it) for 10
epochs and prints, per epoch, the test loss in eval mode (BatchNorm running statistics, what the retrain
log shows), with batch statistics, and after recalibrating the running statistics on the training set,
plus the largest |logit|. A diagnostic, not a benchmark of speed.
"""

from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from ltnas import pipeline
from ltnas.config import load_config
from ltnas.data import DeviceBatches
from ltnas.evaluate import evaluation_batches
from ltnas.longtail import build_criterion
from ltnas.runs import RunFolder
from ltnas.space import load_genotype
from ltnas.train.checkpoint import seed_everything
from ltnas.train.retrain import RetrainTask

RECIPE = ["train.genotype=DARTS_V2", "train.sgd.lr=0.05", "progress=false", "device=cpu"]


def recalibrated(model: torch.nn.Module, batches: DeviceBatches) -> torch.nn.Module:
    """A copy whose BatchNorm running statistics are the plain average over `batches` (train mode, no grad)."""
    copied = copy.deepcopy(model)
    for module in copied.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    copied.train()
    with torch.no_grad():
        for x, _ in batches:
            copied(x)
    return copied.eval()


def main() -> None:
    torch.set_num_threads(1)
    config = load_config(Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml",
                         [*RECIPE, *sys.argv[1:]])
    run = RunFolder.create(Path(tempfile.mkdtemp()) / "run", config)
    data = pipeline.Context.prepare(config, run).dataset
    seed_everything(1000)
    model = pipeline.build_model(config, data, load_genotype("DARTS_V2"))
    criterion = build_criterion(config.train.longtail, data.train_counts, config.train.epochs)
    train = DeviceBatches(data.train, config.train.batch_size, device="cpu", mean=data.mean, std=data.std,
                          generator=torch.Generator().manual_seed(1), augment=config.train.augment)
    in_order = DeviceBatches(data.train, 64, device="cpu", mean=data.mean, std=data.std,
                             generator=torch.Generator(), shuffle=False)
    test = evaluation_batches(data.test, data, "cpu", 500)
    # The test batches stand in the task's monitored set: this diagnostic looks at the test loss on purpose
    # (row['val_loss'] is then the test loss in eval mode); it chooses no model.
    task = RetrainTask(model, config.train, criterion, train, test, data.train_counts, data.num_classes)
    x, y = next(iter(test))
    for epoch in range(10):
        row = task.run_epoch(epoch, lambda **_: None)
        with torch.no_grad():
            model.train()
            batch_stat = F.cross_entropy(model(x), y).item()
            recal = F.cross_entropy(recalibrated(model, in_order)(x), y).item()
            model.eval()
            largest = model(x).abs().max().item()
        print(f"epoch {epoch + 1} lr {row['lr']:.3f} train_acc {row['train_acc']:.3f} test_loss(eval) "
              f"{row['val_loss']:.2f} test_loss(batch-stat BN) {batch_stat:.2f} recalibrated-BN {recal:.2f} "
              f"max|logit| {largest:.1f}", flush=True)


if __name__ == "__main__":
    main()
