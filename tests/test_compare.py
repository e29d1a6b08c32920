"""`ltnas compare`: variants × seeds into one table, published numbers beside ours, resume, bad input."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from pydantic import ValidationError
from test_cli import call, user_error

from ltnas.compare import is_comparison_file, slug
from ltnas.errors import LtnasError
from ltnas.config import PublishedResults
from ltnas.report.comparison import published_fractions, summarise, table_rows, verdict

# One search and one retrain epoch; a low threshold so that FairDARTS/SSF keep edges after one epoch.
QUICK = ["--set", "search.epochs=1", "--set", "train.epochs=1", "--set", "search.threshold=0.3",
         "--set", "search.ssl.projector=[16,16]"]


@pytest.fixture(scope="module")
def methods_comparison(tiny_yaml, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "methods"
    code, stdout, stderr = call(["compare", str(tiny_yaml), "--methods", "darts,ssf", "--seeds", "0,1",
                                 "--out", str(out), *QUICK])
    assert code == 0, stderr
    return out, stdout, stderr


def test_methods_comparison_table_and_files(methods_comparison):
    out, stdout, stderr = methods_comparison
    assert "[4/4] SSF-NAS, seed 1" in stderr
    assert "DARTS" in stdout and "SSF-NAS" in stdout and "mean ± std over seeds [0, 1]" in stdout
    assert ("won:" in stdout) or ("No winner" in stdout)
    result = json.loads((out / "comparison.json").read_text())
    assert list(result["variants"]) == ["DARTS", "SSF-NAS"]
    for variant in ("DARTS", "SSF-NAS"):
        evals = [json.loads((out / slug(variant) / f"seed_{s}" / "eval.json").read_text()) for s in (0, 1)]
        values = [e["balanced_test"]["overall"] for e in evals]
        stat = result["variants"][variant]["balanced"]
        assert stat["values"] == values
        assert stat["mean"] == pytest.approx(np.mean(values))
        assert stat["std"] == pytest.approx(np.std(values, ddof=1))
        assert result["variants"][variant]["few"]["values"] == [e["balanced_test"]["few"] for e in evals]
        # multiply-adds per image of each evaluated network, in eval.json and the table ("×+")
        assert result["variants"][variant]["madds"]["values"] == [e["madds"] for e in evals]
        assert all(isinstance(e["madds"], int) and e["madds"] > 0 for e in evals)
    ssf_config = yaml.safe_load((out / "ssf-nas" / "seed_1" / "config.yaml").read_text())
    assert ssf_config["search"]["method"] == "ssf" and ssf_config["seed"] == 1
    markdown = (out / "comparison.md").read_text()
    assert "| DARTS |" in markdown and "plots/shot_groups.png" in markdown and "plots/per_class.png" in markdown
    assert "| params | ×+ |" in markdown and "×+" in stdout
    # FairDARTS Fig. 2 over seeds: dominant skip connections per search epoch, each method's own rule
    assert "plots/dominant_skips.png" in markdown and (out / "plots" / "dominant_skips.png").stat().st_size > 0
    skips = result["dominant_skips"]
    assert skips["DARTS"]["rule"] == "2 strongest inputs per node" and skips["SSF-NAS"]["rule"] == "weight > 0.75"
    assert all(len(seeds) == 2 for entry in skips.values() for seeds in entry["panels"].values())
    assert "ssf-nas/seed_0/plots/sigma_histogram.png" in markdown  # the runs' plots side by side
    assert (out / "plots" / "shot_groups.png").stat().st_size > 0
    assert (out / "plots" / "per_class.png").stat().st_size > 0
    assert "class_counts" not in markdown and not (out / "plots" / "class_counts.png").exists()  # same data


def test_resumed_comparison_finishes_only_what_is_unfinished(methods_comparison):
    out, _, _ = methods_comparison
    unfinished = out / "ssf-nas" / "seed_0" / "eval.json"
    finished = out / "darts" / "seed_1" / "eval.json"
    before = finished.stat().st_mtime_ns, unfinished.read_text()
    unfinished.unlink()  # as if the comparison was killed during this member's evaluation
    code, stdout, stderr = call(["compare", "--resume", str(out), "--no-progress"])
    assert code == 0, stderr
    assert "DARTS, seed 1: done" in stderr and "SSF-NAS, seed 0: running" in stderr
    assert finished.stat().st_mtime_ns == before[0]
    assert json.loads(unfinished.read_text())["balanced_test"] == json.loads(before[1])["balanced_test"]


def test_comparison_file_with_published_numbers(tiny_yaml, tmp_path):
    spec = {"compare": {
        "title": "tiny table", "base": "tiny.yaml", "seeds": [0],
        "variants": {"FairDARTS": ["search.method=fairdarts"],
                     "DARTS + balanced α": ["search.arch_objective=balanced"]},
        "published": {"source": "made-up paper, Table 9", "metric": "balanced_test.overall",
                      "values": {"FairDARTS": 79.35}},
    }}
    path = tiny_yaml.parent / "tiny_table.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert is_comparison_file(path) and not is_comparison_file(tiny_yaml)
    out = tmp_path / "table"
    code, stdout, stderr = call(["compare", str(path), "--out", str(out), *QUICK])
    assert code == 0, stderr
    assert "published (balanced test)" in stdout and "79.35" in stdout and "made-up paper, Table 9" in stdout
    assert slug("DARTS + balanced α") == "darts-balanced"
    assert (out / "darts-balanced" / "seed_0" / "eval.json").is_file()
    result = json.loads((out / "comparison.json").read_text())
    assert result["published"]["values"] == {"FairDARTS": pytest.approx(0.7935)}  # fractions, as eval.json


def test_published_numbers_in_several_metrics_with_mean_and_std():
    """A paper's mean ± std of k runs and a second metric (the long-tailed test) each get a column; the json
    holds fractions, as eval.json."""
    published = PublishedResults(source="made-up paper", values={"A": {"mean": 97.33, "std": 0.15, "runs": 7}, "B": 90.0},
                                 metrics={"longtail_test.overall": {"B": 52.51}})
    spec = SimpleNamespace(published=published)
    result = {"variants": {name: _stats() for name in ("A", "B")},
              "published": published_fractions(spec.published.model_dump())}
    header, rows = table_rows(result)
    assert header[-2:] == ["published (balanced test)", "published (LT test)"]
    assert [row[-2:] for row in rows] == [["97.33 ± 0.15", "—"], ["90.00", "52.51"]]
    assert result["published"]["values"]["A"] == {"mean": pytest.approx(0.9733), "std": pytest.approx(0.0015),
                                                  "runs": 7}
    assert result["published"]["metrics"] == {"longtail_test.overall": {"B": pytest.approx(0.5251)}}
    assert published.for_variants({"B": "DARTS"}).by_metric() == {"balanced_test.overall": {"DARTS": 90.0},
                                                                   "longtail_test.overall": {"DARTS": 52.51}}


def test_published_metric_given_twice_is_refused():
    with pytest.raises(ValidationError, match="repeats 'balanced_test.overall'"):
        PublishedResults(source="x", values={"A": 1.0}, metrics={"balanced_test.overall": {"A": 2.0}})


def test_summarise_and_verdict_by_hand():
    assert summarise([0.5, None, 0.7]) == {"mean": pytest.approx(0.6), "std": pytest.approx(0.1414213, rel=1e-5),
                                           "values": [0.5, None, 0.7]}
    assert summarise([None])["mean"] is None
    stats = lambda balanced, few: {"balanced": {"mean": balanced}, "few": {"mean": few}}  # noqa: E731
    line = verdict({"variants": {"A": stats(0.80, 0.40), "B": stats(0.85, 0.55), "C": stats(0.70, 0.20)}})
    assert line.startswith("B won: 85.00% balanced test accuracy, 5.00 points more than A.")
    assert "B scores 55.00% (A 40.00%, C 20.00%)" in line
    assert verdict({"variants": {"A": stats(0.8, 0.4), "B": stats(0.8, 0.5)}}).startswith("No winner")


# ------------------------------------------------------------------------------ thread policy


@pytest.mark.parametrize("members, cores, busy, cpu, default, overrides, expected", [
    (6, 2, 0.1, True, 2, {}, (2, 1)),     # the quickstart on an idle laptop: one member per core, 1 thread each
    (6, 2, 1.0, True, 2, {}, (2, 1)),     # ... beside a competing process: still 2 single-threaded workers
    (1, 2, 0.2, True, 2, {}, (1, 2)),     # one run on idle cores: both
    (1, 2, 1.0, True, 2, {}, (1, 1)),     # ... beside a competing process: the free one only (no barrier stalls)
    (1, 2, 3.0, True, 2, {}, (1, 1)),     # an overloaded machine: still one thread
    (2, 16, 0.0, True, 8, {}, (2, 4)),    # few members, many cores: threads share the free ones (≤ torch's default)
    (3, 16, 10.0, True, 16, {}, (3, 2)),  # 16 cores, 10 busy: 6 free among 3 members
    (6, 8, 0.0, True, 4, {}, (6, 1)),     # torch counts 4 physical cores: 1 thread per worker
    (6, 2, 0.0, False, 2, {}, (1, None)),  # a GPU: one member at a time, torch's threads
    (6, 2, 0.0, True, 2, {"jobs": 1}, (1, 2)),  # --jobs 1: sequential, the free cores' threads
    (6, 2, 0.0, True, 2, {"jobs": 9}, (6, 1)),  # never more workers than members
    (6, 2, 1.0, True, 2, {"jobs": 3, "threads": 2}, (3, 2)),  # both given: as given
    (1, 2, 0.0, False, 2, {"threads": 3}, (1, 3)),  # --threads on a GPU run is applied too
])
def test_thread_policy_picks_jobs_and_threads(members, cores, busy, cpu, default, overrides, expected):
    from ltnas.threads import plan

    chosen = plan(members, cores, busy, cpu=cpu, default_threads=default, **overrides)
    assert (chosen.jobs, chosen.threads) == expected


def test_thread_policy_reads_the_machine_and_the_environment(monkeypatch):
    from ltnas import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.2)
    monkeypatch.setattr(threads, "_DEFAULT_THREADS", 4)
    monkeypatch.delenv("LTNAS_JOBS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert threads.choose(6, "cpu") == threads.Plan(4, 1)
    assert threads.choose(1, "cpu") == threads.Plan(1, 3)  # 4 cores, 1 busy
    assert threads.choose(2, "cpu") == threads.Plan(2, 1)
    monkeypatch.setenv("LTNAS_JOBS", "1")
    assert threads.choose(6, "cpu") == threads.Plan(1, 3)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose(6, "cpu") == threads.Plan(1, 2)
    assert threads.choose(6, "cpu", jobs=3, threads=1) == threads.Plan(3, 1)  # options beat the environment
    assert threads.Plan(2, 1).describe() == "2 members at a time, 1 torch thread each"
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(LtnasError, match="OMP_NUM_THREADS='many' is not a whole number"):
        threads.choose(6, "cpu")


def test_available_cores_follow_the_affinity_mask():
    import os

    from ltnas.threads import available_cores

    if hasattr(os, "sched_getaffinity"):
        assert available_cores() == len(os.sched_getaffinity(0))
    assert available_cores() >= 1


def test_parallel_members_run_in_their_own_single_threaded_processes(methods_comparison, tiny_yaml, tmp_path):
    """--jobs 2: each member in a spawned process with 1 torch thread, results equal to the sequential run's."""
    import os

    from ltnas import lock
    from ltnas.compare import Comparison, spec_from_methods

    sequential, _, _ = methods_comparison
    overrides = [value for flag, value in zip(QUICK[::2], QUICK[1::2])]
    comparison = Comparison.create(spec_from_methods(tiny_yaml, ["darts"], [0, 1]), tmp_path / "parallel",
                                   [*overrides, "progress=false"])
    ended = []
    try:
        result = comparison.run(jobs=2, threads=1, on_end=lambda index, member, seconds: ended.append(index))
    finally:
        lock.release_all()
    assert sorted(ended) == [0, 1] and not result["failed"]
    pids = {worker["pid"] for worker in comparison.workers.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert [worker["threads"] for worker in comparison.workers.values()] == [1, 1]
    for seed in (0, 1):
        ours = json.loads((tmp_path / "parallel" / "darts" / f"seed_{seed}" / "eval.json").read_text())
        theirs = json.loads((sequential / "darts" / f"seed_{seed}" / "eval.json").read_text())
        for key in ("balanced_test", "longtail_test", "params"):
            assert ours[key] == theirs[key]
        genotype = f"darts/seed_{seed}/search/genotype.json"
        assert (tmp_path / "parallel" / genotype).read_text() == (sequential / genotype).read_text()
    assert not (tmp_path / "parallel" / "darts" / "seed_0" / lock.LOCK_NAME).exists()  # the workers let go


def test_the_report_is_prepared_once_the_last_members_run_on_fewer_cores(tiny_yaml, tmp_path, monkeypatch):
    """The parallel loop imports the comparison report's modules as soon as no member waits and a worker idles (here:
    3 members on 2 workers, the lowest-numbered busy member ending first), so that the report after the last member
    does not wait for them, and not while every worker is busy."""
    from ltnas import compare, lock
    from ltnas.compare import Comparison, spec_from_methods

    class ScriptedWorkers:
        def __init__(self, log, threads):
            self.busy: dict[int, int] = {}

        def hand(self, index, path, config):
            self.busy[index] = index

        def events(self, timeout=None):
            index = min(self.busy)
            del self.busy[index]
            return [("done", index)]

        def close(self, **options):
            pass

    comparison = Comparison.create(spec_from_methods(tiny_yaml, ["cnn"], [0, 1, 2]), tmp_path / "c", ["progress=false"])
    ended, prepared = [], []
    monkeypatch.setattr(compare, "_Workers", ScriptedWorkers)
    monkeypatch.setattr(compare, "_prepare_report", lambda: prepared.append(list(ended)))
    try:
        comparison._run_parallel(None, lambda index, member, seconds: ended.append(index), None, jobs=2, threads=1)
    finally:
        lock.release_all()
    assert ended == [0, 1, 2]
    assert prepared == [[0, 1]]  # after the second member ended, the third still running


@pytest.fixture(scope="module")
def failing_workers(tiny_yaml, tmp_path_factory):
    """One `--jobs 2` comparison of CNN seeds 0–3 with two faults: seed 0's member fails inside its worker (it asks
    for CUDA on a machine without it; the worker lives on) and seed 1's worker exits hard as the member reaches it
    (as if killed). One run serves the two tests below, which each checked one fault on a run of its own: the
    spawned workers (a Python start and the torch and ltnas imports each) were most of their time.
    (comparison folder, result, comparison)"""
    import torch

    from ltnas import compare, lock
    from ltnas.compare import Comparison, spec_from_methods

    folder = tmp_path_factory.mktemp("failing") / "c"
    overrides = [value for flag, value in zip(QUICK[::2], QUICK[1::2])]
    comparison = Comparison.create(spec_from_methods(tiny_yaml, ["cnn"], [0, 1, 2, 3]), folder,
                                   [*overrides, "progress=false", "train.epochs=1"])
    if not torch.cuda.is_available():  # with CUDA the member would not fail: its test skips
        comparison.members[0].config.device = "cuda"  # as `--resume --device cuda` would on this machine
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compare, "_worker_process", _dies_on_seed_1)  # the spawned workers import this test module
        try:
            result = comparison.run(jobs=2, threads=1)
        finally:
            lock.release_all()
    return folder, result, comparison


