"""The run of the methods that search a cell, retrain it and evaluate it (DARTS, FairDARTS, SSF-NAS, PC-DARTS, GDAS;
see ltnas.methods): each stage resumes where a killed run stopped."""

from __future__ import annotations

from ltnas import distributed
from ltnas.config import RunConfig
from ltnas.methods import method, resolve
from ltnas.runs import RunFolder
from ltnas.space import Genotype
from ltnas.stages.context import Context
from ltnas.stages.evaluate import evaluate_retrained, evaluate_supernet, report
from ltnas.stages.retrain import train
from ltnas.stages.search import search


def run(config: RunConfig, run_folder: RunFolder) -> dict:
    """search → retrain → evaluate → report; with `eval.model: supernet`, search → evaluate the supernet."""
    ctx = Context.prepare(config, run_folder)
    genotype = search(ctx)
    if config.eval.model == "supernet":
        results = evaluate_supernet(ctx)
        report(ctx)
        return results
    train(ctx, genotype)
    return evaluate_and_report(ctx)


def search_only(config: RunConfig, run_folder: RunFolder) -> Genotype:
    """`ltnas search`: the search stage and the report."""
    ctx = Context.prepare(config, run_folder)
    genotype = search(ctx)
    report(ctx)
    return genotype


def evaluate_searched(ctx: Context) -> dict:
    """`ltnas eval` of a searched run: the supernet or the retrained model, as `eval.model` says."""
    return evaluate_supernet(ctx) if ctx.config.eval.model == "supernet" else evaluate_retrained(ctx)


def evaluate_and_report(ctx: Context) -> dict:
    """Rank 0 evaluates (as the run's method does) and writes; under torchrun the other ranks wait and
    get its results."""
    results = None
    if distributed.is_main():
        if ctx.config.train.genotype or ctx.config.train.baseline:  # retrained without a search
            results = evaluate_retrained(ctx)
        else:
            results = resolve(method(ctx.config.search.method).evaluate)(ctx)
        report(ctx)
    return distributed.broadcast_object(results)
