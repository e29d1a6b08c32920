"""CPU seconds of the test suite, per file and per test: where the suite's time goes.

    python benchmarks/test_time.py                         # the whole suite, 1 thread, niced
    python benchmarks/test_time.py tests/test_cli.py       # some files (any pytest arguments)
    python benchmarks/test_time.py --from times.jsonl      # summarise a recorded run
    python benchmarks/test_time.py --from after.jsonl --before before.jsonl   # per file, side by side

It runs `pytest` in a fresh process with the `benchmarks/cputime.py` plugin (OMP_NUM_THREADS=1, as the
suite's conftest pins anyway), which records each test's CPU time: this process's and its waited-for
children's, user + system. On a machine shared with other jobs, CPU time is the figure that holds;
wall time is printed beside it, labelled, to show how shared the machine was. Prints the total,
each file's total (largest first) and the `--top` most expensive tests. A session- or module-scoped
fixture is charged to the first test that uses it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_times(path: Path) -> tuple[dict[str, dict], dict | None]:
    """(test id -> {"cpu", "wall"}, session totals or None) from a file the plugin wrote (the whole run's
    totals: an xdist worker's own session line is skipped)."""
    tests, session = {}, None
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "session" in row:
            session = row["session"] if "worker" not in row else session
        else:
            tests[row["test"]] = {"cpu": row["cpu"], "wall": row["wall"]}
    return tests, session


def per_file(tests: dict[str, dict]) -> dict[str, dict]:
    """Sum of CPU and wall seconds and the test count per test file."""
    files: dict[str, dict] = defaultdict(lambda: {"cpu": 0.0, "wall": 0.0, "tests": 0})
    for test, times in tests.items():
        entry = files[test.split("::")[0]]
        entry["cpu"] += times["cpu"]
        entry["wall"] += times["wall"]
        entry["tests"] += 1
    return dict(files)


def side_by_side(before: dict[str, dict], after: dict[str, dict]) -> str:
    """Per file present in both records: tests and CPU seconds before and after, and their totals."""
    old, new = per_file(before), per_file(after)
    lines = [f"{'file':<40} {'tests':>11} {'CPU s before':>13} {'CPU s after':>12}"]
    totals = [0, 0, 0.0, 0.0]
    for name in sorted(set(old) & set(new), key=lambda name: -old[name]["cpu"]):
        a, b = old[name], new[name]
        lines.append(f"{name:<40} {a['tests']:>5} → {b['tests']:<3} {a['cpu']:>13.1f} {b['cpu']:>12.1f}")
        totals = [totals[0] + a["tests"], totals[1] + b["tests"], totals[2] + a["cpu"], totals[3] + b["cpu"]]
    lines.append(f"{'together':<40} {totals[0]:>5} → {totals[1]:<3} {totals[2]:>13.1f} {totals[3]:>12.1f}")
    return "\n".join(lines)


def run_pytest(arguments: list[str], out: Path) -> int:
    """Run pytest with the recording plugin in a fresh process; its exit code."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", "-p", "benchmarks.cputime", f"--cpu-times={out}",
               "-p", "no:cacheprovider", "-q", *(arguments or ["tests"])]
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def report(tests: dict[str, dict], session: dict | None, top: int) -> str:
    lines = []
    cpu = sum(t["cpu"] for t in tests.values())
    lines.append(f"{len(tests)} tests: {cpu:.1f} CPU s in tests ({cpu / 60:.1f} min)"
                 + (f"; session {session['cpu']:.1f} CPU s, {session['wall']:.1f} wall s" if session else ""))
    lines.append("")
    lines.append(f"{'file':<40} {'tests':>5} {'CPU s':>8} {'wall s':>8}")
    for name, entry in sorted(per_file(tests).items(), key=lambda item: -item[1]["cpu"]):
        lines.append(f"{name:<40} {entry['tests']:>5} {entry['cpu']:>8.1f} {entry['wall']:>8.1f}")
    if top:
        lines += ["", f"the {top} most expensive tests (CPU s, wall s):"]
        for name, times in sorted(tests.items(), key=lambda item: -item[1]["cpu"])[:top]:
            lines.append(f"{times['cpu']:>8.1f} {times['wall']:>8.1f}  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, help="summarise this recorded file instead of running")
    parser.add_argument("--before", type=Path, help="also print each file's CPU time in this earlier record beside")
    parser.add_argument("--out", type=Path, help="where to keep the per-test record (JSON lines)")
    parser.add_argument("--top", type=int, default=25, help="list this many most expensive tests")
    args, pytest_arguments = parser.parse_known_args(argv)
    code = 0
    if args.source:
        path = args.source
    else:
        path = args.out or Path(tempfile.mkdtemp()) / "times.jsonl"
        code = run_pytest(pytest_arguments, path)
        if not path.is_file():  # pytest stopped before any test (e.g. an argument it does not know): it said why
            return code or 2
    tests, session = read_times(path)
    print(report(tests, session, args.top))
    if args.before:
        print("\n" + side_by_side(read_times(args.before)[0], tests))
    return code


if __name__ == "__main__":
    sys.exit(main())