def test_a_member_failing_in_its_worker_is_recorded_and_the_other_finishes(failing_workers):
    import torch

    from ltnas.compare import FAILED_FILE

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA (the failing member asks for it)")
    folder, result, comparison = failing_workers
    failed = {(f["variant"], f["seed"]): f for f in result["failed"]}
    assert ("CNN", 0) in failed and failed[("CNN", 0)]["error"].startswith("device 'cuda'")
    assert len(result["variants"]["CNN"]["balanced"]["values"]) == 2  # seeds 2 and 3, which finished
    assert all((folder / "cnn" / f"seed_{seed}" / "eval.json").is_file() for seed in (2, 3))
    # Seeds 0, 2 and 3 started (seed 1's worker died first) in at most two processes, seed 0's and the one that
    # replaced seed 1's: the worker whose member failed lived on and took another.
    assert sorted(comparison.workers) == [0, 2, 3]
    assert len({worker["pid"] for worker in comparison.workers.values()}) <= 2
    assert "no CUDA GPU" in json.loads((folder / "cnn" / "seed_0" / FAILED_FILE).read_text())["error"]


def test_a_worker_that_dies_fails_its_member_and_a_new_worker_takes_the_next(failing_workers):
    from ltnas.compare import FAILED_FILE

    folder, result, comparison = failing_workers
    assert ("CNN", 1) in [(f["variant"], f["seed"]) for f in result["failed"]]
    assert "its worker process ended with exit code 3" in json.loads(
        (folder / "cnn" / "seed_1" / FAILED_FILE).read_text())["error"]
    assert all((folder / "cnn" / f"seed_{seed}" / "eval.json").is_file() for seed in (2, 3))
    assert 1 not in comparison.workers  # the dead worker never said it started
    assert sorted(comparison.workers)[-2:] == [2, 3]  # the members after it ran


