"""Random cells from the regularised space: FairDARTS (Chu et al., 2020)'s Table 3, experiment 1.

"In the regularized search space of P-DARTS and DARTS+, we find that simply by restricting M = 2, it is possible
to generate competitive models even without searching" (published, 7 models each: 97.01 ± 0.24 % on CIFAR-10,
and 97.14 ± 0.28 % when the multiply-adds are held above 500M). The draw follows the authors' code
(xiaomi-automl/FairDARTS, darts/model_search.py `random_generate`), which derives DARTS' rule from random α:
per node two distinct inputs chosen uniformly, each edge an operation chosen uniformly (`PathSpace.sample`);
a draw is kept only when

- its normal cell has exactly M skip connections (`random.skip_rule` / `skip_cells` also allow "at most M", and
  counting in each of the two cells), and
- with `random.min_madds`, the network retraining will build (train.cell.init_channels × train.cell.layers at the data's
  image size; their check: C = 36, 20 cells, 32 × 32) has at least that many multiply-adds (ltnas.space.cost);

otherwise it is redrawn, at most `random.max_draws` times. (Their derivation can pick `none` for an edge; a
`none` edge contributes nothing, so ltnas draws from the operations besides it.) One `random.Random` seeded from
the run's seed drives the draws: same seed, same cells.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from ltnas.config import RandomConfig
from ltnas.errors import LtnasError
from ltnas.search.oneshot import PathSpace
from ltnas.space import CELL_TYPES, Genotype

SKIP = "skip_connect"


def skip_counts(genotype: Genotype) -> dict[str, int]:
    """The number of skip_connect edges of each cell."""
    return {kind: sum(edge.op == SKIP for edge in getattr(genotype, kind)) for kind in CELL_TYPES}


def meets_skip_rule(genotype: Genotype, config: RandomConfig) -> bool:
    """Whether the cells counted (`skip_cells`) have exactly / at most M skip connections (`skip_rule`)."""
    counts = skip_counts(genotype)
    cells = ("normal",) if config.skip_cells == "normal" else CELL_TYPES
    if config.skip_rule == "exactly":
        return all(counts[kind] == config.skips for kind in cells)
    return all(counts[kind] <= config.skips for kind in cells)


@dataclass
class Draw:
    """The kept genotype and how it was found: draws made, rejections by cause, its multiply-adds (when counted)."""

    genotype: Genotype
    draws: int
    rejected: dict[str, int] = field(default_factory=lambda: {"skips": 0, "madds": 0})
    madds: int | None = None

    def record(self) -> dict:
        return {"draws": self.draws, "rejected": self.rejected, "madds": self.madds,
                "skip_counts": skip_counts(self.genotype)}


def draw_regularised(space: PathSpace, config: RandomConfig, rng: random.Random,
                     madds: Callable[[Genotype], int] | None = None) -> Draw:
    """Redraw `space.sample(rng)` until it meets the skip rule and (when `config.min_madds` is set) the floor
    of `madds(genotype)`; at most `config.max_draws` draws, else one line saying what to relax."""
    rejected = {"skips": 0, "madds": 0}
    best = 0
    for draw in range(1, config.max_draws + 1):
        genotype = space.sample(rng)
        if not meets_skip_rule(genotype, config):
            rejected["skips"] += 1
            continue
        if config.min_madds is None:
            return Draw(genotype, draw, rejected)
        cost = madds(genotype)
        if cost >= config.min_madds:
            return Draw(genotype, draw, rejected, cost)
        rejected["madds"] += 1
        best = max(best, cost)
    where = "the normal cell" if config.skip_cells == "normal" else "each cell"
    rule = f"{config.skip_rule.replace('_', ' ')} {config.skips} skip connections in {where}"
    if config.min_madds is not None and rejected["madds"]:
        raise LtnasError(
            f"no random cell of {config.max_draws} draws reaches search.random.min_madds = {config.min_madds:,} "
            f"multiply-adds (the largest drawn: {best:,}, with {rule}); lower min_madds, or raise "
            "train.cell.init_channels / train.cell.layers")
    raise LtnasError(f"no random cell of {config.max_draws} draws has {rule}; relax search.random (skips, "
                     "skip_rule) or raise search.random.max_draws")
