"""Wall time of one `ltnas` command run by this working tree and by a git revision, side by side.

    python benchmarks/stage_time.py --revision f0fd91f --repeats 2 -- search quickstart --device cpu

Runs `python -m ltnas ARGS --out FOLDER --no-progress` with each tree's `src/` on PYTHONPATH (benchmarks/revision.py:
the revision unpacked with `git archive`), in alternating fresh processes, `--repeats` rounds, each into a fresh
run folder that is deleted afterwards, and prints each process's wall time, its peak resident set and the median
ratio. Each tree runs its own configs and recipes: the figure is the command as a user of that revision felt it
(e.g. the quickstart's DARTS search before and after the speed work). Torch threads: as the environment sets them
(OMP_NUM_THREADS), so set them alike for both.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import revision  # noqa: E402


def run(src: Path, command: list[str], folder: Path) -> dict:
    """One `python -m ltnas` process of the tree `src`: wall seconds, peak resident set, the ltnas it imported."""
    env = revision.child_env(src)
    where = subprocess.run([sys.executable, "-c", "import ltnas, os; print(os.path.dirname(os.path.dirname(ltnas.__file__)))"],
                           capture_output=True, text=True, check=True, env=env).stdout.strip()
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "ltnas", *command, "--out", str(folder), "--no-progress"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ltnas {' '.join(command)} failed in {src}: {process.stderr.read()[-2000:]}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "memory": "peak resident set", "ltnas": where}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revision", required=True, help="git revision to time beside this tree (e.g. f0fd91f)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of one process per tree")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the ltnas command and its options")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the ltnas command after --, e.g. -- search quickstart --device cpu")
    print(f"machine: {platform.processor() or platform.machine()}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; ltnas {' '.join(command)}")
    with revision.trees(args.revision) as sources, tempfile.TemporaryDirectory() as scratch:
        count = iter(range(10**6))
        rounds = revision.alternate(sources, args.repeats,
                                    lambda src: run(src, command, Path(scratch) / f"run-{next(count)}"), unit="s")
    revision.summarise(rounds, None, unit="s")


if __name__ == "__main__":
    main()