def _dies_on_seed_1(connection, log, threads, parent):
    """A worker that exits hard (as if killed) when it is sent seed 1's member, and works normally otherwise."""
    import os

    from ltnas.compare import _worker_process

    job = connection.recv()
    if job is not None and job[1].endswith("seed_1"):
        os._exit(3)

    class Replay:  # hands the job already read to the real worker loop, then the rest of the pipe
        def __init__(self):
            self.first = job

        def recv(self):
            job, self.first = self.first, False
            return job if job is not False else connection.recv()

        def send(self, message):
            connection.send(message)

    _worker_process(Replay(), log, threads, parent)


# ------------------------------------------------------------------------------ bad input


def test_compare_bad_input(tiny_yaml, tmp_path, capsys):
    user_error(capsys, ["compare", str(tiny_yaml), "--out", str(tmp_path / "a")], "--methods")
    user_error(capsys, ["compare", "--methods", "darts"], "no config given")
    user_error(capsys, ["compare", str(tiny_yaml), "--methods", "darts,nope", "--out", str(tmp_path / "b")],
               "unknown method 'nope'", "search methods", "baseline networks")
    user_error(capsys, ["compare", str(tiny_yaml), "--methods", "darts,darts"], "twice")
    user_error(capsys, ["compare", str(tiny_yaml), "--methods", "darts", "--jobs", "0"], "--jobs 0", "at least 1")
    user_error(capsys, ["quickstart", "--threads", "-1", "--out", str(tmp_path / "q")], "--threads -1")
    user_error(capsys, ["run", str(tiny_yaml), "--threads", "0", "--out", str(tmp_path / "r")], "--threads 0")
    assert not (tmp_path / "q").exists() and not (tmp_path / "r").exists()
    user_error(capsys, ["compare", str(tiny_yaml), "--methods", "darts", "--seeds", "0,x"], "--seeds")
    user_error(capsys, ["compare", str(tiny_yaml), "--methods", "darts", "--seeds", "0,1", "--seed", "3"],
               "not both")
    user_error(capsys, ["compare", str(tiny_yaml), "--methods", "darts", "--set", "search.epochz=1",
                        "--out", str(tmp_path / "c")], "epochs")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"compare": {"base": str(tiny_yaml), "variants": {"A": ["search.sgd.lr=-1"]}}}))
    user_error(capsys, ["compare", str(spec), "--methods", "darts"], "drop --methods")
    user_error(capsys, ["compare", str(spec), "--out", str(tmp_path / "d")], "search.sgd.lr")
    assert not (tmp_path / "d").exists()
    spec.write_text(yaml.safe_dump({"compare": {"base": str(tiny_yaml), "variants": {}}}))
    user_error(capsys, ["compare", str(spec)], "at least one variant")

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    user_error(capsys, ["compare", str(tiny_yaml), "--methods", "darts", "--out", str(existing)], "already exists")
    assert (existing / "keep.txt").read_text() == "mine"
    user_error(capsys, ["compare", "--resume", str(existing)], "no comparison")
    user_error(capsys, ["compare", "--resume", str(existing), "--methods", "darts"], "drop --methods")


