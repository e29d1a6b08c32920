"""Wall time of `ltnas quickstart` under the thread policy against one process with torch's threads,
on idle cores and beside one competing CPU-bound process (issue 12, item 1).

    python benchmarks/quickstart_policy.py                                   # the whole quickstart, 4 runs
    python benchmarks/quickstart_policy.py --set search.epochs=4 --set train.epochs=8   # shorter
    python benchmarks/quickstart_policy.py --smoke                           # tiny: checks it runs

Each run is a fresh `python -m ltnas quickstart --no-progress` process, as a user starts it, into a
temporary folder. Two policies:

* one process: `--jobs 1 --threads T`, T = torch's default threads here (what the quickstart did
  before the policy: members one after another, every core's thread in each kernel);
* policy: no option at all (ltnas.threads decides; LTNAS_JOBS and OMP_NUM_THREADS are unset).

Three conditions (`--conditions`): `idle` (as the machine is), `competing` (beside one competing process, a
Python busy loop started just before the run, in a session of its own as a program started from another
terminal is, and killed after it) and `competing-same-session` (the busy loop in the benchmark's own session, as
`busyjob & ltnas quickstart` in one shell). Kernels that group processes by session for scheduling (Linux
autogroup, `/proc/sys/kernel/sched_autogroup_enabled`) give each session an equal share: the busy loop's own
session gets half the machine whatever ltnas does, while in one session every process gets an equal share.
`--policies` picks policies (default both). The load average before each run is printed, so a figure taken on
a shared machine says so. `--methods` runs `ltnas compare quickstart --methods ...`
instead (the smoke test uses it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ltnas.threads import available_cores, busy_cores

BUSY_LOOP = "while True: pass"


def quickstart_command(out: Path, overrides: list[str], methods: str | None, seeds: str | None) -> list[str]:
    command = [sys.executable, "-m", "ltnas"]
    command += ["compare", "quickstart", "--methods", methods] if methods else ["quickstart"]
    if seeds:
        command += ["--seeds", seeds]
    command += ["--out", str(out), "--no-progress"]
    for item in overrides:
        command += ["--set", item]
    return command


CONDITIONS = ("idle", "competing", "competing-same-session")


def timed_run(command: list[str], condition: str) -> tuple[float, float, str]:
    """(seconds, load average before, stderr) of one run, with a competing busy loop if the condition asks."""
    env = {key: value for key, value in os.environ.items() if key not in ("LTNAS_JOBS", "OMP_NUM_THREADS")}
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    load = busy_cores()
    rival = None
    if condition != "idle":
        rival = subprocess.Popen([sys.executable, "-c", BUSY_LOOP], start_new_session=condition == "competing")
    try:
        began = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - began
    finally:
        if rival is not None:
            rival.kill()
            rival.wait()
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return seconds, load, result.stderr


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="quickstart override, e.g. search.epochs=4 (repeatable)")
    parser.add_argument("--methods", help="compare these methods on the quickstart config instead")
    parser.add_argument("--seeds", help="with --methods: seeds, e.g. 0,1")
    parser.add_argument("--conditions", default="idle,competing",
                        help=f"comma-separated, of {', '.join(CONDITIONS)}")
    parser.add_argument("--policies", default="one-process,policy", help="one-process, policy or both")
    parser.add_argument("--device", default="cpu", help="only cpu: the policy is about CPU threads")
    parser.add_argument("--threads", type=int, default=None, help="the one-process baseline's threads "
                        "(default: torch's default here)")
    parser.add_argument("--smoke", action="store_true", help="tiny: one CNN member, one epoch, no competing process")
    args = parser.parse_args()
    if args.device != "cpu":
        raise SystemExit("the thread policy is about CPUs; run with --device cpu")
    overrides = ["device=cpu", *args.overrides]
    methods, seeds, conditions = args.methods, args.seeds, args.conditions.split(",")
    if args.smoke:
        methods, seeds, conditions = methods or "cnn", seeds or "0", ["idle"]
        overrides += ["train.epochs=1", "train.cell.init_channels=4", "train.cell.layers=3"]
    if unknown := set(conditions) - set(CONDITIONS):
        raise SystemExit(f"unknown condition {sorted(unknown)[0]}; choose from {', '.join(CONDITIONS)}")
    threads = args.threads or torch.get_num_threads()
    known = {"one-process": (f"one process, {threads} thread{'s' if threads > 1 else ''}",
                             ["--jobs", "1", "--threads", str(threads)]),
             "policy": ("policy", [])}
    chosen = args.policies.split(",")
    if unknown := set(chosen) - set(known):
        raise SystemExit(f"unknown policy {sorted(unknown)[0]}; choose from {', '.join(known)}")
    policies = dict(known[key] for key in known if key in chosen)  # name shown → the quickstart's options

    print(f"machine: {platform.processor() or platform.machine()}, {available_cores()} usable cores, "
          f"torch {torch.__version__} (default {torch.get_num_threads()} threads); "
          f"{'compare --methods ' + methods if methods else 'quickstart'}, overrides {overrides}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for condition in conditions:
            for name, flags in policies.items():
                out = Path(tmp) / f"{condition}-{len(rows)}"
                seconds, load, stderr = timed_run([*quickstart_command(out, overrides, methods, seeds), *flags],
                                                  condition)
                plan = next((line for line in stderr.splitlines() if "at a time" in line), "?")
                result = json.loads((out / "comparison.json").read_text())
                balanced = {variant: stats["balanced"]["mean"] for variant, stats in result["variants"].items()}
                rows[condition, name] = seconds
                print(f"{condition:22s} {name:24s} {minutes(seconds):>13s}  load before {load:4.2f}  [{plan}]  "
                      f"balanced test: " + ", ".join(f"{v} {100 * b:.1f}" for v, b in balanced.items()), flush=True)
    print(f"{'':24s} " + "  ".join(f"{c:>22s}" for c in conditions))
    for name in policies:
        print(f"{name:24s} " + "  ".join(f"{minutes(rows[c, name]):>22s}" for c in conditions))
    if "idle" in conditions:
        for name in policies:
            for condition in (c for c in conditions if c != "idle"):
                print(f"{name}: {condition} / idle = {rows[condition, name] / rows['idle', name]:.2f}")


if __name__ == "__main__":
    main()
