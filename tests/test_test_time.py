"""benchmarks/cputime.py and benchmarks/test_time.py: each test's CPU time, its children's included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_test_time_passes_on_pytest_s_own_error_without_a_traceback(tmp_path):
    """An argument pytest does not know stops it before any test, so nothing is recorded: the script ends with
    pytest's usage error and its exit code, not a traceback about the missing record."""
    result = subprocess.run([sys.executable, str(BENCHMARKS / "test_time.py"), "--no-such-option"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 4  # pytest's usage error
    assert "unrecognized arguments: --no-such-option" in result.stderr and "Traceback" not in result.stderr


GROUPS_PLUGIN = """
import inspect, json
from pathlib import Path
import pytest

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    here = Path(config.rootpath, "tests").resolve()
    rows = []
    for item in items:
        shared = []
        for name in item.fixturenames:
            definition = item._fixtureinfo.name2fixturedefs.get(name, [None])[-1]
            if definition and definition.scope in ("module", "session") and \\
                    Path(inspect.getfile(definition.func)).resolve().is_relative_to(here):
                shared.append("session:" + name if definition.scope == "session" else item.nodeid.split("::")[0])
        marker = item.get_closest_marker("xdist_group")
        rows.append({"test": item.nodeid, "group": marker.args[0] if marker else None, "shared": shared})
    Path(config.rootpath, "groups.json").write_text(json.dumps(rows))
"""


def test_tests_sharing_an_expensive_fixture_are_grouped_for_xdist(tmp_path):
    """conftest's hook, under pytest-xdist (the test extra installs it): every test using a module- or
    session-scoped fixture of this suite is in an `xdist_group`, one group per session fixture (test_cli and
    test_faults share `finished_tiny_run`) and per module whose tests share a module fixture; tests using
    none are in no group, so `--dist loadgroup` spreads them one by one."""
    pytest.importorskip("xdist")
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "tests").symlink_to(root / "tests")
    (tmp_path / "groups_plugin.py").write_text(GROUPS_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "groups_plugin",
                             "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "tests/test_resume.py",
                             "tests/test_cli.py", "tests/test_faults.py"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads((tmp_path / "groups.json").read_text())
    groups: dict[str, set] = {}
    for row in rows:
        assert (row["group"] is not None) == bool(row["shared"]), row
        for key in row["shared"]:
            groups.setdefault(key, set()).add(row["group"])
    assert all(len(names) == 1 for names in groups.values()), groups
    assert {"session:finished_tiny_run", "tests/test_resume.py"} <= set(groups)
    assert groups["tests/test_resume.py"] != groups["session:finished_tiny_run"]
    assert sum(row["group"] is None for row in rows) >= 10  # the tests that share nothing stay free


def test_ci_runs_the_readme_test_command():
    """.ci/run and the README's "Tests" section state one command (pip's -q aside): CI checks what users run."""
    root = Path(__file__).resolve().parents[1]
    section = (root / "README.md").read_text(encoding="utf-8").split("## Tests\n", 1)[1]
    readme = section.split("```bash\n", 1)[1].split("```", 1)[0].strip()
    ci = (root / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci.replace("pip install -q ", "pip install ") == readme
    assert readme.endswith("pytest -q -n 2 --dist loadgroup")


def test_test_time_records_xdist_workers_into_one_file(tmp_path):
    """Under `-n 2` both workers append their tests to the one record and each its own session line; the
    controller's last line counts the workers' CPU (the child that burns 0.3 s is in it)."""
    pytest.importorskip("xdist")
    sample = tmp_path / "test_sample.py"
    sample.write_text(SAMPLE)
    record = tmp_path / "times.jsonl"
    result = subprocess.run([sys.executable, str(BENCHMARKS / "test_time.py"), "--out", str(record), "-n", "2",
                             str(sample)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    tests = [row["test"].split("::")[1] for row in rows if "test" in row]
    assert sorted(tests) == ["test_child_burns_cpu", "test_idle"]
    assert all(row["node"] in ("gw0", "gw1") and row["end"] >= 0 for row in rows if "test" in row)  # who ran it, when
    workers = [row for row in rows if "worker" in row]
    assert sorted(row["worker"] for row in workers) == ["gw0", "gw1"]
    assert "session" in rows[-1] and "worker" not in rows[-1]
    assert rows[-1]["session"]["cpu"] >= sum(row["session"]["cpu"] for row in workers) >= 0.3
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import test_time
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert test_time.read_times(record)[1] == rows[-1]["session"]


GROUPED_SAMPLE = '''
import os
import pytest

@pytest.fixture(scope="module")
def shared():
    with open(os.environ["BUILT"], "a") as file:  # one line per build of the module fixture
        file.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    return os.environ["PYTEST_XDIST_WORKER"]

@pytest.mark.parametrize("i", range(6))
def test_shares(shared, i):
    assert shared == os.environ["PYTEST_XDIST_WORKER"]

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    pass
'''


def test_loadgroup_keeps_a_group_on_one_worker_and_builds_its_fixture_once(tmp_path):
    """A real `-n 2 --dist loadgroup` run of a sample suite with the suite's grouping hooks (tests/xdist_groups.py):
    the six tests sharing a module fixture run on one worker, which builds it once, while the free tests are
    spread. (With pytest 9.2 and pytest-xdist 3.8 this needs the hook that puts the '@group' suffix into the
    structured node id: without it both workers built the fixture.) The CPU-time record names tests without
    the suffix."""
    pytest.importorskip("xdist")
    (tmp_path / "test_grouped.py").write_text(GROUPED_SAMPLE)
    (tmp_path / "conftest.py").write_text("from xdist_groups import pytest_collection_finish, "
                                          "pytest_collection_modifyitems  # noqa: F401\n")
    record, built = tmp_path / "times.jsonl", tmp_path / "built.txt"
    tests = str(Path(__file__).resolve().parent)
    env = {**os.environ, "BUILT": str(built), "PYTHONPATH": os.pathsep.join([tests, *sys.path])}
    result = subprocess.run([sys.executable, str(BENCHMARKS / "test_time.py"), "--out", str(record), "-n", "2",
                             "--dist", "loadgroup", "--rootdir", str(tmp_path), str(tmp_path / "test_grouped.py")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(built.read_text().split()) == 1, built.read_text()
    rows = [json.loads(line) for line in record.read_text().splitlines() if '"test"' in line]
    assert len(rows) == 12 and not any("@" in row["test"] for row in rows)
    assert len({row["node"] for row in rows if "test_shares" in row["test"]}) == 1
    assert {row["node"] for row in rows} == {"gw0", "gw1"}  # the rest was still spread