def _stats(cost_seconds=None, cost_images=None):
    """One variant's aggregated statistics as `aggregate` writes them, one seed."""
    empty = {"mean": None, "std": None, "values": [None]}
    one = lambda value: {"mean": value, "std": 0.0, "values": [value]} if value is not None else empty  # noqa: E731
    return {"balanced": one(0.5), "longtail": one(0.6), "many": one(0.9), "medium": one(0.5), "few": one(0.1),
            "params": one(1200), "search_seconds": one(3.0), "train_seconds": one(4.0),
            "cost_seconds": one(cost_seconds), "cost_images": one(cost_images)}


def test_table_shows_a_procedure_cost_when_variants_report_one():
    header, rows = table_rows({"variants": {"P1": _stats(12.5, 5400)}, "published": None})
    assert header[-1] == "cost (time, images)" and rows[0][-1] == "12.5s, 5.40K"
    header, _ = table_rows({"variants": {"DARTS": _stats()}, "published": None})
    assert "cost (time, images)" not in header


def test_table_shows_top5_when_variants_have_it():
    from ltnas.report.comparison import table_rows

    def stats(top5=None):
        one = lambda value: {"mean": value, "std": None, "values": [value]}  # noqa: E731
        return {"balanced": one(0.5), "longtail": one(0.6), "many": one(0.9), "medium": one(0.5), "few": one(0.1),
                "params": one(1200), "search_seconds": one(3.0), "train_seconds": one(4.0), "top5": one(top5)}

    header, rows = table_rows({"variants": {"FairDARTS-B": stats(0.925)}, "published": None})
    column = header.index("balanced test, top-5")
    assert rows[0][column] == "92.50"
    header, _ = table_rows({"variants": {"DARTS": stats()}, "published": None})  # 5 classes or fewer: no column
    assert not any("top-5" in title for title in header)
    published = {"source": "x", "metric": "balanced_test.top5", "values": {"FairDARTS-B": 0.925}}
    header, _ = table_rows({"variants": {"FairDARTS-B": stats(0.925)}, "published": published})
    assert header[-1] == "published (top-5)"


