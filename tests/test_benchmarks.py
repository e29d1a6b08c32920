"""Benchmark scripts keep running (smoke mode: tiny sizes, correctness only, no timing asserted)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(script: str, *args: str) -> str:
    """`python SCRIPT ARGS --smoke --device cpu --threads 1`, run in this process as `__main__` (runpy, with its
    sys.argv and its folder first on sys.path, as Python runs a script): the script's stdout. The processes a
    script starts itself (the timed children of search_step.py, quickstart_policy.py's `ltnas` runs) are still
    real (but see `children_in_process`); only the parent's interpreter and torch import (~2 CPU s each) are
    saved. The command line as a user types it is run for real by test_recipe_benchmark_reports_convergence
    (`recipe.py --collect`) and the gpu_check.sh tests."""
    code, out = run_in_process([script, *args, "--smoke", "--device", "cpu", "--threads", "1"])
    assert code in (None, 0), out
    return out


def run_in_process(argv: list[str]) -> tuple[int | str | None, str]:
    """(exit code, stdout) of `python ARGV` run in this process as `__main__`; environment, sys.argv, sys.path
    and torch's threads restored after."""
    script = argv[0]
    saved = sys.argv, list(sys.path), dict(os.environ), torch.get_num_threads()
    flags = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    out, code = io.StringIO(), 0
    sys.argv, sys.path[:0] = list(argv), [str(Path(script).parent)]
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exit:
        code = exit.code
    finally:
        sys.argv, sys.path[:] = saved[0], saved[1]
        os.environ.clear()
        os.environ.update(saved[2])
        torch.set_num_threads(saved[3])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags
    return code, out.getvalue()


@contextlib.contextmanager
def children_in_process(script: str):
    """A script's own children, `subprocess.run([sys.executable, SCRIPT, ARGS...])` with the parent's environment
    (search_step.py's timed children), run in this process instead (`run_in_process`: the child's command line,
    parsed by the script, and its JSON line read by the parent, as in a fresh process). Each fresh child pays
    ~3 CPU s for Python, torch and torch._dynamo before it times a step. Children given another tree's
    PYTHONPATH (`--revision`) stay real processes: those tests run search_step.py's real children."""
    real = subprocess.run

    def run(command, *args, **kwargs):
        if list(command[:2]) != [sys.executable, script] or kwargs.get("env") is not None:
            return real(command, *args, **kwargs)
        code, out = run_in_process(list(command[1:]))
        if code not in (None, 0):
            raise subprocess.CalledProcessError(code, command, out)
        return subprocess.CompletedProcess(command, 0, out, "")

    subprocess.run = run
    try:
        yield
    finally:
        subprocess.run = real


def test_search_step_benchmark_checks_ltnas_against_the_baseline_and_times_both():
    script = str(BENCHMARKS / "search_step.py")
    with children_in_process(script):  # the timing children's real processes: the --revision test
        out = run_script(script, "--method", "fairdarts")
    assert "OK (tolerance 1e-04)" in out and "FAIL" not in out
    assert "ltnas / baseline:" in out and "images/s" in out


def test_search_step_times_ours_on_the_network_it_checks_without_building_the_baseline():
    """time_steps builds the baseline only to time it: ltnas's network is the same (parameters and α) without it."""
    import argparse

    sys.path.insert(0, str(BENCHMARKS))
    try:
        import search_step
    finally:
        sys.path.remove(str(BENCHMARKS))
    args = argparse.Namespace(channels=2, layers=3, nchw=False, in_channels=3)
    (alone, none), (paired, baseline) = (search_step.build(args, "fairdarts", torch.device("cpu"), with_baseline=flag)
                                         for flag in (False, True))
    assert none is None and baseline is not None
    alone, paired = alone.state_dict(), paired.state_dict()
    assert alone.keys() == paired.keys()
    assert all(torch.equal(alone[k], paired[k]) for k in alone)


def test_search_step_benchmark_times_other_strategies_against_darts():
    script = str(BENCHMARKS / "search_step.py")
    with children_in_process(script):
        out = run_script(script, "--strategies", "pcdarts,gdas")
    assert [line.split()[0] for line in out.splitlines() if "vs darts:" in line] == ["darts", "pcdarts", "gdas"]


needs_git = pytest.mark.skipif(
    subprocess.run(["git", "-C", str(BENCHMARKS), "rev-parse", "HEAD"], capture_output=True).returncode,
    reason="needs a git checkout")


@needs_git
def test_search_step_benchmark_times_this_tree_beside_a_git_revision():
    """One round (two child processes, one per tree; each round's processes cost a Python start and the torch
    import apiece), each tree's supernet holding its own shipped quickstart primitives: the rounds' alternating
    order and median are tested without processes below, the primitives read from a config below."""
    out = run_script(str(BENCHMARKS / "search_step.py"), "--revision", "HEAD", "--repeats", "1", "--primitives",
                     "shipped")
    assert sum(line.lstrip().startswith("round ") for line in out.splitlines()) == 1 and "median of 1 rounds" in out
    assert "each tree's shipped quickstart primitives" in out


def test_search_step_shipped_primitives_are_the_quickstart_config_s():
    """`--primitives shipped`: the supernet holds the imported tree's shipped quickstart operations (today six,
    without the 5×5 filters); only beside a revision (exit 2 otherwise), since the original DARTS code holds all
    eight."""
    import argparse

    from ltnas.config import PRIMITIVES, load_config, resolve_config_path

    sys.path.insert(0, str(BENCHMARKS))
    try:
        import search_step
    finally:
        sys.path.remove(str(BENCHMARKS))
    shipped = load_config(resolve_config_path("quickstart")).search.cell.primitives
    assert shipped != list(PRIMITIVES)  # else this test could not tell the two modes apart
    args = argparse.Namespace(channels=2, layers=3, nchw=False, in_channels=1, primitives="shipped")
    network, _ = search_step.build(args, "darts", torch.device("cpu"), with_baseline=False)
    assert list(network.primitives) == list(shipped)
    assert search_step.search_config("darts", 4, False, search_step.primitives(args)).cell.primitives == shipped
    assert search_step.primitives(argparse.Namespace(primitives="all")) == list(PRIMITIVES)
    code, out = run_in_process([str(BENCHMARKS / "search_step.py"), "--primitives", "shipped", "--smoke"])
    assert code == 2


def test_revision_rounds_alternate_who_goes_first_and_report_the_median_ratio(tmp_path, capsys):
    """benchmarks/revision.py with a stand-in for the timed child: the trees take turns going first, each child
    must have imported its own tree, and the figure is the median of the per-round ratios old / new."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import revision
    finally:
        sys.path.remove(str(BENCHMARKS))
    old, new = tmp_path / "old" / "src", tmp_path / "new" / "src"
    seconds = iter([2.0, 1.0, 0.5, 4.0, 3.0, 1.0, 1.0, 1.0])
    calls = []

    def run(src, imported=None):
        calls.append(src)
        return {"ltnas": str(imported or src), "seconds": next(seconds), "peak_mb": 5.0, "memory": "peak RSS"}

    rounds = revision.alternate({"abc1234": old, "this tree": new}, 3, run)
    assert calls == [old, new, new, old, old, new]
    assert [r["abc1234"]["seconds"] for r in rounds] == [2.0, 4.0, 3.0]
    revision.summarise(rounds, images_per_step=10)
    out = capsys.readouterr().out
    assert "round 2: abc1234 4.000 s/step (5 MB), this tree 0.500 s/step (5 MB)" in out
    assert "this tree      median    1.000 s/step      10.0 images/s" in out
    assert "this tree / abc1234: 3.00x images/s (median of 3 rounds; per round 2.00, 8.00, 3.00)" in out
    with pytest.raises(AssertionError):  # a child that imported the other tree's ltnas
        revision.alternate({"abc1234": old, "this tree": new}, 1, lambda src: run(src, imported=old))


def test_conv_routes_benchmark_times_both_routes_and_finds_the_same_numbers():
    out = run_script(str(BENCHMARKS / "conv_routes.py"))
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| smoke")]
    assert [row[3].strip() for row in rows] == ["1x1", "dil 3x3, stride 1", "dil 5x5, stride 1", "dil 3x3, stride 2",
                                                "dil 5x5, stride 2", "dw 3x3", "dil 3x3", "dw 5x5", "dw 3x3, stride 2"]
    assert all(float(row[7]) < 1e-12 for row in rows)  # float64: the same sums


def test_optimizer_step_benchmark_times_the_three_updates_and_finds_the_same_weights():
    out = run_script(str(BENCHMARKS / "optimizer_step.py"))
    row = next(line for line in out.splitlines() if line.startswith("tiny"))
    foreach, flat = re.search(r"after 5 steps: foreach (\S+), flat (\S+)$", row).groups()
    assert "default" in row and float(foreach) == 0 and 0 <= float(flat) < 1e-6  # bitwise; rounding


@needs_git
def test_stage_time_benchmark_times_an_ltnas_command_of_both_trees(tiny_config_file):
    """Any `ltnas` command will do: a random search (draws and derives a cell, writes its run folder and report)
    builds no optimizer, so each of the two children skips torch._dynamo's import and the DARTS epoch (~2 CPU s)."""
    result = subprocess.run([sys.executable, str(BENCHMARKS / "stage_time.py"), "--revision", "HEAD", "--repeats", "1",
                             "--", "search", str(tiny_config_file), "--device", "cpu", "--set", "search.method=random"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "round 1: " in result.stdout and "x speed (median of 1 rounds" in result.stdout


@needs_git
def test_retrain_step_benchmark_times_the_quickstart_network_beside_a_git_revision():
    out = run_script(str(BENCHMARKS / "retrain_step.py"), "--quickstart", "--channels-last", "--revision", "HEAD",
                     "--repeats", "1")
    assert "8x8x1, auxiliary head off" in out and "median of 1 rounds" in out and "evaluation: " in out


def test_quickstart_sizes_are_defaults_that_given_options_override():
    """--quickstart sets the quickstart's sizes (and the retraining's recipe); a size given beside it wins (`--batch
    1`: the step's fixed cost); without it, the DARTS sizes: retraining C=36, 20 cells, batch 96, auxiliary head,
    drop-path 0.2; search C=16, 8 cells, batch 64, 32×32×3."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import retrain_step
        import search_step
    finally:
        sys.path.remove(str(BENCHMARKS))

    def retraining(*argv: str) -> tuple:
        args = retrain_step.parse_args(list(argv))
        return args.channels, args.layers, args.batch, args.size, args.in_channels, args.auxiliary, args.drop_path

    def search(*argv: str) -> tuple:
        args = search_step.parse_args(list(argv))
        return args.channels, args.layers, args.batch, args.size, args.in_channels

    assert retraining() == (36, 20, 96, 32, 3, True, 0.2)
    assert retraining("--quickstart") == (36, 6, 16, 8, 1, False, 0.0)
    assert retraining("--quickstart", "--batch", "1", "--layers", "3") == (36, 3, 1, 8, 1, False, 0.0)
    assert retraining("--batch", "1") == (36, 20, 1, 32, 3, True, 0.2)
    assert search() == (16, 8, 64, 32, 3)
    assert search("--quickstart") == (8, 3, 32, 8, 1)
    assert search("--quickstart", "--batch", "2") == (8, 3, 2, 8, 1)


def test_retrain_step_times_the_stages_own_step(monkeypatch):
    """The tuned step (and each --revision child's) is RetrainTask's epoch loop, so a change to the stage's loop
    (its optimiser, say) shows in the benchmark: one warm-up epoch and one timed, the latter at the full drop-path."""
    import argparse

    from ltnas.train.retrain import RetrainTask

    sys.path.insert(0, str(BENCHMARKS))
    try:
        import retrain_step
    finally:
        sys.path.remove(str(BENCHMARKS))
    epochs, original = [], RetrainTask.run_epoch

    def run_epoch(task, epoch, on_step):
        epochs.append((epoch, len(task.train_batches)))
        row = original(task, epoch, on_step)
        epochs[-1] += (task.model.drop_path_prob,)
        return row

    monkeypatch.setattr(RetrainTask, "run_epoch", run_epoch)
    args = argparse.Namespace(genotype="DARTS_V2", channels=4, layers=3, batch=4, size=8, in_channels=1,
                              auxiliary=True, drop_path=0.2, warmup=1, steps=2, quickstart=False)
    seconds, _, params = retrain_step.time_task_steps(args, torch.device("cpu"), False, True)
    assert epochs == [(0, 1, 0.0), (2, 2, 0.2)] and seconds > 0 and params > 0


@pytest.mark.parametrize("script,expect", [("retrain_step.py", "tuned / original"), ("end_to_end.py", "total")])
def test_retrain_and_end_to_end_benchmarks_run(script, expect):
    extra = ["--amp", "--channels-last"] if script == "retrain_step.py" else ["--set", "search.amp=true"]
    assert expect in run_script(str(BENCHMARKS / script), *extra)


GPU_CHECK = ["bash", str(BENCHMARKS / "gpu_check.sh")]


def run_gpu_check(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GPU_CHECK, str(out), "--work", str(out.parent / "work"), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"})


def test_gpu_check_dry_run_checks_and_times_every_section_into_one_summary(tmp_path):
    """The GPU check's sections at tiny sizes on the CPU, in one process (torchrun's CPU path is
    tested in test_distributed): every section passes and lands in summary.md / summary.json."""
    sections = ["env", "correctness", "search_step", "retrain_step", "end_to_end", "syncs"]
    # gpu_check.py itself, in this process (no Python start, torch and torch._dynamo import: ~3 CPU s); the
    # gpu_check.sh wrapper and its log are run and checked by the tests below. The budget (wall-clock seconds)
    # is the script's guard on the GPU machine, tested below: here a generous one, so that a machine whose
    # processes are held stopped for minutes does not skip sections.
    code, out = run_in_process([str(BENCHMARKS / "gpu_check.py"), "--out", str(tmp_path / "out"), "--work",
                                str(tmp_path / "work"), "--dry-run", "--in-process", "--budget", "3600",
                                "--sections", ",".join(sections)])
    assert code == 0, out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [*summary["sections"]] == sections
    assert all(s["status"] == "ok" for s in summary["sections"].values()), summary
    checks = summary["sections"]["correctness"]["checks"]
    assert len(checks) == 8 and all(c["passed"] for c in checks)
    rows = summary["sections"]["search_step"]["rows"]
    assert [r["variant"].split(" (")[0] for r in rows if r["speedup"] == 1.0] == ["original DARTS", "original FairDARTS"]
    assert [r["variant"] for r in summary["sections"]["retrain_step"]["rows"]] == [
        "fp32 NCHW (original)", "fp32 channels_last", "bf16 + channels_last"]
    e2e = summary["sections"]["end_to_end"]
    assert [e["epoch"] for e in e2e["epochs"]] == [1, 2] and e2e["projected_50_min"] > 0
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "| search_step | ok |" in markdown and "projected 50 epochs" in markdown
    assert "=== end_to_end: ok" in out


def test_gpu_check_runs_each_section_in_its_own_process(tmp_path):
    """How the GPU run goes (the sections above ran in-process): the child's result reaches the summary."""
    result = run_gpu_check(tmp_path / "out", "--dry-run", "--sections", "env")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["sections"]["env"]["status"] == "ok"
    assert summary["sections"]["env"]["device_name"].startswith("CPU")
    assert "=== env: ok" in (tmp_path / "out" / "log.txt").read_text()  # gpu_check.sh keeps the log


def test_gpu_check_skips_what_its_budget_cannot_fit_and_still_writes_the_summary(tmp_path):
    result = run_gpu_check(tmp_path / "out", "--dry-run", "--sections", "env,search_step", "--budget", "10")
    assert result.returncode == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {s["status"] for s in summary["sections"].values()} == {"skipped"}
    assert "| search_step | skipped |" in (tmp_path / "out" / "summary.md").read_text()


def test_gpu_check_without_an_output_folder_says_how_to_call_it():
    result = subprocess.run(GPU_CHECK, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage: bash benchmarks/gpu_check.sh OUTDIR" in result.stderr


def test_quality_benchmark_puts_baselines_and_logistic_regression_beside_search():
    out = run_script(str(BENCHMARKS / "quality.py"))
    assert "DARTS" in out and "CNN" in out and "baseline" in out and "LogReg (balanced)" in out
    assert "balanced test %" in out and "few-shot %" in out and "best search method: DARTS" in out


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads a process's children from /proc")
def test_quality_benchmark_stopped_with_sigterm_leaves_no_worker_running(tmp_path):
    """`quality.py --jobs 2` stopped with SIGTERM (`kill`, `timeout`: only the parent gets it) ends its pool's
    workers and says so in one line, instead of dying alone and leaving them training their members."""
    import signal
    import time

    from conftest import process_alive

    argv = [sys.executable, str(BENCHMARKS / "quality.py"), "--smoke", "--jobs", "2", "--out", str(tmp_path / "q"),
            "--set", "train.epochs=100000"]
    log = tmp_path / "stderr.txt"  # a file, not a pipe: reading a pipe would wait for the workers to end too
    with log.open("w") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})

    def workers() -> list[int]:
        found = []
        for task in Path(f"/proc/{process.pid}/task").glob("*"):
            for pid in (task / "children").read_text().split():
                with contextlib.suppress(OSError):
                    if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        found.append(int(pid))
        return found

    deadline = time.monotonic() + 120
    while len(running := workers()) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert len(running) == 2, f"both members should be running in pool workers: {running}, exit {process.poll()}"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
        deadline = time.monotonic() + 60
        while any(process_alive(pid) for pid in running) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(process_alive(pid) for pid in running)
    finally:  # a failure here must not leave workers training for the rest of the suite
        process.kill()
        for pid in filter(process_alive, running):
            os.kill(pid, signal.SIGKILL)
    stderr = log.read_text()
    assert process.returncode == 1 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "quality.py: stopped before the table; no worker is left running"


def test_recipe_benchmark_reports_convergence(tmp_path):
    out = run_script(str(BENCHMARKS / "recipe.py"), "--seeds", "0", "--network", "cnn",
                     "--recipe", "warm:train.warmup_epochs=1", "--out", str(tmp_path))
    assert "warm" in out and "train acc %" in out and "max val loss" in out
    row = next(line for line in out.splitlines() if line.startswith("warm"))
    # the kept run folders give the same row again, without training (all but the CPU seconds)
    collected = subprocess.run([sys.executable, str(BENCHMARKS / "recipe.py"), "--collect", str(tmp_path)],
                               capture_output=True, text=True, timeout=120)
    assert collected.returncode == 0, collected.stderr
    again = next(line for line in collected.stdout.splitlines() if line.startswith("warm"))
    assert again.split()[:-3] == row.split()[:-3] and again.split()[-1] == row.split()[-1]


def test_s2_skips_benchmark_counts_dominant_skips_per_method():
    out = run_script(str(BENCHMARKS / "s2_skips.py"))
    assert [line.split(":")[0] for line in out.splitlines() if "dominant operation is skip" in line] == [
        "darts", "fairdarts"]
    assert out.count("final per seed:") == 2


def test_quickstart_policy_benchmark_names_an_unknown_condition():
    """In this process: `raise SystemExit(message)` is what Python prints to stderr, exiting with status 1."""
    code, _ = run_in_process([str(BENCHMARKS / "quickstart_policy.py"), "--conditions", "idle,busy"])
    assert code == "unknown condition busy; choose from idle, competing, competing-same-session"


def test_quickstart_policy_benchmark_times_both_policies():
    out = run_script(str(BENCHMARKS / "quickstart_policy.py"))
    lines = [line for line in out.splitlines() if line.startswith("idle")]
    assert [line.split()[1] for line in lines] == ["one", "policy"]
    assert all("1 member at a time, 1 torch thread each" in line and "balanced test: CNN" in line for line in lines)
