"""The thread policy: how many worker processes and torch intra-op threads a command uses on a CPU.

ltnas's networks at laptop scale are small (a C=8 supernet on 8×8 images): a step is hundreds of
tiny kernels, so a second intra-op thread buys little, and when another CPU-bound process holds a
core, every kernel's OpenMP barrier waits for a descheduled thread (a 42 s DARTS search took 2 min
53 s beside one competing process with 2 threads). Independent runs, on the other hand, scale
with cores and single-threaded processes share a busy machine fairly. So:

* jobs (worker processes of `ltnas compare` / `ltnas quickstart`): one per usable core, at most one
  per member: jobs = min(members, cores). Sequential (1) on a GPU, where members would share it.
* threads (torch intra-op threads of each process): the cores that are not busy, shared among the
  jobs: threads = max(1, min(torch's default, cores - busy) // jobs), so 1 whenever jobs ≥ cores,
  and a single `ltnas run` on a busy 2-core machine uses 1 thread, not 2.
* cores = the CPUs this process may run on (`os.sched_getaffinity`, so taskset and container CPU
  sets count); busy = the 1-minute load average, rounded (the other processes wanting a core).

`--jobs N` / `--threads N` override either (as do the environment variables LTNAS_JOBS and
OMP_NUM_THREADS); on a GPU `threads` is left to torch unless given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ltnas.errors import LtnasError

JOBS_ENV = "LTNAS_JOBS"
THREADS_ENV = "OMP_NUM_THREADS"


@dataclass(frozen=True)
class Plan:
    """Worker processes and torch intra-op threads per process (None: leave torch's default)."""

    jobs: int
    threads: int | None

    def describe(self) -> str:
        threads = "torch's default threads" if self.threads is None else \
            f"{self.threads} torch thread{'s' if self.threads != 1 else ''}"
        return f"{self.jobs} member{'s' if self.jobs != 1 else ''} at a time, {threads} each"


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def busy_cores() -> float:
    """Cores other processes want: the 1-minute load average (0 where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def plan(members: int, cores: int, busy: float = 0.0, cpu: bool = True, default_threads: int | None = None,
         jobs: int | None = None, threads: int | None = None) -> Plan:
    """The policy of this module's docstring as a pure function: `members` runs to do on `cores`
    CPUs of which `busy` (load average) are taken; `default_threads` is torch's own default (an
    upper bound: torch counts physical cores); `jobs` / `threads` are the user's overrides."""
    check(jobs, threads)
    members = max(1, members)
    if jobs is None:
        jobs = min(members, cores) if cpu else 1
    jobs = min(jobs, members)
    if threads is None and cpu:
        free = max(1, cores - int(busy + 0.5))
        if default_threads is not None:
            free = min(free, default_threads)
        threads = max(1, free // jobs)
    return Plan(jobs, threads)


def check(jobs: int | None, threads: int | None) -> None:
    """--jobs / --threads are counts: at least 1 (None: not given)."""
    for name, value in (("--jobs", jobs), ("--threads", threads)):
        if value is not None and value < 1:
            raise LtnasError(f"{name} {value} must be at least 1; leave it out for the default (see --help)")


def _env_int(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise LtnasError(f"environment variable {name}={text!r} is not a whole number; set it to e.g. 1 or unset it") \
            from None
    if value < 1:
        raise LtnasError(f"environment variable {name}={value} must be at least 1; set it to e.g. 1 or unset it")
    return value


def choose(members: int, device: str, jobs: int | None = None, threads: int | None = None) -> Plan:
    """The plan for this machine now: `device` is a config's (auto, cpu, cuda, ...); `jobs` and
    `threads` are --jobs / --threads (None: LTNAS_JOBS / OMP_NUM_THREADS, else the policy)."""
    import torch

    from ltnas.runs import resolve_device

    jobs = jobs if jobs is not None else _env_int(JOBS_ENV)
    threads = threads if threads is not None else _env_int(THREADS_ENV)
    cpu = resolve_device(device).type == "cpu"
    return plan(members, available_cores(), busy_cores(), cpu=cpu, default_threads=_torch_default_threads(torch),
                jobs=jobs, threads=threads)


_DEFAULT_THREADS: int | None = None


def _torch_default_threads(torch) -> int:
    """torch's intra-op threads before this module first changed them."""
    global _DEFAULT_THREADS
    if _DEFAULT_THREADS is None:
        _DEFAULT_THREADS = torch.get_num_threads()
    return _DEFAULT_THREADS


def apply(threads: int | None) -> None:
    """Set this process's torch intra-op threads (None: leave them)."""
    import torch

    _torch_default_threads(torch)
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