def test_class_counts_of_variants_that_differ_in_data(tmp_path):
    """IMB-NAS (Yao, 2024) Fig. 3: one panel per distinct training distribution, naming its variants."""
    from ltnas.report.comparison import class_count_panels, comparison_markdown
    from ltnas.report.plots import plot_class_counts

    data = {"P0-balanced": ("balanced", 1.0, [50, 50, 50]), "P1-balanced": ("balanced", 1.0, [50, 50, 50]),
            "P0-exp-0.1": ("exp", 10.0, [50, 15, 5]), "P0-step-0.1": ("step", 10.0, [50, 50, 5])}
    members = []
    for variant, (profile, ratio, counts) in data.items():
        for seed in (0, 1):
            run = tmp_path / slug(variant) / f"seed_{seed}"
            run.mkdir(parents=True)
            (run / "data.json").write_text(json.dumps({"profile": profile, "ratio": ratio, "train_counts": counts}))
            members.append((variant, seed, run))
    panels = class_count_panels(members)
    assert panels == [("balanced: P0-balanced, P1-balanced", [50, 50, 50]), ("exp, ratio 10: P0-exp-0.1", [50, 15, 5]),
                      ("step, ratio 10: P0-step-0.1", [50, 50, 5])]
    assert plot_class_counts(panels, tmp_path / "plots" / "class_counts.png").stat().st_size > 0
    assert class_count_panels(members[:4]) == [("balanced: P0-balanced, P1-balanced", [50, 50, 50])]  # one: no plot
    result = {"title": "t", "seeds": [0], "variants": {}, "runs": {}, "shot_thresholds": None}
    assert "![training class counts of the variants](plots/class_counts.png)" in comparison_markdown(
        result, {"class_counts"})


