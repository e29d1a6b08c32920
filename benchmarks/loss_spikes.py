"""Where do the early test-loss spikes of a cell network retrained on the quickstart data come from?

    python benchmarks/loss_spikes.py train.init_channels=16 train.layers=3     # overrides of the recipe

Retrains DARTS_V2 on the quickstart data with the quickstart's recipe at lr 0.05 (overrides after it) for 10
epochs and prints, per epoch, the test loss in eval mode (BatchNorm running statistics, what the retrain
log shows), with batch statistics, and after recalibrating the running statistics on the training set,
plus the largest |logit|. A diagnostic, not a benchmark of speed.
"""
import sys
from pathlib import Path

import torch
torch.set_num_threads(1)
import torch.nn.functional as F
from ltnas import pipeline
from ltnas.config import load_config
from ltnas.runs import RunFolder
from ltnas.evaluate import evaluation_batches
from ltnas.train import retrain
import tempfile


def main() -> None:
    ov = sys.argv[1:]
    cfg = load_config(Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml", ["train.genotype=DARTS_V2", "train.epochs=40", "train.batch_size=16",
        "train.auxiliary=false", "train.drop_path=0", "train.augment.cutout=0", "train.longtail={loss: logit_adjusted}",
        "train.warmup_epochs=2", "train.lr=0.05", "progress=false", "device=cpu", *ov])
    tmp = tempfile.mkdtemp()
    run = RunFolder.create(tmp + "/r", cfg)
    ctx = pipeline.Context.prepare(cfg, run)
    from ltnas.space import load_genotype
    from ltnas.longtail import build_criterion
    from ltnas.data import DeviceBatches
    from ltnas.train.checkpoint import seed_everything
    seed_everything(1000)
    data = ctx.dataset
    model = pipeline.build_model(cfg, data, load_genotype("DARTS_V2"))
    crit = build_criterion(cfg.train.longtail, data.train_counts, 40)
    tb = DeviceBatches(data.train, 16, device="cpu", mean=data.mean, std=data.std, generator=torch.Generator().manual_seed(1), augment=cfg.train.augment)
    test = evaluation_batches(data.test, data, "cpu", 500)
    task = retrain.RetrainTask(model, cfg.train, crit, tb, test, data.train_counts, 10)
    for e in range(10):
        row = task.run_epoch(e, lambda **_: None)
        x, y = next(iter(test))
        model.train()
        with torch.no_grad():
            bl = F.cross_entropy(model(x), y).item()
        # recalibrated BN: reset running stats, run training set in train mode without grad
        import copy
        m2 = copy.deepcopy(model)
        for mod in m2.modules():
            if isinstance(mod, torch.nn.BatchNorm2d): mod.reset_running_stats(); mod.momentum = None
        m2.train()
        with torch.no_grad():
            for xb, _ in DeviceBatches(data.train, 64, device="cpu", mean=data.mean, std=data.std, generator=torch.Generator(), shuffle=False): m2(xb)
        m2.eval()
        with torch.no_grad():
            rl = F.cross_entropy(m2(x), y).item()
        model.eval()
        with torch.no_grad():
            lo = model(x); 
        print(f"epoch {e+1} lr {row['lr']:.3f} train_acc {row['train_acc']:.3f} test_loss(eval) {row['test_loss']:.2f} test_loss(batch-stat BN) {bl:.2f} recalibrated-BN {rl:.2f} max|logit| {lo.abs().max():.1f}", flush=True)


if __name__ == "__main__":
    main()
