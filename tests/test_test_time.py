"""benchmarks/cputime.py and benchmarks/test_time.py: each test's CPU time, its children's included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SAMPLE = '''
import subprocess, sys, time

def test_child_burns_cpu():
    # the child spins until it has used 0.3 s of CPU itself: that much must be charged to this test
    subprocess.run([sys.executable, "-c",
                    "import time\\nwhile time.process_time() < 0.3: pass"], check=True)

def test_idle():
    pass
'''


def test_test_time_records_each_test_with_its_children_and_sums_per_file(tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text(SAMPLE)
    record = tmp_path / "times.jsonl"
    result = subprocess.run([sys.executable, str(BENCHMARKS / "test_time.py"), "--out", str(record), "--top", "2",
                             str(sample)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    tests = {row["test"].split("::")[1]: row for row in rows if "test" in row}
    assert set(tests) == {"test_child_burns_cpu", "test_idle"}
    assert tests["test_child_burns_cpu"]["cpu"] >= 0.3  # the waited-for child's CPU time counts
    assert all(row["wall"] >= 0 and row["cpu"] >= 0 for row in tests.values())
    assert "session" in rows[-1] and rows[-1]["session"]["cpu"] >= tests["test_child_burns_cpu"]["cpu"]
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import test_time
    finally:
        sys.path.remove(str(BENCHMARKS))
    (name, entry), = test_time.per_file(test_time.read_times(record)[0]).items()
    assert name.endswith("test_sample.py") and entry["tests"] == 2
    assert entry["cpu"] == sum(row["cpu"] for row in tests.values())
    recorded = test_time.read_times(record)[0]
    together = test_time.side_by_side(recorded, {**recorded, "other_file.py::test_x": {"cpu": 9.0, "wall": 9.0}})
    assert together.splitlines()[-1].split() == ["together", "2", "→", "2", f"{entry['cpu']:.1f}", f"{entry['cpu']:.1f}"]
    lines = result.stdout.splitlines()  # pytest's own output, then the summary
    assert any(line.startswith("2 tests: ") and "session" in line for line in lines)
    assert lines[-2].endswith("test_child_burns_cpu")  # the dearest first
