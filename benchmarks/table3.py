"""FairDARTS (Chu et al., 2020)'s Table 3 experiments, measured where a CPU allows.

    python benchmarks/table3.py random                  # random M=2 cells at the CIFAR-10 evaluation size
    python benchmarks/table3.py skips --seeds 0,1,2     # skip connections DARTS vs darts_noise derive (quickstart)
    python benchmarks/table3.py random --smoke          # tiny: checks it runs (the test suite; also for skips)

`random`: for each seed, the cell pair `search.method: random` keeps (exactly 2 skip connections in the normal
cell, the authors' rule), with the multiply-adds of its retrained network at C = 36, 20 cells, 32 × 32, 10
classes (ltnas.space.cost): how many draws the rule costs, and how many kept cells already pass the paper's 500M
floor. No data, no training: deterministic, seconds.

`skips`: searches only (no retraining) on the quickstart config (the embedded digits, long-tailed), one per
method × seed: DARTS, darts_noise with the noise on the skip outputs (the authors' code) and on α (the paper's
wording). Prints per run the skip connections of the derived normal and reduction cells, the mean softmax weight
of skip_connect over the normal cell's edges at the last epoch, and the last epoch's balanced validation
accuracy. A short search on tiny data: it shows whether the noise moves the skip weights, not Table 3's accuracy.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path


def random_cells(seeds: list[int], threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from ltnas.config import RandomConfig
    from ltnas.methods import PRIMITIVES
    from ltnas.search.oneshot import PathSpace
    from ltnas.search.random_sampling import draw_regularised, skip_counts
    from ltnas.space.cost import subnet_cost

    space = PathSpace(4, PRIMITIVES)
    rows = []
    began = time.perf_counter()
    for seed in seeds:
        drawn = draw_regularised(space, RandomConfig(), random.Random(seed))
        params, madds = subnet_cost(drawn.genotype, 36, 20, 10, 3, 32)
        rows.append((seed, drawn.draws, skip_counts(drawn.genotype)["reduce"], params, madds))
    seconds = time.perf_counter() - began
    print(f"# random M=2 cells at C=36, 20 cells, 32x32, 10 classes; {len(seeds)} seeds; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {threads} thread(s); {seconds:.1f} s in all")
    madds = [row[4] / 1e6 for row in rows]
    draws = [row[1] for row in rows]
    print(f"draws per kept cell: mean {statistics.mean(draws):.1f}, max {max(draws)}")
    print(f"multiply-adds (M): mean {statistics.mean(madds):.0f}, sd {statistics.stdev(madds):.0f}, "
          f"min {min(madds):.0f}, max {max(madds):.0f}; >= 500M: {sum(m >= 500 for m in madds)} of {len(madds)}")
    print(f"parameters (M): mean {statistics.mean(row[3] / 1e6 for row in rows):.2f}; reduction-cell skips: "
          f"mean {statistics.mean(row[2] for row in rows):.2f}")


def skips(seeds: list[int], epochs: int, threads: int, device: str, smoke: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    from ltnas import pipeline
    from ltnas.config import load_config
    from ltnas.runs import RunFolder
    from ltnas.search.random_sampling import skip_counts
    from ltnas.space import Genotype
    from ltnas.train.loop import JsonlLog

    variants = {"darts": ["search.method=darts"],
                "darts_noise (output)": ["search.method=darts_noise", "search.noise.target=output"],
                "darts_noise (alpha)": ["search.method=darts_noise", "search.noise.target=alpha"]}
    print(f"# quickstart search, {epochs} epochs, seeds {seeds}; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {threads} thread(s), device {device}")
    tiny = ["search.cell.init_channels=4", "search.cell.layers=3"] if smoke else []
    print("| method | seed | skips normal | skips reduce | mean softmax(α) of skip, normal cell | val balanced acc | s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, changes in variants.items():
            for seed in seeds:
                config = load_config(_quickstart(),
                                     [*changes, *tiny, f"seed={seed}", f"search.epochs={epochs}", "progress=false",
                                      f"device={device}"])
                # A darts run's arch_betas are DARTS' (0.5, 0.999); darts_noise's the authors' (0.9, 0.999).
                run = RunFolder.create(Path(tmp) / f"{name}-{seed}".replace(" ", "_"), config)
                began = time.perf_counter()
                pipeline.search_only(config, run)
                seconds = time.perf_counter() - began
                genotype = Genotype.from_json(run.search / "genotype.json")
                counts = skip_counts(genotype)
                last = JsonlLog(run.search / "alpha.jsonl").rows()[-1]
                column = last["primitives"].index("skip_connect")
                skip_weight = statistics.mean(row[column] for row in last["normal"])
                metrics = JsonlLog(run.search / "metrics.jsonl").rows()[-1]
                print(f"| {name} | {seed} | {counts['normal']} | {counts['reduce']} | {skip_weight:.3f} | "
                      f"{100 * metrics['val_balanced_acc']:.1f}% | {seconds:.0f} |", flush=True)


def _quickstart() -> Path:
    from ltnas.config import shipped_configs

    return shipped_configs()["quickstart"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("random", "skips"))
    parser.add_argument("--seeds", default=None, help="comma-separated (random: 0..49, skips: 0,1,2)")
    parser.add_argument("--epochs", type=int, default=10, help="skips: search epochs (the quickstart's 10)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu", help="skips: the searches' device")
    parser.add_argument("--smoke", action="store_true", help="tiny: 3 seeds (random), 1 epoch of seed 0 (skips)")
    args = parser.parse_args()
    if args.what == "random":
        seeds = "0,1,2" if args.smoke else args.seeds
        random_cells([int(s) for s in seeds.split(",")] if seeds else list(range(50)), args.threads)
    else:
        seeds = "0" if args.smoke else (args.seeds or "0,1,2")
        skips([int(s) for s in seeds.split(",")], 1 if args.smoke else args.epochs, args.threads, args.device,
              args.smoke)


if __name__ == "__main__":
    main()
