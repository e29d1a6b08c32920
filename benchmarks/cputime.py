"""A pytest plugin that records each test's CPU time (setup + call + teardown), for a shared machine.

    python -m pytest -p benchmarks.cputime --cpu-times=times.jsonl tests/

Wall time on a machine that other jobs share measures the other jobs as much as the test; CPU time
measures the test. Per test it records

    cpu = Δ time.process_time()  +  Δ (ru_utime + ru_stime of RUSAGE_CHILDREN)

over its setup, call and teardown (a session- or module-scoped fixture is charged to the first test
that needs it), and its wall time beside it. Child CPU counts only children that have been waited
for, which is every process a test starts and finishes (`subprocess.run`, joined workers).

FILE gets one JSON line per test as it finishes ({"test", "cpu", "wall", "end"}: "end" is wall seconds
since this process started recording, and under xdist "node" names the worker), so a long run can be read
while it goes (and the last minutes of a parallel run show which worker ran alone), and a last line
{"session": {"cpu", "wall"}} with the totals from start-up to the end (collection and imports included). `benchmarks/test_time.py` runs the suite with this plugin and
sums the figures per file.

Under pytest-xdist (`-n 2`) each worker records its own tests into the same FILE (one short write per
line, appended) and ends with its own {"session": ..., "worker": "gw0"} line; the controller empties FILE
before the workers start and writes the last line, whose "cpu" is its own process's plus its workers'
session CPU (read back from FILE; not its RUSAGE_CHILDREN, which holds the workers or not depending on
when xdist reaps them) and whose "wall" is the parallel run's.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest


def cpu_seconds() -> float:
    """This process's CPU seconds plus those of its waited-for children (user + system)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def plain_id(nodeid: str) -> str:
    """The node id without the '@group' that `--dist loadgroup` appends to a grouped test's (xdist's rule: an
    '@' after the last ']'), so that records of grouped and ungrouped runs name a test alike."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") else nodeid


def pytest_addoption(parser) -> None:
    parser.addoption("--cpu-times", metavar="FILE", default=None,
                     help="append each test's CPU and wall seconds to FILE (JSON lines)")


class _Recorder:
    def __init__(self, path: Path, worker: str | None = None) -> None:
        self.path, self.worker = path, worker
        if worker is None:  # the controller (or a serial run) starts the file; xdist workers append to it
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")
        self.start = (cpu_seconds(), time.perf_counter(), time.process_time())

    def _write(self, row: dict) -> None:
        with self.path.open("a") as file:
            file.write(json.dumps(row) + "\n")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        cpu, wall = cpu_seconds(), time.perf_counter()
        yield
        now = time.perf_counter()
        self._write({"test": plain_id(item.nodeid), "cpu": round(cpu_seconds() - cpu, 3), "wall": round(now - wall, 3),
                     "end": round(now - self.start[1], 1), **({"node": self.worker} if self.worker else {})})

    def pytest_sessionfinish(self, session) -> None:
        cpu = cpu_seconds() - self.start[0]
        rows = [json.loads(line) for line in self.path.read_text().splitlines()]
        workers = [row["session"]["cpu"] for row in rows if "worker" in row]
        if self.worker:
            row = {"worker": self.worker}
        else:
            row = {}
            if workers:  # xdist's controller: its own CPU and its workers' (whether or not reaped yet)
                cpu = time.process_time() - self.start[2] + sum(workers)
        self._write({"session": {"cpu": round(cpu, 2), "wall": round(time.perf_counter() - self.start[1], 2)},
                     **row})


def pytest_configure(config) -> None:
    path = config.getoption("--cpu-times")
    if path:
        worker = getattr(config, "workerinput", {}).get("workerid")  # set in a pytest-xdist worker
        config.pluginmanager.register(_Recorder(Path(path), worker), "cputime-recorder")
