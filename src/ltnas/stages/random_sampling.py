"""The run of `search.method: random` (ltnas.methods): a cell pair drawn from the regularised space instead of a
search (ltnas.search.random_sampling), then the standard retrain → evaluate → report.

The draw writes search/genotype.json (what retraining trains) and search/sample.json (how it was found: draws,
rejections, skip counts, multiply-adds). It is seeded by the run's seed alone, so every rank of a torchrun run
draws the same cells; a resumed run reads the saved genotype back rather than drawing again.
"""

from __future__ import annotations

import random
from dataclasses import replace

from ltnas import distributed
from ltnas.config import RunConfig
from ltnas.runs import RunFolder
from ltnas.search.oneshot import PathSpace
from ltnas.search.random_sampling import draw_regularised
from ltnas.space import Genotype
from ltnas.space.cost import subnet_cost
from ltnas.space.heads import uses_normalised_classifier
from ltnas.stages.context import Context
from ltnas.stages.evaluate import report
from ltnas.stages.retrain import train
from ltnas.stages.standard import evaluate_and_report

SAMPLE_STREAM = 6  # the draw's stream of the search stage's seeds (the search streams use 1-3, GDAS +4, noise +5)


def sample(ctx: Context) -> Genotype:
    """The drawn genotype: search/genotype.json when a run drew it already, else drawn now and saved."""
    saved = ctx.run.search / "genotype.json"
    if saved.is_file():
        return replace(Genotype.from_json(saved), name="searched")
    config, data = ctx.config, ctx.dataset
    cfg, train_cfg = config.search, config.train

    def madds(genotype: Genotype) -> int:
        return subnet_cost(genotype, train_cfg.cell.init_channels, train_cfg.cell.layers, data.num_classes, data.channels,
                           data.image_size, uses_normalised_classifier(train_cfg.longtail),
                           train_cfg.cell.stem)[1]

    seed = ctx.seed("search", SAMPLE_STREAM)
    drawn = draw_regularised(PathSpace(cfg.cell.nodes, cfg.cell.primitives), cfg.random, random.Random(seed), madds)
    if drawn.madds is None:  # no floor: counted once for the record
        drawn.madds = madds(drawn.genotype)
    if distributed.is_main():
        ctx.run.search.mkdir(parents=True, exist_ok=True)
        ctx.run.write_json("search/sample.json", {"draw_seed": seed, "settings": cfg.random.model_dump(), **drawn.record()})
        drawn.genotype.to_json(saved)  # last: its presence means the draw is done
    distributed.barrier()
    return replace(drawn.genotype, name="searched")


def run(config: RunConfig, run_folder: RunFolder) -> dict:
    """draw → retrain → evaluate → report."""
    ctx = Context.prepare(config, run_folder)
    genotype = sample(ctx)
    train(ctx, genotype)
    return evaluate_and_report(ctx)


def sample_only(config: RunConfig, run_folder: RunFolder) -> Genotype:
    """`ltnas search`: the draw and the report."""
    ctx = Context.prepare(config, run_folder)
    genotype = sample(ctx)
    report(ctx)
    return genotype
