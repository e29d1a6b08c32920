"""Which retraining recipe converges on the quickstart data? Each recipe × seed is a real retrain run.

    python benchmarks/recipe.py --threads 1 --seeds 0,1,2 --recipe "old" --recipe "long:train.epochs=60"
    python benchmarks/recipe.py --collect runs/recipes      # the table of finished runs kept with --out

A recipe is NAME:KEY=VALUE,KEY=VALUE,... (overrides of the quickstart config, applied after
--set). Each run retrains `train.genotype` (default DARTS_V2, a stand-in for a searched cell) or a
baseline network through `ltnas train`'s own code path (pipeline.train_only) in a temporary folder,
and reports, per recipe, mean ± std over seeds of: the final epoch's training accuracy (on the
augmented batches it trained on), the highest validation loss of any epoch after the first (loss spikes;
the validation part held out of the training set, `train.val_fraction`; runs made before it: the test loss),
the epoch(s) where it occurred, the balanced test accuracy, the few-shot accuracy, the training
(wall) seconds and the CPU seconds of the run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ltnas import pipeline
from ltnas.cli import resolve_config_path
from ltnas.config import load_config
from ltnas.runs import RunFolder
from ltnas.train.loop import JsonlLog


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """NAME:k=v,k=v → (NAME, [k=v, ...]); commas inside {...} or [...] (YAML values) do not split."""
    name, _, rest = text.partition(":")
    items, depth, current = [], 0, ""
    for char in rest:
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return name, [item for item in [*items, current] if item.strip()]


def run_one(config_path: Path, overrides: list[str], seed: int, folder: Path, threads: int = 1,
            device: str = "cpu") -> dict:
    torch.set_num_threads(threads)
    config = load_config(config_path, [*overrides, f"seed={seed}", "progress=false", f"device={device}"])
    run = RunFolder.create(folder, config)
    began = time.process_time()
    pipeline.train_only(config, run)
    return summarise(folder, cpu=time.process_time() - began)


def summarise(folder: Path, cpu: float = float("nan")) -> dict:
    """One finished retrain run folder's row: its metrics log and eval.json."""
    rows = JsonlLog(folder / "train" / "metrics.jsonl").rows()
    results = json.loads((folder / "eval.json").read_text())
    later = rows[1:] or rows
    monitored = "val_loss" if "val_loss" in rows[-1] else "test_loss"  # retraining monitors validation now
    worst = max(later, key=lambda r: r[monitored])
    return {"train_acc": rows[-1]["train_acc"], "max_test_loss": worst[monitored], "worst_epoch": worst["epoch"],
            "final_test_loss": rows[-1][monitored], "balanced": results["balanced_test"]["overall"],
            "few": results["balanced_test"]["few"], "seconds": results["seconds"]["train"], "cpu": cpu}


def collected(folder: Path) -> list[tuple[str, list[dict]]]:
    """(recipe, rows by seed) of the finished runs NAME-SEED in `folder` (a run stopped early is skipped)."""
    recipes: dict[str, list[tuple[int, dict]]] = {}
    for run in sorted(folder.iterdir()):
        name, _, seed = run.name.rpartition("-")
        if (run / "eval.json").exists():
            recipes.setdefault(name, []).append((int(seed), summarise(run)))
    return [(name, [row for _, row in sorted(rows, key=lambda item: item[0])]) for name, rows in recipes.items()]


def fmt(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    a = np.asarray(values) * scale
    return f"{a.mean():.{digits}f} ± {a.std(ddof=1) if len(a) > 1 else 0:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="quickstart")
    parser.add_argument("--recipe", action="append", default=[], help="NAME:key=value,key=value")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each in its own process")
    parser.add_argument("--network", default="DARTS_V2", help="a published genotype or a baseline network")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--smoke", action="store_true", help="2 epochs, tiny network: for the test suite")
    parser.add_argument("--out", help="folder to keep the run folders in (default: a temporary one)")
    parser.add_argument("--collect", metavar="DIR", help="print the table of the finished runs NAME-SEED in DIR "
                        "(an --out folder, also of a benchmark stopped early) instead of running anything")
    args = parser.parse_args()
    header = (f"{'recipe':28s} {'train acc %':>13s} {'max val loss':>15s} {'at epoch':>8s} {'balanced %':>13s} "
              f"{'few %':>13s} {'train s':>9s} {'cpu s':>7s}  balanced % per seed")
    if args.collect:
        print(f"finished runs in {args.collect} (cpu s not recorded)\n{header}")
        print_table(collected(Path(args.collect)))
        return
    torch.set_num_threads(args.threads)
    config_path = resolve_config_path(args.config)
    from ltnas.config import BASELINE_NETWORKS

    network = f"train.network={args.network}" if args.network in BASELINE_NETWORKS else f"train.genotype={args.network}"
    base = [network, *args.overrides]
    if args.smoke:
        base += ["train.epochs=2", "train.cell.init_channels=4", "train.cell.layers=3"]
    recipes = [parse_recipe(r) for r in args.recipe] or [("config", [])]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"machine: {platform.machine()}, {args.jobs} run(s) at a time, {args.threads} torch thread(s) each, "
          f"torch {torch.__version__}; config {args.config}, base overrides {base}")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        jobs = [(config_path, [*base, *overrides], seed, out / f"{name}-{seed}", args.threads,
                 args.device) for name, overrides in recipes for seed in seeds]
        if args.jobs > 1:
            with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
                results = pool.starmap(run_one, jobs, chunksize=1)
        else:
            results = [run_one(*job) for job in jobs]
        print_table([(name, results[index * len(seeds):(index + 1) * len(seeds)])
                     for index, (name, _) in enumerate(recipes)])


def print_table(recipes: list[tuple[str, list[dict]]]) -> None:
    for name, rows in recipes:
        col = {k: [r[k] for r in rows] for k in rows[0]}
        print(f"{name:28s} {fmt(col['train_acc']):>13s} {fmt(col['max_test_loss'], 1, 2):>15s} "
              f"{','.join(str(e) for e in col['worst_epoch']):>8s} "
              f"{fmt(col['balanced']):>13s} {fmt(col['few']):>13s} {np.mean(col['seconds']):9.1f} "
              f"{np.mean(col['cpu']):7.1f}  {' '.join(f'{100 * b:.1f}' for b in col['balanced'])}", flush=True)


if __name__ == "__main__":
    main()
