"""The run of `search.method: bbn` (HLS (Tang, 2024)): two-branch search, then evaluation of the searched
two-branch network itself at any test-time mixing ratio.

    RUN/search/      metrics.jsonl (μ, HLS factor, learning rates and α-gradient norms per component per
                     epoch), alpha.jsonl (α of the
                     backbone normal/reduction cells and of both head cells), genotype.json (backbone
                     cells + head_instance + head_balanced), genotypes/epoch_NNN.json, checkpoint.pt
    RUN/eval.json    metrics at μ_test (`search.bbn.mu_test`, 0.5 by default), same schema as
                     `stages.evaluate`, plus the μ chosen on the validation part and its test metrics
    RUN/mu_sweep.json  accuracy against μ_test on validation, balanced and long-tailed test sets

The paper evaluates the searched 8-layer network directly, without retraining (its Section V-A),
and reports Table II "at the best mixing ratio" — picked on the test set. ltnas reports the
test metrics at a μ fixed beforehand (0.5, BBN's inference convention: both branches equal) and at
the μ that is best on the validation part; the whole test sweep is there to compare with the paper.
"""

from __future__ import annotations

from time import perf_counter

from ltnas.config import RunConfig
from ltnas.data import DeviceBatches, stratified_split
from ltnas.errors import LtnasError
from ltnas.metrics import SHOT_GROUPS
from ltnas.runs import RunFolder
from ltnas.search.bbn import BbnSearch, TwoBranchSearchNetwork
from ltnas.search.bbn_task import BbnSearchTask, mixed_metrics, predict_branches
from ltnas.space import Genotype, count_parameters
from ltnas.space.heads import uses_normalised_classifier
from ltnas.stages.context import Context
from ltnas.stages.evaluate import report
from ltnas.train.loop import JsonlLog

SWEEP_KEYS = ("overall", "balanced", *SHOT_GROUPS)


def run_bbn(config: RunConfig, run: RunFolder) -> dict:
    """search → evaluate the two-branch network → report; resumes where a killed run stopped."""
    if config.eval.model == "retrained":
        raise LtnasError("retraining the derived two-branch network is not available; the bbn method evaluates "
                         "its searched network (HLS (Tang, 2024)): set eval.model: supernet or leave it unset")
    ctx = Context.prepare(config, run)
    network, val_batches, search_counts = search_two_branch(ctx)
    results = evaluate_two_branch(ctx, network, val_batches, search_counts)
    report(ctx)
    return results


def search_only(config: RunConfig, run: RunFolder) -> Genotype:
    """`ltnas search`: the two-branch search and the report; returns the backbone's cells (the head
    cells are in search/genotype.json too)."""
    ctx = Context.prepare(config, run)
    search_two_branch(ctx)
    report(ctx)
    return Genotype.from_json(ctx.run.search / "genotype.json")


def reevaluate(ctx: Context) -> dict:
    """`ltnas eval RUN`: evaluate a finished two-branch search again; rewrites eval.json and mu_sweep.json."""
    rows = JsonlLog(ctx.run.search / "metrics.jsonl").rows()
    search = ctx.config.search
    if len(rows) < search.epochs + search.bbn.continued_epochs_run:
        raise LtnasError(f"the search of {ctx.run.path} has not finished; finish it with "
                         f"`ltnas run --resume {ctx.run.path}`")
    network, val_batches, search_counts = search_two_branch(ctx)  # reloads the finished search
    return evaluate_two_branch(ctx, network, val_batches, search_counts)


def build_two_branch_network(config: RunConfig, num_classes: int, channels: int) -> TwoBranchSearchNetwork:
    cfg = config.search
    return TwoBranchSearchNetwork(cfg.cell.init_channels, num_classes, cfg.cell.layers, in_channels=channels,
                                  primitives=cfg.cell.primitives, nodes=cfg.cell.nodes, relaxation=BbnSearch.relaxation,
                                  alpha_init_std=cfg.alpha_init_std,
                                  normalised=uses_normalised_classifier(cfg.longtail))


def build_network(config: RunConfig, data, device) -> TwoBranchSearchNetwork:
    """The bbn method's network (ltnas.methods): the two-branch supernet for `data`."""
    return build_two_branch_network(config, data.num_classes, data.channels)


