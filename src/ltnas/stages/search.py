"""The shared search stage: bilevel search of a cell by a method's strategy (DARTS, FairDARTS, SSF-NAS)."""

from __future__ import annotations

from dataclasses import replace

import torch

from ltnas import distributed
from ltnas.config import RunConfig
from ltnas.data import LongTailDataset, stratified_split
from ltnas.data.views import ViewAugment
from ltnas.longtail import build_arch_criterion, build_criterion
from ltnas.methods import method, resolve, space
from ltnas.runs import use_channels_last
from ltnas.search.task import SearchTask
from ltnas.space import Genotype, SearchNetwork
from ltnas.space.genotype import load_architecture
from ltnas.space.heads import uses_normalised_classifier
from ltnas.stages.context import STREAMS, Context


def search(ctx: Context) -> Genotype:
    """Bilevel search on a stratified train/val split of the long-tailed training set."""
    config, data = ctx.config, ctx.dataset
    cfg = config.search
    entry = method(cfg.method)
    ctx.seed_everything("search")
    train_idx, val_idx = stratified_split(data.train.labels, config.data.val_fraction, config.seed)
    train_set, val_set = data.train.subset(train_idx), data.train.subset(val_idx)
    counts = train_set.counts(data.num_classes)

    network = entry.build_network(config, data, ctx.device).to(ctx.device)
    if config.distributed.sync_bn:
        network = distributed.convert_sync_batchnorm(network, ctx.device)
    criterion = build_criterion(cfg.longtail, counts, cfg.epochs, ctx.device)
    arch_criterion = build_arch_criterion(cfg, counts, ctx.device)
    views = {}
    if entry.uses_barlow_twins(cfg):  # Barlow Twins' two views, with their own random stream
        views = {"views": ViewAugment(cfg.ssl.views, data.mean, data.std),
                 "generator": ctx.generator("search", STREAMS["views"])}
    strategy = entry.strategy_class(cfg)(network, cfg, criterion, arch_criterion, **views)

    def batches(images, stream):
        return ctx.batches(images, cfg.batch_size, "search", STREAMS[stream], sampler=cfg.longtail.sampler,
                           augment=cfg.augment, shard=distributed.shard())

    val_batches = batches(val_set, "val")
    task = SearchTask(
        strategy, batches(train_set, "train"), val_batches, val_batches.in_order(config.eval.batch_size),
        counts, cfg.derive, cfg.threshold, ctx.shot_thresholds(),
    )
    ctx.fit(task, cfg.epochs, ctx.run.search)
    return replace(load_architecture(ctx.run.search / "genotype.json"), name="searched")


def build_search_network(config: RunConfig, data: LongTailDataset, device: torch.device) -> torch.nn.Module:
    """The supernet of `search.space` (ltnas.methods.SPACES), shaped as the method's strategy says (its
    relaxation, its mixed operation: `network_options`); the `network` of the single-cell searches in ltnas.methods."""
    cfg = config.search
    options = method(cfg.method).strategy_class().network_options(cfg)
    return resolve(space(cfg.space).supernet)(config, data, device, options)


def build_cell_supernet(config: RunConfig, data: LongTailDataset, device: torch.device, options: dict) -> SearchNetwork:
    """The DARTS supernet of the search section (the `darts` space's supernet)."""
    cfg = config.search
    return SearchNetwork(
        cfg.cell.init_channels, data.num_classes, cfg.cell.layers, in_channels=data.channels,
        primitives=cfg.cell.primitives, nodes=cfg.cell.nodes, **options,
        alpha_init_std=cfg.alpha_init_std,
        channels_last=use_channels_last(cfg.channels_last, device, "search.channels_last"),
        normalised=uses_normalised_classifier(cfg.longtail),
    )
