"""Skip aggregation in S₂ (FairDARTS, Chu et al., 2020, Fig. 1): DARTS against FairDARTS, several seeds.

    python benchmarks/s2_skips.py                              # fairdarts_s2_smoke's data, 10 epochs, seeds 0,1,2
    python benchmarks/s2_skips.py --epochs 30 --set data.n_max=100
    python benchmarks/s2_skips.py --smoke                      # tiny: checks it runs (the test suite)

Each method × seed is an ordinary `ltnas search` of the `fairdarts_s2_smoke` config (8×8 digits, small
layout, widths × ¼, all 19 layers and 7 candidates) with `search.method` set, in this process. Read from
each run's search/alpha.jsonl: per epoch the number of layers whose dominant operation (highest relaxed
weight: softmax for DARTS, σ for FairDARTS) is skip, the paper's count (DARTS on ImageNet: 11 of 19 at the
end); from search/genotype.json the layers the derived network removes (skip only). Prints mean ± std over
the seeds per epoch and the per-seed final counts. On a shared CPU the run is small and says nothing about
ImageNet; it shows whether the mechanism (softmax's exclusive competition favouring skip) appears here.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def dominant_skips(row: dict) -> int:
    weights = np.asarray(row["layers"], dtype=float)
    return int(sum(row["primitives"][i] == "skip_connect" for i in weights.argmax(axis=1)))


def search(method: str, seed: int, epochs: int, overrides: list[str], out: Path, device: str) -> dict:
    from ltnas import pipeline
    from ltnas.cli import resolve_config_path
    from ltnas.config import load_config
    from ltnas.runs import RunFolder

    config = load_config(resolve_config_path("fairdarts_s2_smoke"),
                         [f"search.method={method}", f"search.epochs={epochs}", f"seed={seed}", f"device={device}",
                          "progress=false", *overrides])
    folder = out / f"{method}_seed{seed}"
    pipeline.search_only(config, RunFolder.create(folder, config))
    rows = [json.loads(line) for line in (folder / "search" / "alpha.jsonl").read_text().splitlines()]
    genotype = json.loads((folder / "search" / "genotype.json").read_text())
    return {"skips": [dominant_skips(row) for row in rows],
            "removed": sum(ops == ["skip_connect"] for ops in genotype["layers"]),
            "rule": f"{config.search.derive} (threshold {config.search.threshold})"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="darts,fairdarts")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], help="extra config overrides (key=value)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="1 epoch, 1 seed, 40 images per class at most")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    seeds = [0] if args.smoke else [int(s) for s in args.seeds.split(",")]
    epochs = 1 if args.smoke else args.epochs
    overrides = [*args.set, *(["data.n_max=40", "data.test_per_class=5"] if args.smoke else [])]
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            results = [search(method, seed, epochs, overrides, Path(tmp), args.device) for seed in seeds]
            skips = np.array([r["skips"] for r in results])
            print(f"{method}: layers (of 19) whose dominant operation is skip, mean ± std over seeds {seeds}")
            for epoch in range(epochs):
                column = skips[:, epoch]
                spread = f" ± {column.std(ddof=1):.1f}" if len(seeds) > 1 else ""
                print(f"  epoch {epoch + 1:3d}: {column.mean():.1f}{spread}")
            print(f"  final per seed: {skips[:, -1].tolist()}; derived networks ({results[0]['rule']}) remove "
                  f"{[r['removed'] for r in results]} layers")


if __name__ == "__main__":
    main()