def test_the_terminal_table_leaves_out_columns_to_fit_instead_of_cutting_numbers():
    """In an 80-column terminal rich cut every number short ("91.…"); the table now leaves out the columns read
    least (NARROW_TERMINAL_DROPS: top-5, ×+, search, train, ...) until it fits and says which, and a terminal wide
    enough keeps them all."""
    import io

    from rich.console import Console

    from ltnas.report.comparison import print_comparison

    def stats(balanced, few):
        three = lambda mean, std: {"mean": mean, "std": std, "values": [mean] * 3}  # noqa: E731
        return {"balanced": three(balanced, 0.0342), "longtail": three(0.9852, 0.0101), "many": three(0.975, 0.0123),
                "medium": three(0.965, 0.0177), "few": three(few, 0.0921), "top5": three(0.998, 0.002),
                "params": three(938930, 0.0), "madds": three(11.02e6, 0.0), "search_seconds": three(13.0, 0.4),
                "train_seconds": three(80.0, 2.1)}

    result = {"title": "quickstart", "seeds": [0, 1, 2], "published": None,
              "variants": {"FairDARTS": stats(0.9148, 0.69), "ResNet-32": stats(0.8816, 0.74)}}

    def printed(width: int) -> str:
        console = Console(width=width, record=True, file=io.StringIO())
        print_comparison(result, "runs/cmp", console)
        return console.export_text()

    narrow = printed(80)
    assert "…" not in narrow and "91.48 ± 3.42" in narrow and "69.00 ± 9.21" in narrow
    note = next(line for line in narrow.splitlines() if line.startswith("Left out to fit 80 columns: "))
    left_out = note.removeprefix("Left out to fit 80 columns: ").split(" (comparison.md")[0].split("; ")
    assert left_out[:3] == ["balanced test, top-5", "×+", "search"] and "few" not in left_out
    assert "few" in narrow and "balanced test" in narrow
    assert max(len(line) for line in narrow.splitlines()) <= 80
    wide = printed(250)
    assert "Left out" not in wide and "×+" in wide and "balanced test, top-5" in wide and "1m 20s" in wide


