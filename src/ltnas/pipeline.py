"""The stages of a run — search, retrain, evaluate — wired from a config into a run folder.

Each stage is resumable on its own: it finds its checkpoint in the run folder and continues.
Each stage seeds the random generators itself, so it starts from the same state whether the
stages before it ran in this process or in an earlier, killed one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import import_module
from time import perf_counter
from typing import Callable

import torch

from ltnas import distributed
from ltnas.config import RunConfig
from ltnas.data import DeviceBatches, LongTailDataset, build_dataset, stratified_split
from ltnas.data.splits import floor_holdout
from ltnas.evaluate import evaluate_model, evaluation_batches
from ltnas.errors import LtnasError
from ltnas.data.views import ViewAugment
from ltnas.longtail import build_arch_criterion, build_criterion
from ltnas.runs import RunFolder, resolve_device, use_channels_last
from ltnas.search import strategy_class
from ltnas.search.task import SearchTask
from ltnas.space import DiscreteNetwork, Genotype, SearchNetwork, count_parameters, load_genotype
from ltnas.space.baselines import build_baseline
from ltnas.space.heads import uses_normalised_classifier
from ltnas.train.checkpoint import load_checkpoint, load_model_state, seed_everything
from ltnas.train.loop import JsonlLog, ProgressReporter, fit
from ltnas.train.retrain import RetrainTask

# Offsets keep the stages' random streams apart while one seed drives them all.
SEARCH_SEED, TRAIN_SEED = 0, 1000


@dataclass
class Context:
    config: RunConfig
    run: RunFolder
    dataset: LongTailDataset
    device: torch.device
    progress: ProgressReporter

    @classmethod
    def prepare(cls, config: RunConfig, run: RunFolder) -> "Context":
        device = distributed.init_from_environment(resolve_device(config.device))
        dataset = build_dataset(config.data, seed=config.seed)
        if run.read_json("data.json") is None and distributed.is_main():
            run.write_json("data.json", dataset.summary())
        return cls(config, run, dataset, device, ProgressReporter(config.progress and distributed.is_main()))

    def generator(self, offset: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.config.seed + offset)


def search(ctx: Context) -> Genotype:
    """Bilevel search on a stratified train/val split of the long-tailed training set."""
    config, data = ctx.config, ctx.dataset
    cfg = config.search
    seed_everything(config.seed + SEARCH_SEED)
    train_idx, val_idx = stratified_split(data.train.labels, config.data.val_fraction, config.seed)
    train_set, val_set = data.train.subset(train_idx), data.train.subset(val_idx)
    counts = train_set.counts(data.num_classes)

    strategy_cls = strategy_class(cfg.method)
    network = build_search_network(config, data, ctx.device).to(ctx.device)
    if config.distributed.sync_bn:
        network = distributed.convert_sync_batchnorm(network, ctx.device)
    criterion = build_criterion(cfg.longtail, counts, cfg.epochs, ctx.device)
    arch_criterion = build_arch_criterion(cfg, counts, ctx.device)
    views = {}
    if cfg.method == "ssf":  # Barlow Twins' two views, with their own random stream
        views = {"views": ViewAugment(cfg.ssl.views, data.mean, data.std), "generator": ctx.generator(SEARCH_SEED + 3)}
    strategy = strategy_cls(network, cfg, criterion, arch_criterion, **views)

    def batches(images, offset):
        return DeviceBatches(images, cfg.batch_size, device=ctx.device, mean=data.mean, std=data.std,
                             generator=ctx.generator(offset), sampler=cfg.longtail.sampler, augment=cfg.augment,
                             shard=distributed.shard())

    val_batches = batches(val_set, SEARCH_SEED + 2)
    task = SearchTask(
        strategy, batches(train_set, SEARCH_SEED + 1), val_batches, val_batches.in_order(config.eval.batch_size),
        counts, cfg.derive, cfg.threshold,
    )
    fit(task, cfg.epochs, ctx.run.search, ctx.progress)
    return replace(Genotype.from_json(ctx.run.search / "genotype.json"), name="searched")


def build_search_network(config: RunConfig, data: LongTailDataset, device: torch.device) -> SearchNetwork:
    cfg = config.search
    return SearchNetwork(
        cfg.init_channels, data.num_classes, cfg.layers, in_channels=data.channels, primitives=cfg.primitives,
        nodes=cfg.nodes, **strategy_class(cfg.method).network_options(cfg), alpha_init_std=cfg.alpha_init_std,
        channels_last=use_channels_last(cfg.channels_last, device, "search.channels_last"),
        normalised=uses_normalised_classifier(cfg.longtail),
    )


def train(ctx: Context, genotype: Genotype | None) -> torch.nn.Module:
    """Retrain `genotype` (or, with `train.network` a baseline, that network; `genotype` None) from scratch
    on the whole long-tailed training set; save the final model."""
    config, data = ctx.config, ctx.dataset
    cfg = config.train
    seed_everything(config.seed + TRAIN_SEED)
    model = build_model(config, data, genotype).to(ctx.device)
    if use_channels_last(cfg.channels_last, ctx.device, "train.channels_last"):  # NHWC activations from NCHW batches too
        model = model.to(memory_format=torch.channels_last)
    if config.distributed.sync_bn:
        model = distributed.convert_sync_batchnorm(model, ctx.device)
    train_set, val_set = retrain_split(config, data)
    criterion = build_criterion(cfg.longtail, train_set.counts(data.num_classes), cfg.epochs, ctx.device)
    train_batches = DeviceBatches(
        train_set, cfg.batch_size, device=ctx.device, mean=data.mean, std=data.std,
        generator=ctx.generator(TRAIN_SEED + 1), sampler=cfg.longtail.sampler, augment=cfg.augment,
        shard=distributed.shard(),
    )
    # Monitored every epoch; the test set is not looked at until the final model is evaluated.
    val_batches = (evaluation_batches(val_set, data, ctx.device, config.eval.batch_size)
                   if val_set is not None else None)
    if distributed.is_main():
        ctx.run.train.mkdir(parents=True, exist_ok=True)
        if genotype is not None:
            genotype.to_json(ctx.run.train / "genotype.json")
    task = RetrainTask(model, cfg, criterion, train_batches, val_batches, data.train_counts, data.num_classes)
    fit(task, cfg.epochs, ctx.run.train, ctx.progress)
    if distributed.is_main():
        save_trained_model(ctx, genotype, model)
    distributed.barrier()
    return model


def save_trained_model(ctx: Context, genotype: Genotype | None, model: torch.nn.Module) -> None:
    """RUN/train/model.pt: weights plus all that prediction needs (ltnas/model_io.py)."""
    from ltnas.model_io import Preprocess, baseline_network_spec, genotype_network_spec, save_model

    cfg, data = ctx.config.train, ctx.dataset
    normalised = uses_normalised_classifier(cfg.longtail)
    if genotype is None:
        network = baseline_network_spec(cfg.network, data.num_classes, data.channels, normalised)
    else:
        network = genotype_network_spec(genotype, cfg.init_channels, data.num_classes, cfg.layers, cfg.auxiliary,
                                        data.channels, data.image_size, normalised)
    preprocess = Preprocess(data.image_size, data.channels, tuple(data.mean), tuple(data.std))
    identity = {"genotype": genotype.to_dict()} if genotype is not None else {}
    save_model(ctx.run.train / "model.pt", network, model.state_dict(), data.classes, preprocess, **identity)


def retrain_split(config: RunConfig, data: LongTailDataset):
    """(images trained on, validation images or None): `train.val_fraction` of each class's
    training images (floor, seeded) held out to monitor retraining; 0 keeps them all for training."""
    fraction = config.train.val_fraction
    if fraction == 0:
        return data.train, None
    train_idx, val_idx = floor_holdout(data.train.labels, fraction, config.seed + TRAIN_SEED)
    if len(val_idx) == 0:
        return data.train, None
    return data.train.subset(train_idx), data.train.subset(val_idx)


def build_model(config: RunConfig, data: LongTailDataset, genotype: Genotype | None) -> torch.nn.Module:
    """The network `train` trains: the baseline `train.network` names, or the cell network of `genotype`."""
    cfg = config.train
    if cfg.baseline:
        return build_baseline(cfg.network, data.num_classes, data.channels, uses_normalised_classifier(cfg.longtail))
    if genotype is None:
        raise ValueError("a cell network needs a genotype")
    return DiscreteNetwork(genotype, cfg.init_channels, data.num_classes, cfg.layers, auxiliary=cfg.auxiliary,
                           in_channels=data.channels, image_size=data.image_size,
                           normalised=uses_normalised_classifier(cfg.longtail))


def evaluate(ctx: Context) -> dict:
    """Evaluate the retrained model on the balanced and the long-tailed test sets; write eval.json."""
    model_file = ctx.run.train / "model.pt"
    if not model_file.is_file():
        raise LtnasError(f"{ctx.run.path} has no trained model (train/model.pt); finish it with `ltnas run --resume "
                         f"{ctx.run.path}` or train one with `ltnas train`")
    began = perf_counter()
    saved = load_checkpoint(model_file, ctx.device, keys=("model",))
    genotype = Genotype.from_dict(saved["genotype"]) if "genotype" in saved else None
    model = build_model(ctx.config, ctx.dataset, genotype).to(ctx.device)
    load_model_state(model, saved["model"], model_file)
    results = {"network": ctx.config.train.network, "genotype": (genotype.name or "searched") if genotype else None,
               **_test_results(ctx, model)}
    results["seconds"] = {
        "search": _stage_seconds(ctx.run, "search"),
        "train": _stage_seconds(ctx.run, "train"),
        "eval": perf_counter() - began,
    }
    ctx.run.write_json("eval.json", results)
    return results


def evaluate_supernet(ctx: Context) -> dict:
    """Evaluate the searched supernet itself, as it stands after the search (no retraining; paper 001's
    protocol); eval.json in the schema of `evaluate`, with `train` seconds None."""
    checkpoint = ctx.run.search / "checkpoint.pt"
    if not checkpoint.is_file():
        raise LtnasError(f"{ctx.run.path} has no searched supernet (search/checkpoint.pt); finish the search with "
                         f"`ltnas run --resume {ctx.run.path}`")
    began = perf_counter()
    state = load_checkpoint(checkpoint, ctx.device)
    network = build_search_network(ctx.config, ctx.dataset, ctx.device).to(ctx.device)
    network.load_state_dict(state["task"]["strategy"]["network"])
    results = {"genotype": "searched", "model": "supernet", **_test_results(ctx, network)}
    results["seconds"] = {"search": _stage_seconds(ctx.run, "search"), "train": None, "eval": perf_counter() - began}
    ctx.run.write_json("eval.json", results)
    return results


def _test_results(ctx: Context, model: torch.nn.Module) -> dict:
    """The part of eval.json every evaluated model shares: its size, the device, and its metrics on
    the balanced and (when there is one) the long-tailed test set."""
    data, batch_size = ctx.dataset, ctx.config.eval.batch_size
    shots = (ctx.config.eval.many_shot, ctx.config.eval.few_shot)
    _draw_misclassified(ctx, model)
    return {
        "params": count_parameters(model),
        "device": str(ctx.device),
        "balanced_test": evaluate_model(model, data.test, data, ctx.device, batch_size, shots=shots),
        "longtail_test": (evaluate_model(model, data.test_longtail, data, ctx.device, batch_size, shots=shots)
                          if data.test_longtail is not None else None),
    }


def _draw_misclassified(ctx: Context, model: torch.nn.Module) -> None:
    """RUN/plots/misclassified.png: a grid of misclassified test images, tail classes first (drawn here,
    where the images are; the report shows it)."""
    from ltnas.evaluate import misclassified_examples
    from ltnas.report.plots import plot_misclassified

    images, true, predicted = misclassified_examples(model, ctx.dataset.test, ctx.dataset, ctx.device,
                                                     ctx.config.eval.batch_size)
    target = ctx.run.path / "plots" / "misclassified.png"
    if len(true):
        plot_misclassified(images.numpy(), true, predicted, ctx.dataset.classes, target)
    else:
        target.unlink(missing_ok=True)  # every test image right: nothing to show


def _stage_seconds(run: RunFolder, stage: str) -> float | None:
    rows = JsonlLog(run.path / stage / "metrics.jsonl").rows()
    return sum(row["seconds"] for row in rows) if rows else None


def report(ctx: Context) -> None:
    from ltnas.report import write_report

    if distributed.is_main():
        write_report(ctx.run.path)


# Methods whose run is not search → retrain → evaluate register their own `run_all` here as
# "module:function" (imported only when used): fn(config, run) -> eval.json dict, written to the run
# folder in the same schema as `evaluate` (balanced_test / longtail_test metrics, seconds, ...).
METHOD_RUNNERS: dict[str, str] = {"bbn": "ltnas.stages.bbn:run_bbn", "imbnas": "ltnas.train.adapt:run_imbnas"}


def method_runner(method: str) -> Callable[[RunConfig, RunFolder], dict] | None:
    target = METHOD_RUNNERS.get(method)
    if target is None:
        return None
    module, _, function = target.partition(":")
    return getattr(import_module(module), function)


def run_all(config: RunConfig, run: RunFolder) -> dict:
    """search → train → evaluate → report, each stage resuming where a killed run stopped.

    With `train.genotype` set there is nothing to search: that genotype is trained instead; with
    `train.network` a baseline, that network is.
    A method with its own kind of run (see METHOD_RUNNERS) runs that instead.
    """
    if config.train.genotype or config.train.baseline:
        return train_only(config, run)
    runner = method_runner(config.search.method)
    if runner is not None:
        if distributed.is_distributed():
            raise LtnasError(f"search.method {config.search.method} runs in one process; under torchrun ltnas "
                             "runs darts, fairdarts, ssf, pcdarts and gdas searches and retraining (start it "
                             "without torchrun)")
        return runner(config, run)
    ctx = Context.prepare(config, run)
    genotype = search(ctx)
    if config.eval.model == "supernet":
        results = evaluate_supernet(ctx)
        report(ctx)
        return results
    train(ctx, genotype)
    return evaluate_and_report(ctx)


def search_only(config: RunConfig, run: RunFolder) -> Genotype:
    ctx = Context.prepare(config, run)
    if config.search.method == "bbn":  # the backbone's cells; the head cells are in search/genotype.json
        from ltnas.stages.bbn import search_two_branch

        search_two_branch(ctx)
        report(ctx)
        return Genotype.from_json(ctx.run.search / "genotype.json")
    genotype = search(ctx)
    report(ctx)
    return genotype


def train_only(config: RunConfig, run: RunFolder) -> dict:
    """Retrain `train.genotype` (a published name or a file) or the baseline `train.network`, then
    evaluate and report."""
    if config.train.baseline:
        ctx = Context.prepare(config, run)
        train(ctx, None)
        return evaluate_and_report(ctx)
    if not config.train.genotype:
        raise LtnasError("no genotype to train; pass --genotype NAME|FILE (e.g. DARTS_V2), set train.genotype, or "
                         "set train.network to a baseline (e.g. resnet32)")
    ctx = Context.prepare(config, run)
    # A resumed run trains the genotype it started with, wherever it is resumed from and whatever
    # happened to the file it was read from since.
    started = ctx.run.train / "genotype.json"
    genotype = Genotype.from_json(started) if started.is_file() else load_genotype(config.train.genotype)
    train(ctx, genotype)
    return evaluate_and_report(ctx)


def evaluate_and_report(ctx: Context) -> dict:
    """Rank 0 evaluates and writes; under torchrun the other ranks wait and get its results."""
    results = None
    if distributed.is_main():
        searched = not (ctx.config.train.genotype or ctx.config.train.baseline)
        if searched and ctx.config.search.method == "bbn":
            from ltnas.stages.bbn import reevaluate

            results = reevaluate(ctx)
        elif searched and ctx.config.eval.model == "supernet":
            results = evaluate_supernet(ctx)
        else:
            results = evaluate(ctx)
        report(ctx)
    return distributed.broadcast_object(results)
