"""How good are the networks ltnas produces? Search methods × baselines × seeds on one config, one table.

    python benchmarks/quality.py                                   # the quickstart data, 6 methods, seeds 0,1,2
    python benchmarks/quality.py --methods darts,ssf,cnn --seeds 0,1 --jobs 2 --set train.epochs=30
    python benchmarks/quality.py --smoke                           # tiny: checks it runs (the test suite)

Every method × seed is an ordinary ltnas run (`ltnas compare`'s members: search methods,
baseline networks and published genotypes, see `ltnas.compare.method_variant`), run in its own
process with --threads torch threads, --jobs at a time. Beside them, scikit-learn's
LogisticRegression(class_weight="balanced") on the same pixels (a reference a practitioner would
try first). Prints, per method, mean ± sample std over the seeds of the balanced test accuracy and
the few-shot accuracy (classes with < 20 training images), the parameters, and the time: the CPU
seconds of the whole run (search + retrain + evaluation + report) measured in the run's own
process, which on a busy machine says more than wall time, and the wall seconds of search and retrain;
and whether the retrained networks converged: "train fit" is the final model's balanced accuracy on the
images it was trained on (eval mode, unaugmented), "max val loss" the highest validation loss of any
retraining epoch after the first over the seeds (a spike shows there), then each seed's balanced accuracy.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SMOKE = ["search.epochs=1", "train.epochs=1", "search.cell.init_channels=4", "search.cell.layers=3",
         "train.cell.init_channels=4", "train.cell.layers=3", "search.threshold=0.3", "search.ssl.projector=[16,16]"]


def run_member(job: tuple[str, str, int]) -> tuple[str, int, float]:
    """Run one comparison member (a run folder made by Comparison.create) in this process."""
    path, variant, seed = job
    import torch

    torch.set_num_threads(int(os.environ.get("LTNAS_BENCH_THREADS", "1")))
    from ltnas import pipeline
    from ltnas.runs import RunFolder

    run = RunFolder.open(path)
    began = time.process_time()
    pipeline.run_all(run.config(), run)
    return variant, seed, time.process_time() - began


def logistic_regression(config_path: Path, overrides: list[str], seeds: list[int]) -> dict[str, list[float]]:
    """LogisticRegression(class_weight="balanced") on standardised pixels of each seed's training set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from ltnas.config import load_config
    from ltnas.data import build_dataset
    from ltnas.metrics import classification_metrics

    rows: dict[str, list[float]] = {"balanced": [], "few": [], "cpu": []}
    for seed in seeds:
        config = load_config(config_path, [*overrides, f"seed={seed}"])
        data = build_dataset(config.data, seed=seed)
        began = time.process_time()
        x_train = data.train.images.flatten(1).float().numpy() / 255
        x_test = data.test.images.flatten(1).float().numpy() / 255
        scaler = StandardScaler().fit(x_train)
        model = LogisticRegression(class_weight="balanced", max_iter=5000, random_state=seed)
        model.fit(scaler.transform(x_train), data.train.labels.numpy())
        predicted = model.predict(scaler.transform(x_test))
        metrics = classification_metrics(predicted, data.test.labels.numpy(), data.num_classes, data.train_counts)
        rows["cpu"].append(time.process_time() - began)
        rows["balanced"].append(metrics["balanced"])
        rows["few"].append(metrics["few"])
    return rows


def convergence(run_path: Path) -> dict[str, float]:
    """Did the member's retrained network converge? Its balanced accuracy on the very images it was
    trained on (eval mode, no augmentation: the final model's fit of its own training set), and the
    highest validation loss of any retraining epoch after the first (a loss spike)."""
    from ltnas.data import build_dataset
    from ltnas.evaluate import evaluate_model
    from ltnas.model_io import load_model
    from ltnas.runs import RunFolder
    from ltnas.stages.retrain import retrain_split
    from ltnas.train.loop import JsonlLog

    run = RunFolder.open(run_path)
    config = run.config()
    data = build_dataset(config.data, seed=config.seed)
    trained_on, _ = retrain_split(config, data)
    fit = evaluate_model(load_model(run_path).model, trained_on, data, "cpu", train_counts=data.train_counts)
    rows = JsonlLog(run.train / "metrics.jsonl").rows()
    later = [row["val_loss"] for row in rows[1:] if "val_loss" in row]
    return {"train_fit": fit["balanced"], "max_val_loss": max(later) if later else float("nan")}