def test_a_member_says_where_it_stands_from_its_run_folder(tiny_yaml, tmp_path):
    """Member.progress: the stage whose metrics.jsonl was written last, its finished epochs (whole lines: a row
    being appended does not count) out of that config section's epochs; "starting" before any."""
    import os

    from ltnas import lock
    from ltnas.compare import Comparison, spec_from_methods

    comparison = Comparison.create(spec_from_methods(tiny_yaml, ["darts"], [0]), tmp_path / "c",
                                   ["search.epochs=4", "train.epochs=7", "progress=false"])
    lock.release_all()
    member = comparison.members[0]
    assert member.progress() == "starting"
    search = member.run.path / "search" / "metrics.jsonl"
    search.parent.mkdir()
    search.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert member.progress() == "search epoch 2/4"
    train = member.run.path / "train" / "metrics.jsonl"
    train.parent.mkdir()
    train.write_text('{"epoch": 1}\n')
    os.utime(search, ns=(1, 1))  # the search's log older than the retraining's
    assert member.progress() == "train epoch 1/7"
    other = member.run.path / "evolve" / "metrics.jsonl"  # a stage whose config section has no `epochs`
    other.parent.mkdir()
    other.write_text('{"generation": 1}\n{"generation": 2}\n{"generation": 3}\n')
    os.utime(train, ns=(2, 2))
    assert member.progress() == "evolve epoch 3"


def test_the_parallel_loop_reports_its_running_members_when_none_ends(tiny_yaml, tmp_path, monkeypatch):
    """While no worker says anything for compare.STATUS_EVERY seconds, the loop calls on_wait with the running
    members (the workers' wait times out), then goes on waiting; without on_wait it waits without a timeout."""
    from ltnas import compare, lock
    from ltnas.compare import Comparison, spec_from_methods

    timeouts = []

    class QuietWorkers:  # the first wait of each member times out; the next one ends the lowest-numbered member
        def __init__(self, log, threads):
            self.busy: dict[int, bool] = {}

        def hand(self, index, path, config):
            self.busy[index] = False

        def running(self):
            return sorted(self.busy)

        def events(self, timeout=None):
            timeouts.append(timeout)
            index = min(self.busy)
            if not self.busy[index]:
                self.busy[index] = True
                return []
            del self.busy[index]
            return [("done", index)]

        def close(self, **options):
            pass

    comparison = Comparison.create(spec_from_methods(tiny_yaml, ["cnn"], [0, 1, 2]), tmp_path / "c", ["progress=false"])
    monkeypatch.setattr(compare, "_Workers", QuietWorkers)
    monkeypatch.setattr(compare, "_prepare_report", lambda: None)
    waits = []
    try:
        comparison._run_parallel(None, None, None, jobs=2, threads=1,
                                 on_wait=lambda running: waits.append([index for index, _ in running]))
        assert waits == [[0, 1], [1, 2], [2]] and set(timeouts) == {compare.STATUS_EVERY}
        timeouts.clear()
        comparison._run_parallel(None, None, None, jobs=2, threads=1)  # no on_wait: no timeout, nothing called
        assert set(timeouts) == {None}
    finally:
        lock.release_all()


def test_a_parallel_comparison_prints_where_its_running_members_stand(tiny_yaml, tmp_path, monkeypatch, capsys):
    """`ltnas compare` with workers: the members' bars are off, so each on_wait call (compare.STATUS_EVERY seconds
    without a member ending) prints one line with each running member's stage and epoch."""
    from ltnas.cli import main
    from ltnas.compare import Comparison

    original = Comparison.run

    def run(self, **options):  # as the parallel loop calls it after a quiet wait, then the members one by one
        options["on_wait"]([(0, self.members[0])])
        return original(self, **{**options, "jobs": 1})

    monkeypatch.setattr(Comparison, "run", run)
    code = main(["compare", str(tiny_yaml), "--methods", "cnn", "--seeds", "0", "--set", "train.epochs=1",
                 "--no-progress", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 0 and "still running: [1/1] CNN, seed 0: starting\n" in err