def search_two_branch(ctx: Context) -> tuple[TwoBranchSearchNetwork, DeviceBatches, list[int]]:
    """Run (or resume, or reload when finished) the two-branch search; returns the searched network,
    the validation part in order and the class counts of the part it trained on."""
    config, data = ctx.config, ctx.dataset
    cfg = config.search
    ctx.seed_everything("search")
    train_idx, val_idx = stratified_split(data.train.labels, config.data.val_fraction, config.seed)
    parts = {"train": data.train.subset(train_idx), "val": data.train.subset(val_idx)}
    counts = parts["train"].counts(data.num_classes)

    network = build_network(config, data, ctx.device).to(ctx.device)
    strategy = BbnSearch(network, cfg)
    # Four streams in lockstep, each with its own generator (so each resumes from its own state).
    # The re-balancing branch's sampler: BBN's reversed one (∝ 1/n_c) by default, or class-balanced.
    plan = [("train_instance", "train", "instance"), ("train_balanced", "train", cfg.bbn.resampler),
            ("val_instance", "val", "instance"), ("val_balanced", "val", cfg.bbn.resampler)]
    streams = {name: ctx.batches(parts[part], cfg.batch_size, "search", stream, sampler=sampler,
                                 augment=cfg.augment)
               for stream, (name, part, sampler) in enumerate(plan, start=1)}
    val_in_order = streams["val_instance"].in_order(config.eval.batch_size)
    task = BbnSearchTask(strategy, streams, val_in_order, counts, cfg.bbn.mu_test, cfg.derive, cfg.threshold)
    ctx.fit(task, strategy.total_epochs, ctx.run.search)
    return network, val_in_order, counts


def evaluate_two_branch(ctx: Context, network: TwoBranchSearchNetwork, val_batches: DeviceBatches,
                        search_counts: list[int]) -> dict:
    """eval.json at μ_test, and beside it at the μ picked on validation, at μ = 0 (the class-balanced head
    alone, where HLS (Tang, 2024) finds accuracy best) and at the best test μ (the paper's Table II protocol,
    optimistic: chosen on the test set); the μ sweep goes to mu_sweep.json."""
    began = perf_counter()
    bbn, data = ctx.config.search.bbn, ctx.dataset
    sets = {"val": (predict_branches(network, val_batches), search_counts)}
    sets["balanced_test"] = (predict_branches(network, ctx.eval_batches(data.test)), data.train_counts)
    if data.test_longtail is not None:
        sets["longtail_test"] = (predict_branches(network, ctx.eval_batches(data.test_longtail)), data.train_counts)

    shots = (ctx.config.eval.many_shot, ctx.config.eval.few_shot)

    def metrics_at(mu: float, name: str) -> dict:
        (o_ins, o_cls, labels), counts = sets[name]
        return mixed_metrics(o_ins, o_cls, labels, mu, data.num_classes, counts, shots)

    def summary_at(mu: float, name: str) -> dict:
        metrics = metrics_at(mu, name)
        return {key: metrics[key] for key in SWEEP_KEYS}

    sweep = [{"mu": mu, **{name: summary_at(mu, name) for name in sets}} for mu in bbn.mu_sweep]
    mu_val = max(sweep, key=lambda row: (row["val"]["balanced"], -abs(row["mu"] - bbn.mu_test)))["mu"]
    mu_best = max(sweep, key=lambda row: (row["balanced_test"]["overall"], -abs(row["mu"] - bbn.mu_test)))["mu"]
    ctx.run.write_json("mu_sweep.json", {"mu_test": bbn.mu_test, "mu_selected_on_val": mu_val,
                                         "mu_best_on_test": mu_best, "rows": sweep})

    def at(mu: float) -> dict:
        return {"mu": mu, **{name: summary_at(mu, name) for name in sets if name != "val"}}

    results = {
        "genotype": "searched",
        "model": "two-branch supernet",
        "mu_test": bbn.mu_test,
        "params": count_parameters(network),
        "device": str(ctx.device),
        "balanced_test": metrics_at(bbn.mu_test, "balanced_test"),
        "longtail_test": metrics_at(bbn.mu_test, "longtail_test") if "longtail_test" in sets else None,
        "mu_selected_on_val": at(mu_val),
        "mu_zero": at(0.0),
        "mu_best_on_test": at(mu_best),  # Table II's protocol: μ chosen on the test set (optimistic)
    }
    results["seconds"] = {"search": ctx.stage_seconds("search"), "train": None, "eval": perf_counter() - began}
    return ctx.write_eval(results)

