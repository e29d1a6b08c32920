"""This working tree's ltnas beside a git revision's, for the step benchmarks' `--revision REV` mode.

The revision's `src/` is unpacked with `git archive` into a temporary folder; the same timing code (the calling
script) then runs in alternating fresh processes, one per tree and round, with PYTHONPATH pointing at one tree
or the other, so that a busy machine slows both alike. Each child reports its seconds (per step, or for a whole
command) as JSON; the median ratio over the rounds is the figure.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


@contextlib.contextmanager
def trees(revision: str) -> Iterator[dict[str, Path]]:
    """{short commit of `revision`: its unpacked src, name of this tree: ROOT/src}; this tree is named by
    HEAD, '+changes' when src has uncommitted changes."""
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "src"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        commit = git("rev-parse", "--short", revision)
        head = git("rev-parse", "--short", "HEAD")
        name = f"{head}{'+changes' if git('status', '--porcelain', 'src') else ''}"
        yield {commit: Path(folder) / "src", "this tree" if name == commit else name: ROOT / "src"}


def child_env(src: Path) -> dict[str, str]:
    """The environment of a child that imports the ltnas in `src`."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}


def alternate(sources: dict[str, Path], repeats: int, run: Callable[[Path], dict],
              unit: str = "s/step") -> list[dict[str, dict]]:
    """`repeats` rounds of `run(src)` for each tree, who goes first alternating; each child must say (its
    'ltnas' key) that it imported the tree it was meant to. Prints each round's seconds (per step)."""
    rounds = []
    for index in range(repeats):
        order = list(sources) if index % 2 == 0 else list(sources)[::-1]
        results = {name: run(sources[name]) for name in order}
        for name in order:
            assert Path(results[name]["ltnas"]) == sources[name].resolve(), (name, results[name]["ltnas"])
        rounds.append(results)
        print(f"  round {index + 1}: " + ", ".join(
            f"{name} {results[name]['seconds']:.3f} {unit} ({results[name]['peak_mb']:.0f} MB)" for name in sources))
    return rounds


def summarise(rounds: list[dict[str, dict]], images_per_step: int | None, unit: str = "s/step") -> None:
    """Median seconds (and images/s when a step's images are given) and peak memory per tree, and the median
    per-round speed ratio new / old."""
    old, new = rounds[0]
    for name in (old, new):
        seconds = statistics.median(r[name]["seconds"] for r in rounds)
        speed = f"  {images_per_step / seconds:8.1f} images/s" if images_per_step else ""
        print(f"  {name:14s} median {seconds:8.3f} {unit}{speed}  "
              f"peak memory {max(r[name]['peak_mb'] for r in rounds):6.0f} MB ({rounds[0][name]['memory']})")
    ratios = [r[old]["seconds"] / r[new]["seconds"] for r in rounds]
    print(f"  {new} / {old}: {statistics.median(ratios):.2f}x {'images/s' if images_per_step else 'speed'} "
          f"(median of {len(ratios)} rounds; per round {', '.join(f'{x:.2f}' for x in ratios)})")
