"""Benchmark scripts keep running (smoke mode: tiny sizes, correctness only, no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_search_step_benchmark_runs_in_smoke_mode():
    result = subprocess.run([sys.executable, str(BENCHMARKS / "search_step.py"), "--smoke", "--device", "cpu", "--threads", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "images/s" in result.stdout
