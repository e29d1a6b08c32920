"""A pytest plugin that records each test's CPU time (setup + call + teardown), for a shared machine.

    python -m pytest -p benchmarks.cputime --cpu-times=times.jsonl tests/

Wall time on a machine that other jobs share measures the other jobs as much as the test; CPU time
measures the test. Per test it records

    cpu = Δ time.process_time()  +  Δ (ru_utime + ru_stime of RUSAGE_CHILDREN)

over its setup, call and teardown (a session- or module-scoped fixture is charged to the first test
that needs it), and its wall time beside it. Child CPU counts only children that have been waited
for, which is every process a test starts and finishes (`subprocess.run`, joined workers).

FILE gets one JSON line per test as it finishes ({"test", "cpu", "wall"}), so a long run can be read
while it goes, and a last line {"session": {"cpu", "wall"}} with the totals from start-up to the end
(collection and imports included). `benchmarks/test_time.py` runs the suite with this plugin and
sums the figures per file.
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


def pytest_addoption(parser) -> None:
    parser.addoption("--cpu-times", metavar="FILE", default=None,
                     help="append each test's CPU and wall seconds to FILE (JSON lines)")


class _Recorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self.start = (cpu_seconds(), time.perf_counter())

    def _write(self, row: dict) -> None:
        with self.path.open("a") as file:
            file.write(json.dumps(row) + "\n")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        cpu, wall = cpu_seconds(), time.perf_counter()
        yield
        self._write({"test": item.nodeid, "cpu": round(cpu_seconds() - cpu, 3),
                     "wall": round(time.perf_counter() - wall, 3)})

    def pytest_sessionfinish(self, session) -> None:
        self._write({"session": {"cpu": round(cpu_seconds() - self.start[0], 2),
                                 "wall": round(time.perf_counter() - self.start[1], 2)}})


def pytest_configure(config) -> None:
    path = config.getoption("--cpu-times")
    if path:
        config.pluginmanager.register(_Recorder(Path(path)), "cputime-recorder")
