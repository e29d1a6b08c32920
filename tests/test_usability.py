"""Issue 14, sections 3–5: runs you can watch, comparisons that survive a failed member, reports and
an API that say what they mean. Tiny synthetic runs (tests/conftest.py), one epoch where possible."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from test_cli import call, user_error

import ltnas
from ltnas.cli import build_parser, resolve_config_path, shipped_configs
from ltnas.train.loop import ProgressReporter, epoch_line

ONE_EPOCH = ["--set", "search.epochs=1", "--set", "train.epochs=1"]


# ------------------------------------------------------------------ 3. runs you can watch


def test_epoch_line_names_loss_validation_metric_time_and_eta():
    row = {"epoch": 3, "train_loss": 0.51234, "val_balanced_acc": 0.612, "seconds": 4.1}
    line = epoch_line("search", 3, 10, row, 4.1, 28.7)
    assert line == "search epoch 3/10  train loss 0.5123  val balanced acc 61.20%  4.1s  eta 28.7s"
    assert "val" not in epoch_line("supernet", 1, 2, {"train_loss": 1.0}, 1.0, None)


def test_progress_prints_one_line_per_epoch_when_not_a_terminal():
    stream = io.StringIO()
    reporter = ProgressReporter(True, Console(file=stream, force_terminal=False))
    assert reporter.lines
    with reporter.stage("train", total=4):
        reporter.advance(loss=1.0)
        reporter.epoch_done("train", 1, 2, {"train_loss": 1.0, "val_balanced_acc": 0.5, "seconds": 2.0}, 2.0)
    assert stream.getvalue().splitlines() == ["train epoch 1/2  train loss 1.0000  val balanced acc 50.00%  "
                                              "2.0s  eta 2.0s"]
    silent = io.StringIO()
    ProgressReporter(False, Console(file=silent)).epoch_done("train", 1, 2, {"train_loss": 1.0}, None)
    assert silent.getvalue() == ""


def test_progress_bar_shows_epoch_and_validation_metric():
    stream = io.StringIO()
    reporter = ProgressReporter(True, Console(file=stream, force_terminal=True, width=200))
    assert not reporter.lines
    with reporter.stage("search", total=2):
        reporter.advance(loss=0.25)
        reporter.epoch_done("search", 1, 2, {"val_balanced_acc": 0.75}, 1.0)
        fields = reporter._progress.tasks[0].fields
    assert fields["epoch"] == "epoch 1/2" and "val balanced acc 75.00%" in fields["status"]
    assert "loss 0.250" in fields["status"]


def test_piped_run_prints_run_folder_first_and_a_line_per_epoch(tmp_path, tiny_config_file, monkeypatch):
    """stdout and stderr that are not a terminal (a pipe, a log file; here in-process StringIO, which is what
    rich asks about: isatty() is false for both) get the run folder first and one line per epoch, no bar.
    In this process: a child `python -m ltnas` (torch and its imports again, ~4 CPU s) proved nothing more;
    test_cli's subprocess tests run the entry point."""
    config = yaml.safe_load(tiny_config_file.read_text())
    config["progress"] = True
    tiny_config_file.write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = call(["run", str(tiny_config_file), "--out", "run", *ONE_EPOCH])
    assert code == 0, stderr
    assert stdout.splitlines()[0] == "run folder: run"
    lines = stderr.splitlines()
    search = [line for line in lines if line.startswith("search epoch 1/1")]
    train = [line for line in lines if line.startswith("train epoch 1/1")]
    assert len(search) == 1 and "val balanced acc" in search[0] and "train loss" in search[0]
    assert len(train) == 1 and "val balanced acc" in train[0]
    assert not any("━" in line for line in lines)  # no progress bar in a log


WATCHED_SHOTS: list[tuple] = []  # (many, few) shot thresholds of each per-epoch validation of the watched run


