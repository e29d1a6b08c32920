"""The evaluate stage: a trained model (or a searched supernet) on the balanced and the long-tailed
test sets, into eval.json; and the report."""

from __future__ import annotations

from time import perf_counter

import torch

from ltnas import distributed
from ltnas.errors import LtnasError
from ltnas.evaluate import evaluate_model, rank_images, ranked_metrics
from ltnas.methods import method
from ltnas.space import count_parameters
from ltnas.space.cost import multiply_adds
from ltnas.space.genotype import architecture_from_dict
from ltnas.stages.context import Context
from ltnas.stages.retrain import build_model
from ltnas.train.checkpoint import load_checkpoint, load_model_state


def evaluate_retrained(ctx: Context) -> dict:
    """Evaluate the retrained model (RUN/train/model.pt: a genotype's cell network or a baseline) on the
    balanced and the long-tailed test sets; write eval.json."""
    model_file = ctx.run.train / "model.pt"
    if not model_file.is_file():
        raise LtnasError(f"{ctx.run.path} has no trained model (train/model.pt); finish it with `ltnas run --resume "
                         f"{ctx.run.path}` or train one with `ltnas train`")
    began = perf_counter()
    saved = load_checkpoint(model_file, ctx.device, keys=("model",))
    genotype = architecture_from_dict(saved["genotype"]) if "genotype" in saved else None
    model = build_model(ctx.config, ctx.dataset, genotype).to(ctx.device)
    load_model_state(model, saved["model"], model_file)
    results = {"network": ctx.config.train.network, "genotype": (genotype.name or "searched") if genotype else None,
               **test_results(ctx, model)}
    results["seconds"] = {"search": ctx.stage_seconds("search"), "train": ctx.stage_seconds("train"),
                          "eval": perf_counter() - began}
    return ctx.write_eval(results)


def evaluate_supernet(ctx: Context) -> dict:
    """Evaluate the searched supernet itself, as it stands after the search (no retraining; HLS (Tang,
    2024)'s protocol); eval.json in the schema of `evaluate_retrained`, with `train` seconds None."""
    checkpoint = ctx.run.search / "checkpoint.pt"
    if not checkpoint.is_file():
        raise LtnasError(f"{ctx.run.path} has no searched supernet (search/checkpoint.pt); finish the search with "
                         f"`ltnas run --resume {ctx.run.path}`")
    began = perf_counter()
    state = load_checkpoint(checkpoint, ctx.device)
    network = method(ctx.config.search.method).build_network(ctx.config, ctx.dataset, ctx.device).to(ctx.device)
    network.load_state_dict(state["task"]["strategy"]["network"])
    results = {"genotype": "searched", "model": "supernet", **test_results(ctx, network)}
    results["seconds"] = {"search": ctx.stage_seconds("search"), "train": None, "eval": perf_counter() - began}
    return ctx.write_eval(results)


def test_results(ctx: Context, model: torch.nn.Module) -> dict:
    """The part of eval.json every evaluated model shares: its size (parameters, and multiply-adds per image:
    `ltnas.space.cost.multiply_adds`, the "×+" of FairDARTS (Chu et al., 2020)'s Tables 1 and 2), the device,
    and its metrics on the balanced and (when there is one) the long-tailed test set."""
    data, batch_size = ctx.dataset, ctx.config.eval.batch_size
    shots = (ctx.config.eval.many_shot, ctx.config.eval.few_shot)
    balanced = rank_images(model, data.test, data, ctx.device, batch_size)  # one pass: metrics and the figure
    draw_misclassified(ctx, balanced)
    return {
        "params": count_parameters(model),
        "madds": multiply_adds(model, data.channels, data.image_size),
        "device": str(ctx.device),
        "balanced_test": ranked_metrics(balanced, data, shots=shots),
        "longtail_test": (evaluate_model(model, data.test_longtail, data, ctx.device, batch_size, shots=shots)
                          if data.test_longtail is not None else None),
    }


test_results.__test__ = False  # not a pytest test, whatever its name


def draw_misclassified(ctx: Context, ranking: tuple[torch.Tensor, torch.Tensor, float]) -> None:
    """RUN/plots/misclassified.png: a grid of misclassified test images, tail classes first (drawn here,
    where the images are; the report shows it), from the model's `rank_images` on the balanced test set."""
    from ltnas.evaluate import misclassified_examples
    from ltnas.report.plots import plot_misclassified

    images, true, predicted = misclassified_examples(ranking, ctx.dataset.test, ctx.dataset)
    target = ctx.run.path / "plots" / "misclassified.png"
    if len(true):
        plot_misclassified(images.numpy(), true, predicted, ctx.dataset.classes, target)
    else:
        target.unlink(missing_ok=True)  # every test image right: nothing to show


def report(ctx: Context) -> None:
    """RUN/report.md and RUN/plots/ (rank 0 only)."""
    from ltnas.report import write_report

    if distributed.is_main():
        write_report(ctx.run.path)
