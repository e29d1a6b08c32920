"""A run killed at any point and resumed ends exactly as an uninterrupted run (same seed, CPU)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import call

from ltnas import pipeline
from ltnas.config import validate_config
from ltnas.runs import RunFolder
from ltnas.search.task import SearchTask
from ltnas.train.loop import JsonlLog
from ltnas.train.retrain import RetrainTask


class Killed(Exception):
    """Stands in for a kill: raised between an epoch's log row and its checkpoint."""


def _outcome(folder: Path) -> dict:
    """Everything a run produces that must not depend on interruptions (wall times excluded)."""
    def rows(path):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in JsonlLog(path).rows()]

    evaluation = json.loads((folder / "eval.json").read_text())
    return {
        "genotype": json.loads((folder / "search" / "genotype.json").read_text()),
        "alpha": JsonlLog(folder / "search" / "alpha.jsonl").rows(),
        "search": rows(folder / "search" / "metrics.jsonl"),
        "train": rows(folder / "train" / "metrics.jsonl"),
        "balanced_test": evaluation["balanced_test"],
        "longtail_test": evaluation["longtail_test"],
    }


@pytest.fixture(scope="module")
def resume_config():
    from conftest import TINY_RUN

    raw = json.loads(json.dumps(TINY_RUN))
    raw["search"]["epochs"] = 3
    raw["train"]["epochs"] = 3
    return validate_config(raw)


@pytest.fixture(scope="module")
def uninterrupted_run(resume_config, tmp_path_factory) -> tuple[Path, dict]:
    """One uninterrupted run: (its folder, the results run_all returned)."""
    folder = tmp_path_factory.mktemp("uninterrupted") / "run"
    return folder, pipeline.run_all(resume_config, RunFolder.create(folder, resume_config))


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_run) -> dict:
    return _outcome(uninterrupted_run[0])


@pytest.mark.parametrize("task_class,epoch", [(SearchTask, 1), (RetrainTask, 1)])
def test_resume_after_interruption_equals_uninterrupted_run(resume_config, uninterrupted, tmp_path, monkeypatch,
                                                            task_class, epoch):
    original = task_class.after_epoch

    def interrupt(self, e, folder):
        original(self, e, folder)
        if e == epoch:  # the epoch's metrics row and artefacts are written, its checkpoint is not
            raise Killed

    monkeypatch.setattr(task_class, "after_epoch", interrupt)
    folder = tmp_path / "run"
    with pytest.raises(Killed):
        pipeline.run_all(resume_config, RunFolder.create(folder, resume_config))
    monkeypatch.setattr(task_class, "after_epoch", original)

    stage = "search" if task_class is SearchTask else "train"
    assert len(JsonlLog(folder / stage / "metrics.jsonl").rows()) == epoch + 1  # one row past the checkpoint

    run = RunFolder.open(folder)
    pipeline.run_all(run.config(), run)
    assert _outcome(folder) == uninterrupted


def test_resume_after_sigkill_equals_uninterrupted_run(tiny_config_file, resume_config, uninterrupted, tmp_path):
    """A real `kill -9` of the CLI process in the middle of the search, then `ltnas run --resume`."""
    folder = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same thread count as this process (conftest)
    command = [sys.executable, "-m", "ltnas", "run", str(tiny_config_file), "--out", str(folder),
               "--set", "search.epochs=3", "--set", "train.epochs=3"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = folder / "search" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    assert not (folder / "eval.json").exists()

    code, _, stderr = call(["run", "--resume", str(folder)])  # the CLI in this process: one torch start fewer
    assert code == 0, stderr
    assert _outcome(folder) == uninterrupted


def test_finished_run_resumes_to_the_same_result(resume_config, uninterrupted_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(uninterrupted_run[0], folder)  # a copy: the shared run stays as it finished
    first = uninterrupted_run[1]
    again = pipeline.run_all(resume_config, RunFolder.open(folder))
    assert again["balanced_test"] == first["balanced_test"]
    assert len(JsonlLog(folder / "search" / "metrics.jsonl").rows()) == resume_config.search.epochs


def test_checkpoint_files_are_replaced_atomically(tmp_path):
    from ltnas.atomic import atomic_save
    from ltnas.train.checkpoint import load_checkpoint

    target = tmp_path / "checkpoint.pt"
    atomic_save({"epoch": 1}, target)
    atomic_save({"epoch": 2}, target)
    assert load_checkpoint(target) == {"epoch": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary files left behind