@pytest.fixture(scope="module")
def watched_run(tiny_yaml, tmp_path_factory) -> Path:
    """One tiny run shared by the tests below: TensorBoard on, shot thresholds set. The shot thresholds
    each per-epoch validation used are recorded in WATCHED_SHOTS."""
    import ltnas.search.task
    import ltnas.train.retrain
    from ltnas.metrics import classification_metrics

    def recording(predictions, labels, num_classes, train_counts, shots=(None, None)):
        WATCHED_SHOTS.append(tuple(shots))
        return classification_metrics(predictions, labels, num_classes, train_counts, shots)

    out = tmp_path_factory.mktemp("watched") / "run"
    with pytest.MonkeyPatch.context() as patch:
        for module in (ltnas.search.task, ltnas.train.retrain):
            patch.setattr(module, "classification_metrics", recording)
        assert main_ok(["run", str(tiny_yaml), "--out", str(out), "--log", "tensorboard", *ONE_EPOCH,
                        "--set", "eval.many_shot=30", "--set", "eval.few_shot=10"])
    return out


def test_tensorboard_logs_scalars_histograms_and_per_class_figure(watched_run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = watched_run
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"histograms": 0, "images": 0}).Reload()
    tags = events.Tags()
    assert {"search/train_loss", "search/val_balanced_acc", "train/train_loss"} <= set(tags["scalars"])
    assert {"search/weights_normal", "search/weights_reduce"} <= set(tags["histograms"])
    assert "evaluation/per_class" in tags["images"]
    assert events.Scalars("search/train_loss")[0].step == 1


def test_tensorboard_missing_is_one_line(monkeypatch, tmp_path, tiny_config_file, capsys):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    user_error(capsys, ["run", str(tiny_config_file), "--out", str(tmp_path / "r"), "--log", "tensorboard"],
               'pip install "ltnas[tensorboard]"')
    assert not (tmp_path / "r").exists()


def main_ok(argv: list[str]) -> bool:
    code, _, err = call(argv)
    assert code == 0, err
    return True


# ---------------------------------------------------------- 4. comparisons that survive


@pytest.fixture(scope="module")
def failing_comparison(tiny_yaml, tmp_path_factory):
    """DARTS runs; FairDARTS with threshold 0.99 after one epoch keeps no operation and fails."""
    spec = {"compare": {"title": "one fails", "base": str(tiny_yaml), "seeds": [0], "variants": {
        "DARTS": ["search.method=darts"],
        "FairDARTS": ["search.method=fairdarts", "search.threshold=0.99"]}}}
    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path_factory.mktemp("compare") / "cmp"
    code, stdout, stderr = call(["compare", str(path), "--out", str(out), *ONE_EPOCH])
    return out, code, stdout, stderr


def test_failed_member_is_recorded_and_the_rest_run(failing_comparison):
    out, code, stdout, stderr = failing_comparison
    assert code == 1
    assert stdout.splitlines()[0] == f"comparison folder: {out}"
    assert (out / "darts" / "seed_0" / "eval.json").is_file()
    failed = json.loads((out / "fairdarts" / "seed_0" / "failed.json").read_text())
    assert "cell" in failed["error"]
    result = json.loads((out / "comparison.json").read_text())
    assert list(result["variants"]) == ["DARTS"]
    assert result["failed"] == [{"variant": "FairDARTS", "seed": 0, "error": failed["error"]}]
    assert "FairDARTS" in stdout and "failed (seed 0)" in stdout and "failed —" in stdout
    assert "FairDARTS, seed 0: failed" in (out / "comparison.md").read_text()
    assert stderr.splitlines()[-1].startswith("ltnas: error: 1 of 2 comparison members did not finish")


def test_resume_refuses_set_that_changes_what_ran(failing_comparison, capsys):
    out = failing_comparison[0]
    before = (out / "fairdarts" / "seed_0" / "config.yaml").read_text()
    user_error(capsys, ["compare", "--resume", str(out), "--set", "search.threshold=0.5"], "search.threshold",
               "search.epochs")
    user_error(capsys, ["compare", "--resume", str(out), "--set", "search.epochs=0"], "search.epochs")
    assert (out / "fairdarts" / "seed_0" / "config.yaml").read_text() == before


