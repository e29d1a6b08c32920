"""A run, dispatched by its method (ltnas.methods): the stages themselves live in ltnas.stages.

    run_all        the method's whole run (search → retrain → evaluate → report, or its own)
    search_only    `ltnas search`: the method's search alone
    train_only     `ltnas train`: retrain a given genotype, evaluate, report
    evaluate_and_report  `ltnas eval`: evaluate a finished run again

Each stage is resumable on its own and seeds its random generators itself (ltnas.stages.context).
"""

from __future__ import annotations

from ltnas import distributed
from ltnas.config import RunConfig
from ltnas.errors import LtnasError
from ltnas.methods import METHODS, method, resolve
from ltnas.runs import RunFolder
from ltnas.space import Genotype, load_genotype
from ltnas.space.genotype import load_architecture
from ltnas.stages.context import Context
from ltnas.stages.evaluate import evaluate_retrained as evaluate
from ltnas.stages.retrain import build_model, train
from ltnas.stages.search import build_search_network, search
from ltnas.stages.standard import evaluate_and_report

__all__ = ["Context", "build_model", "build_search_network", "evaluate", "evaluate_and_report", "run_all",
           "search", "search_only", "train", "train_only"]


def run_all(config: RunConfig, run: RunFolder) -> dict:
    """The run of `search.method`, each stage resuming where a killed run stopped. With
    `train.genotype` set, or `train.network` a baseline, there is nothing to search: that genotype or
    network is trained instead."""
    if config.train.genotype or config.train.baseline:
        return train_only(config, run)
    entry = method(config.search.method)
    if entry.single_process and distributed.is_distributed():
        multi = ", ".join(name for name, other in METHODS.items() if not other.single_process)
        raise LtnasError(f"search.method {entry.name} runs in one process; under torchrun ltnas runs {multi} "
                         "searches and retraining (start it without torchrun)")
    return resolve(entry.run)(config, run)


def search_only(config: RunConfig, run: RunFolder) -> Genotype:
    """The method's search alone; its genotype is in RUN/`method.genotype_file`."""
    return resolve(method(config.search.method).search)(config, run)


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
    genotype = load_architecture(started) if started.is_file() else load_genotype(config.train.genotype)
    train(ctx, genotype)
    return evaluate_and_report(ctx)

