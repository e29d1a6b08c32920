"""Peak memory of a run, recorded in eval.json beside its wall time (HLS (Tang, 2024) reports 35 GB per run).

    cpu_rss_bytes        the process's peak resident set size. On Linux the peak is reset when the run's context
                         is prepared (writing 5 to /proc/self/clear_refs) and read from VmHWM in /proc/self/status,
                         so it covers this run only ("scope": "run"); elsewhere, or where the reset is refused, it is
                         `resource.getrusage(RUSAGE_SELF).ru_maxrss` ("scope": "process": since the process began, so
                         the members of an in-process comparison, or of one comparison worker, report the largest
                         so far)
    cuda_allocated_bytes `torch.cuda.max_memory_allocated` on the run's device since the reset (None off CUDA)

A resumed run counts from its resume, and `ltnas eval RUN` records the re-evaluation's own peak.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")
_scope = "process"  # becomes "run" once a reset succeeded


def reset_peak_memory(device: torch.device | str) -> None:
    """Start counting the peaks afresh (the CPU one where the kernel allows it)."""
    global _scope
    try:
        CLEAR_REFS.write_text("5")  # Linux >= 4.0: resets VmHWM, the peak resident set size
        _scope = "run" if _vm_hwm() is not None else "process"
    except OSError:
        _scope = "process"
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device | str) -> dict:
    """{"cpu_rss_bytes", "cuda_allocated_bytes", "scope"}: the peaks since `reset_peak_memory` (see the module)."""
    rss, scope = (_vm_hwm(), "run") if _scope == "run" else (None, "process")
    if rss is None:
        rss, scope = _max_rss(), "process"
    cuda = torch.cuda.max_memory_allocated(device) if torch.device(device).type == "cuda" else None
    return {"cpu_rss_bytes": rss, "cuda_allocated_bytes": cuda, "scope": scope}


def _max_rss() -> int | None:
    """getrusage's peak resident set size in bytes (Linux counts in KiB, macOS in bytes); None without
    the `resource` module (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


def _vm_hwm() -> int | None:
    """VmHWM of /proc/self/status in bytes, or None where there is no such file."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # "VmHWM:   123456 kB"
    except (OSError, ValueError, IndexError):
        return None
    return None