def test_resume_retries_a_failed_member_with_more_epochs(failing_comparison):
    out = failing_comparison[0]
    darts_eval = (out / "darts" / "seed_0" / "eval.json").stat().st_mtime_ns
    code, stdout, stderr = call(["compare", "--resume", str(out), "--set", "search.epochs=2", "--no-progress"])
    assert "FairDARTS, seed 0: trying again" in stderr and "DARTS, seed 0: done" in stderr
    member = out / "fairdarts" / "seed_0"
    assert yaml.safe_load((member / "config.yaml").read_text())["search"]["epochs"] == 2
    rows = [json.loads(line) for line in (member / "search" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]  # the search continued, not replayed from the record
    assert (out / "darts" / "seed_0" / "eval.json").stat().st_mtime_ns == darts_eval
    assert yaml.safe_load((out / "darts" / "seed_0" / "config.yaml").read_text())["search"]["epochs"] == 1
    # threshold 0.99 still keeps nothing after 2 epochs: recorded again, exit code says so
    assert code == 1 and (member / "failed.json").is_file()


# ------------------------------------------------- 5. retraining is monitored on validation, not test


def test_floor_holdout_by_hand():
    from ltnas.data.splits import floor_holdout

    labels = [0] * 25 + [1] * 9 + [2] * 10
    rest, held = floor_holdout(labels, 0.1, seed=0)
    held_labels = sorted(labels[i] for i in held)
    assert held_labels == [0, 0, 2]  # floor(2.5) = 2, floor(0.9) = 0: a 9-image class gives none, floor(1.0) = 1
    assert sorted([*rest, *held]) == list(range(len(labels)))


def test_retraining_monitors_a_validation_part_never_the_test_set(watched_run, tmp_path):
    out = watched_run
    row = json.loads((out / "train" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"val_loss", "val_acc", "val_balanced_acc", "val_few_acc"} <= set(row)
    assert not any(key.startswith("test") for key in row)
    report = (out / "report.md").read_text()
    assert "Best test" not in report and "val balanced acc" in report
    assert "test set is evaluated once" in report
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["train"]["val_fraction"] == 0.1
    # A run folder saved before train.val_fraction existed resumes as it ran: on every training image.
    del config["train"]["val_fraction"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.yaml").write_text(yaml.safe_dump(config))
    from ltnas.runs import RunFolder

    assert RunFolder.open(tmp_path / "old").config().train.val_fraction == 0.0


# ------------------------------------------------------------------- 5. one node numbering


def test_one_node_naming_in_listing_heatmap_and_report():
    from ltnas.report.markdown import _genotype_text
    from ltnas.report.plots import edge_labels
    from ltnas.space import load_genotype
    from ltnas.space.genotype import node_name

    assert [node_name(n) for n in range(4)] == ["c_{k-2}", "c_{k-1}", "0", "1"]
    assert edge_labels(5) == ["0←c_{k-2}", "0←c_{k-1}", "1←c_{k-2}", "1←c_{k-1}", "1←0"]
    genotype = load_genotype("DARTS_V2")
    # DARTS_V2's normal node 2 (the DARTS code's index) takes sep_conv_3x3 from node 0 and 1: "0 ← ..."
    listing = genotype.describe().splitlines()[0]
    assert listing.startswith("normal: 0 ← sep_conv_3x3(c_{k-2}), sep_conv_3x3(c_{k-1}); 1 ← ")
    assert listing.endswith("output concat(0, 1, 2, 3)")
    report = _genotype_text(genotype.to_dict())
    assert "- node 0 ← `sep_conv_3x3(c_{k-2}), sep_conv_3x3(c_{k-1})`" in report
    assert "→" not in genotype.describe()


# ----------------------------------------------------------- 5. one seed shows no spread


def test_one_seed_has_no_spread_and_says_so(failing_comparison):
    from ltnas.report.comparison import format_mean_std, summarise, verdict

    assert summarise([0.5]) == {"mean": 0.5, "std": None, "values": [0.5]}
    assert format_mean_std(summarise([0.5])) == "50.00"
    stats = lambda balanced, few: {"balanced": {"mean": balanced, "values": [balanced]},  # noqa: E731
                                   "few": {"mean": few, "values": [few]}}
    line = verdict({"variants": {"A": stats(0.8, 0.4), "B": stats(0.7, 0.3)}})
    assert line.startswith("A won:") and "One seed" in line
    two = lambda b: {"balanced": {"mean": b, "values": [b, b]}, "few": {"mean": b, "values": [b, b]}}  # noqa: E731
    assert "One seed" not in verdict({"variants": {"A": two(0.8), "B": two(0.7)}})
    out, _, stdout, _ = failing_comparison
    assert "±" not in stdout and "std" not in stdout.split("\n", 2)[1]
    result = json.loads((out / "comparison.json").read_text())
    assert result["variants"]["DARTS"]["balanced"]["std"] is None


def test_published_numbers_are_fractions_in_comparison_json(tmp_path):
    from ltnas.compare import ComparisonSpec
    from ltnas.report.comparison import table_rows, write_comparison

    spec = ComparisonSpec(base="x", variants={"A": []}, published={"source": "paper", "metric":
                          "balanced_test.overall", "values": {"A": 79.35}})
    result = write_comparison(tmp_path, spec, [], failed={("A", 0): "boom"})
    assert result["published"]["values"] == {"A": pytest.approx(0.7935)}
    header, rows = table_rows(result)
    assert rows == [["A", "failed (seed 0)", *["—"] * (len(header) - 2)]]


# ------------------------------------------------------- 5. shot-group thresholds by data size


def test_shot_thresholds_by_dataset_size():
    from ltnas.metrics import classification_metrics, shot_groups, shot_thresholds

    assert shot_thresholds([5000, 50]) == (100, 20)     # CIFAR-10-LT
    assert shot_thresholds([500, 5]) == (100, 20)       # CIFAR-100-LT
    assert shot_thresholds([124, 2]) == (24, 4)         # the quickstart's digits: n_max // 5, n_max // 25
    assert shot_thresholds([124, 2], many=50, few=10) == (50, 10)
    assert shot_groups([124, 30, 24, 4, 3]) == {"many": [0, 1], "medium": [2, 3], "few": [4]}
    metrics = classification_metrics([0, 1], [0, 1], 2, [124, 2])
    assert metrics["shot_thresholds"] == {"many": 24, "few": 4} and metrics["groups"]["few"] == [1]


def test_shot_thresholds_are_settings_and_reach_eval_and_report(watched_run):
    out = watched_run
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["balanced_test"]["shot_thresholds"] == {"many": 30, "few": 10}
    counts = json.loads((out / "data.json").read_text())["train_counts"]
    assert evaluation["balanced_test"]["groups"]["many"] == [c for c, n in enumerate(counts) if n > 30]
    assert "Many-shot (> 30 train images)" in (out / "report.md").read_text()



def test_shot_threshold_settings_reach_the_per_epoch_validation_metrics(watched_run):
    """The search's and the retraining's per-epoch val_many/medium/few columns group classes with the
    same thresholds as the final evaluation (the settings when given: the watched run sets 30 / 10)."""
    assert len(WATCHED_SHOTS) == 2 and set(WATCHED_SHOTS) == {(30, 10)}


# -------------------------------------- 5. precision, F1, support, predictions, mistakes, groups over epochs


def test_precision_f1_support_and_predicted_counts_by_hand():
    from ltnas.metrics import classification_metrics

    # true 0,0,0,0,1,1,2,2 ; predicted 0,0,0,1,1,0,0,0 → class 2 never predicted
    metrics = classification_metrics([0, 0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1, 2, 2], 3, [500, 50, 5])
    assert metrics["support"] == [4, 2, 2]
    assert metrics["predicted_counts"] == [6, 2, 0]
    assert metrics["precision"] == pytest.approx([3 / 6, 1 / 2, None])
    p0, r0 = 3 / 6, 3 / 4
    assert metrics["f1"][0] == pytest.approx(2 * p0 * r0 / (p0 + r0))
    assert metrics["f1"][2] == 0.0  # has test images, none right
    assert classification_metrics([0], [0], 2, [5, 1])["f1"] == [1.0, None]  # no test images: nothing to score


def test_report_has_precision_f1_predicted_histogram_mistakes_and_shot_history(watched_run):
    out = watched_run
    report = (out / "report.md").read_text()
    assert "| test images | balanced test | long-tailed test | precision | F1 | predicted |" in report
    for name in ("predicted_classes", "shot_group_history", "misclassified"):
        assert f"plots/{name}.png" in report and (out / "plots" / f"{name}.png").stat().st_size > 0
    evaluation = json.loads((out / "eval.json").read_text())["balanced_test"]
    assert sum(evaluation["predicted_counts"]) == sum(evaluation["support"]) == evaluation["num_samples"]


# ------------------------------------------------ 5. the saved config holds what the method uses


@pytest.mark.parametrize("name", ["darts_cifar10_lt_smoke", "hls_cifar10_lt_smoke", "imbnas_smoke",
                                  "ssf_cifar10_lt_smoke", "quickstart"])
def test_saved_config_keeps_only_used_sections_and_reloads_identically(name, tmp_path):
    from ltnas.config import load_config
    from ltnas.runs import RunFolder

    config = load_config(resolve_config_path(name))
    run = RunFolder.create(tmp_path / "run", config)
    saved = yaml.safe_load(run.config_file.read_text())
    assert saved["version"] == ltnas.__version__ and "seed" in saved and "device" in saved
    method = config.search.method
    assert ("supernet" in saved) == (method == "imbnas") and ("adapt" in saved) == (method == "imbnas")
    # quickstart sets search.ssl for `ltnas quickstart`'s SSF-NAS member: a section someone set stays
    assert ("ssl" in saved["search"]) == (method == "ssf" or name == "quickstart")
    assert ("bbn" in saved["search"]) == (method == "bbn")
    assert ("train" in saved) == (method != "bbn")
    assert "published" not in saved
    reloaded = run.config()
    assert reloaded.model_dump(exclude={"version", "published"}) == config.model_dump(exclude={"version", "published"})
    if name == "quickstart":  # every value used, no unused section: one readable page (174 lines now)
        assert len(run.config_file.read_text().splitlines()) < 180


def test_a_section_someone_set_is_kept_even_if_the_method_does_not_read_it(tmp_path):
    from ltnas.config import load_config
    from ltnas.runs import RunFolder

    config = load_config(resolve_config_path("quickstart"), ["supernet.epochs=3"])
    run = RunFolder.create(tmp_path / "run", config)
    assert run.config().supernet.epochs == 3


def test_old_full_config_still_loads(tmp_path):
    from ltnas.config import load_config
    from ltnas.runs import RunFolder

    config = load_config(resolve_config_path("quickstart"))
    (tmp_path / "old").mkdir()
    full = config.model_dump(mode="json")
    full.pop("version")
    (tmp_path / "old" / "config.yaml").write_text(yaml.safe_dump(full))  # as ltnas saved it before
    assert RunFolder.open(tmp_path / "old").config().search == config.search


# ------------------------------------------------------------- 5. API and command line


def test_shipped_names_and_readme_paths_resolve_outside_a_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shipped = shipped_configs()["quickstart"]
    assert resolve_config_path("quickstart") == shipped
    assert resolve_config_path("configs/quickstart.yaml") == shipped
    user_error(capsys, ["run", "configs/nope.yaml"], "configs/nope.yaml", "quickstart")


def test_api_run_takes_seed_device_progress_and_keeps_fractions(tmp_path, tiny_config_file):
    results = ltnas.run(tiny_config_file, out=tmp_path / "run", overrides=["search.epochs=1", "train.epochs=1"],
                        seed=5, device="cpu", progress=False, log="tensorboard")
    assert any((tmp_path / "run" / "tensorboard").iterdir())
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["seed"] == 5 and saved["device"] == "cpu" and saved["progress"] is False
    assert 0.0 <= results["balanced_test"]["balanced"] <= 1.0  # fractions, as in eval.json
    assert results == json.loads((tmp_path / "run" / "eval.json").read_text())


def test_run_help_says_config_is_required_unless_resuming(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "CONFIG" in help_text and "required unless --resume" in help_text
    user_error(capsys, ["run"], "no config given", "quickstart")


def test_configs_piped_into_head_ends_quietly(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(f"{sys.executable} -m ltnas configs | head -1", shell=True, cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_a_closed_pipe_ends_the_listing_quietly(monkeypatch, capsys):
    from ltnas.cli import main

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["configs"]) == 141
    assert capsys.readouterr().err == ""
