"""The retrain stage: a genotype trained from scratch on the whole long-tailed training set."""

from __future__ import annotations

import torch

from ltnas import distributed
from ltnas.config import RunConfig
from ltnas.data import LongTailDataset
from ltnas.data.splits import floor_holdout
from ltnas.longtail import build_criterion
from ltnas.methods import network, resolve, space
from ltnas.runs import use_channels_last
from ltnas.space import DiscreteNetwork, Genotype
from ltnas.space.heads import uses_normalised_classifier
from ltnas.stages.context import Context, stage_seed
from ltnas.train.retrain import RetrainTask

TRAIN_STREAM = 1  # the retraining batches' stream of the "train" stage seeds


def train(ctx: Context, genotype: Genotype | None) -> torch.nn.Module:
    """Retrain the network `train.network` names — the cell network of `genotype`, or a baseline (then
    `genotype` is None) — from scratch on the long-tailed training set; save the final model."""
    config, data = ctx.config, ctx.dataset
    cfg = config.train
    ctx.seed_everything("train")
    model = build_model(config, data, genotype).to(ctx.device)
    if use_channels_last(cfg.channels_last, ctx.device, "train.channels_last"):  # NHWC activations from NCHW batches too
        model = model.to(memory_format=torch.channels_last)
    if config.distributed.sync_bn:
        model = distributed.convert_sync_batchnorm(model, ctx.device)
    train_set, val_set = retrain_split(config, data)
    criterion = build_criterion(cfg.longtail, train_set.counts(data.num_classes), cfg.epochs, ctx.device)
    train_batches = ctx.batches(train_set, cfg.batch_size, "train", TRAIN_STREAM, sampler=cfg.longtail.sampler,
                                augment=cfg.augment, shard=distributed.shard())
    # Monitored every epoch; the test set is not looked at until the final model is evaluated.
    val_batches = ctx.eval_batches(val_set) if val_set is not None else None
    if distributed.is_main():
        ctx.run.train.mkdir(parents=True, exist_ok=True)
        if genotype is not None:
            genotype.to_json(ctx.run.train / "genotype.json")
    recalibration = ctx.eval_batches(train_set) if cfg.precise_bn else None
    task = RetrainTask(model, cfg, criterion, train_batches, val_batches, data.train_counts, data.num_classes,
                       ctx.shot_thresholds(), recalibration)
    ctx.fit(task, cfg.epochs, ctx.run.train)
    if distributed.is_main():
        save_trained_model(ctx, genotype, model)
    distributed.barrier()
    return model


def save_trained_model(ctx: Context, genotype: Genotype | None, model: torch.nn.Module) -> None:
    """RUN/train/model.pt: weights plus all that prediction needs (ltnas/model_io.py)."""
    from ltnas.model_io import Preprocess, save_model

    data = ctx.dataset
    spec = resolve(network(ctx.config.train.network).spec)(ctx.config, data, genotype)
    preprocess = Preprocess(data.image_size, data.channels, tuple(data.mean), tuple(data.std))
    identity = {"genotype": genotype.to_dict()} if genotype is not None else {}
    save_model(ctx.run.train / "model.pt", spec, model.state_dict(), data.classes, preprocess, **identity)


def retrain_split(config: RunConfig, data: LongTailDataset):
    """(images trained on, validation images or None): the source's own validation set when it has one
    (split files' data.val_list), all training images trained on; else `train.val_fraction` of each class's
    training images (floor, seeded) held out to monitor retraining; 0 keeps them all for training."""
    if data.val is not None:
        return data.train, data.val
    fraction = config.train.val_fraction
    if fraction == 0:
        return data.train, None
    train_idx, val_idx = floor_holdout(data.train.labels, fraction, stage_seed(config.seed, "train"))
    if len(val_idx) == 0:
        return data.train, None
    return data.train.subset(train_idx), data.train.subset(val_idx)


def build_model(config: RunConfig, data: LongTailDataset, genotype: Genotype | None) -> torch.nn.Module:
    """The network `train` trains: the entry of `train.network` in the network registry (ltnas.methods)."""
    entry = network(config.train.network)
    if entry.needs_genotype and genotype is None:
        raise ValueError(f"the {entry.name} network needs a genotype")
    return resolve(entry.build)(config, data, genotype)


# --- the builders of the network registry (ltnas.methods.NETWORKS) ----------------------------------------
def build_cell_network(config: RunConfig, data: LongTailDataset, genotype) -> torch.nn.Module:
    """The network of a derived architecture, as its search space builds it (ltnas.methods.SPACES): for a
    DARTS genotype `build_genotype_network`, for an S₂ architecture its chain of layers."""
    return resolve(space(genotype.space).build)(config, data, genotype)


def cell_network_spec(config: RunConfig, data: LongTailDataset, genotype) -> dict:
    return resolve(space(genotype.space).spec)(config, data, genotype)


def build_genotype_network(config: RunConfig, data: LongTailDataset, genotype: Genotype) -> DiscreteNetwork:
    """DARTS's evaluation network of `genotype`: train.cell (init_channels, layers, stem: its CIFAR or its
    ImageNet network), the auxiliary head."""
    cfg = config.train
    return DiscreteNetwork(genotype, cfg.cell.init_channels, data.num_classes, cfg.cell.layers,
                           auxiliary=cfg.auxiliary, in_channels=data.channels, image_size=data.image_size,
                           normalised=uses_normalised_classifier(cfg.longtail), stem=cfg.cell.stem)


def genotype_network_spec(config: RunConfig, data: LongTailDataset, genotype: Genotype) -> dict:
    from ltnas.model_io import genotype_network_spec as spec

    cfg = config.train
    return spec(genotype, cfg.cell.init_channels, data.num_classes, cfg.cell.layers, cfg.auxiliary,
                data.channels, data.image_size, uses_normalised_classifier(cfg.longtail), cfg.cell.stem)


def build_baseline_network(config: RunConfig, data: LongTailDataset, genotype: None = None) -> torch.nn.Module:
    """The hand-designed network `train.network` names (ltnas/space/baselines.py)."""
    from ltnas.space.baselines import build_baseline

    return build_baseline(config.train.network, data.num_classes, data.channels,
                          uses_normalised_classifier(config.train.longtail))


def baseline_network_spec(config: RunConfig, data: LongTailDataset, genotype: None = None) -> dict:
    from ltnas.model_io import baseline_network_spec as spec

    return spec(config.train.network, data.num_classes, data.channels,
                uses_normalised_classifier(config.train.longtail))