def mean_std(values: list[float | None], scale: float = 100.0) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "—"
    a = np.asarray(present) * scale
    return f"{a.mean():.2f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.2f}"


def seconds(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{np.mean(present):.0f}" if present else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="quickstart", help="run config: shipped name or YAML path")
    parser.add_argument("--methods", default="darts,fairdarts,ssf,cnn,resnet32,darts_v2")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each in its own process")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="comparison folder to keep (default: a temporary one)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one seed: checks that it runs")
    args = parser.parse_args()
    os.environ["LTNAS_BENCH_THREADS"] = str(args.threads)

    from ltnas.cli import resolve_config_path
    from ltnas.compare import Comparison, spec_from_methods
    from ltnas.report.comparison import aggregate, baseline_variants, write_comparison
    from ltnas.runs import stopping_on_sigterm

    overrides = [*args.overrides, "progress=false", f"device={args.device}"]
    methods, seeds = args.methods.split(","), [int(s) for s in args.seeds.split(",")]
    if args.smoke:
        overrides, methods, seeds = [*SMOKE, *overrides], ["darts", "cnn"], [0]
    config_path = resolve_config_path(args.config)
    spec = spec_from_methods(config_path, methods, seeds)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "quality"
        comparison = Comparison.create(spec, out, overrides)
        jobs = [(str(m.run.path), m.variant, m.seed) for m in comparison.members]
        began = time.perf_counter()
        if args.jobs > 1:
            # SIGTERM (`kill`, `timeout`) reaches this process only: raised here, leaving the Pool's block ends its
            # workers too, where the default handler ended this process alone and left them running their members.
            with stopping_on_sigterm(), multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
                done = pool.map(run_member, jobs, chunksize=1)
        else:
            done = [run_member(job) for job in jobs]
        wall = time.perf_counter() - began
        members = [(m.variant, m.seed, m.run.path) for m in comparison.members]
        result = write_comparison(out, comparison.spec, members)
        table = aggregate(members)
        baselines = set(baseline_variants(members))
        params = {v: json.loads((out / result["runs"][v][0] / "eval.json").read_text())["params"] for v in table}
        fits = {variant: [convergence(path) for v, _, path in members if v == variant] for variant in table}
    cpu = {variant: [c for v, _, c in done if v == variant] for variant in table}
    reference = logistic_regression(config_path, args.overrides, seeds)

    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {args.jobs} run(s) at a time, {args.threads} "
          f"torch thread(s) each, torch {torch.__version__}; config {args.config}, seeds {seeds}, overrides "
          f"{args.overrides}; {wall:.0f} s wall in all")
    header = (f"{'method':18s} {'kind':9s} {'balanced test %':>16s} {'few-shot %':>16s} {'params':>8s} "
              f"{'cpu s':>6s} {'search s':>8s} {'train s':>7s} {'train fit %':>16s} {'max val loss':>12s}  "
              "balanced % per seed")
    print(header)
    print("-" * len(header))
    for variant, stats in table.items():
        kind = "baseline" if variant in baselines else "search"
        print(f"{variant:18s} {kind:9s} {mean_std(stats['balanced']['values']):>16s} "
              f"{mean_std(stats['few']['values']):>16s} {params[variant] / 1e3:7.1f}K {seconds(cpu[variant]):>6s} "
              f"{seconds(stats['search_seconds']['values']):>8s} {seconds(stats['train_seconds']['values']):>7s} "
              f"{mean_std([f['train_fit'] for f in fits[variant]]):>16s} "
              f"{max(f['max_val_loss'] for f in fits[variant]):12.2f}  "
              f"{' '.join(f'{100 * v:.1f}' for v in stats['balanced']['values'])}")
    print(f"{'LogReg (balanced)':18s} {'reference':9s} {mean_std(reference['balanced']):>16s} "
          f"{mean_std(reference['few']):>16s} {'':>8s} {seconds(reference['cpu']):>6s}")
    searched = {v: s["balanced"]["mean"] for v, s in table.items() if v not in baselines}
    if searched:
        best = max(searched, key=searched.get)
        print(f"best search method: {best} {100 * searched[best]:.2f}% balanced test accuracy (mean of {len(seeds)})")
    if "CNN" in table and searched:
        cnn = table["CNN"]["balanced"]["mean"]
        below = [v for v, value in searched.items() if value < cnn]
        print(f"search methods below the CNN baseline ({100 * cnn:.2f}%): {', '.join(below) or 'none'}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM while members run (runs.Terminated)
        sys.exit("quality.py: stopped before the table; no worker is left running")
