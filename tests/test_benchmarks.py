"""Benchmark scripts keep running (smoke mode: tiny sizes, correctness only, no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(*args: str) -> str:
    result = subprocess.run([sys.executable, *args, "--smoke", "--device", "cpu", "--threads", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_search_step_benchmark_checks_ltnas_against_the_baseline_and_times_both():
    out = run_script(str(BENCHMARKS / "search_step.py"), "--method", "fairdarts")
    assert "OK (tolerance 1e-04)" in out and "FAIL" not in out
    assert "ltnas / baseline:" in out and "images/s" in out


@pytest.mark.parametrize("script,expect", [("retrain_step.py", "tuned / original"), ("end_to_end.py", "total")])
def test_retrain_and_end_to_end_benchmarks_run(script, expect):
    extra = ["--amp", "--channels-last"] if script == "retrain_step.py" else ["--set", "search.amp=true"]
    assert expect in run_script(str(BENCHMARKS / script), *extra)


def test_quality_benchmark_puts_baselines_and_logistic_regression_beside_search():
    out = run_script(str(BENCHMARKS / "quality.py"))
    assert "DARTS" in out and "CNN" in out and "baseline" in out and "LogReg (balanced)" in out
    assert "balanced test %" in out and "few-shot %" in out and "best search method: DARTS" in out


def test_recipe_benchmark_reports_convergence():
    out = run_script(str(BENCHMARKS / "recipe.py"), "--seeds", "0", "--network", "cnn",
                     "--recipe", "warm:train.warmup_epochs=1")
    assert "warm" in out and "train acc %" in out and "max test loss" in out
