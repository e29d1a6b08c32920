"""Faults a demanding user meets (issue 15): two processes on one folder, damaged or unwritable
files, a full disk, input that must be refused, and the words of the messages.

Every case holds to the CLI's contract (see test_cli.py): one line `ltnas: error: ...`, exit code 2,
no traceback, nothing lost. Processes that hold a lock are real second processes, synchronised by
a line on their stdout (no sleeps); the rest runs in-process through `ltnas.cli.main`.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_RUN, process_alive
from test_cli import call, snapshot, user_error

from ltnas import lock
from ltnas.atomic import atomic_save, atomic_write_text
from ltnas.cli import main
from ltnas.config import MAX_SEED, drw_warnings, validate_config
from ltnas.errors import DiskFull, LtnasError
from ltnas.train.loop import JsonlLog

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def tiny(tiny_yaml) -> str:
    return str(tiny_yaml)


@pytest.fixture
def finished(finished_tiny_run) -> Path:
    """A finished run, written under umask 022 (conftest's shared run: copy it before changing it)."""
    return finished_tiny_run[0]


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tiny_yaml):
    """A finished one-epoch search (search/checkpoint.pt at its last epoch)."""
    folder = tmp_path_factory.mktemp("searched") / "run"
    code, _, err = call(["search", str(tiny_yaml), "--set", "search.epochs=1", "--out", str(folder)])
    assert code == 0, err
    return folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


class Holder:
    """A second ltnas process holding FOLDER (as a run that has just created it would), until closed."""

    def __init__(self, folder: Path, create_with: dict | None = None):
        code = ("import sys\n"
                "if len(sys.argv) > 2:\n"
                "    import yaml; from ltnas.config import validate_config; from ltnas.runs import RunFolder\n"
                "    RunFolder.create(sys.argv[1], validate_config(yaml.safe_load(sys.argv[2])))\n"
                "else:\n"
                "    from ltnas import lock; lock.claim(sys.argv[1])\n"
                "print('ready', flush=True); sys.stdin.read()\n")
        argv = [sys.executable, "-c", code, str(folder)] + ([yaml.safe_dump(create_with)] if create_with else [])
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONPATH": SRC})
        assert self.process.stdout.readline().strip() == "ready"
        self.pid = self.process.pid

    def close(self) -> None:
        self.process.stdin.close()
        assert self.process.wait() == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


# ---------------------------------------------------------------- 1. two processes, one folder


def test_a_new_run_into_a_folder_another_process_is_creating_is_refused(tmp_path, tiny, capsys):
    folder = tmp_path / "run"
    holder = Holder(folder, create_with={**TINY_RUN, "seed": 1})
    try:
        before = snapshot(folder)
        line = user_error(capsys, ["run", tiny, "--seed", "0", "--out", str(folder)],
                          str(folder), f"PID {holder.pid}", "in use")
        assert snapshot(folder) == before  # the holder's config (seed 1) untouched
        assert yaml.safe_load((folder / "config.yaml").read_text())["seed"] == 1
        assert "Traceback" not in line
    finally:
        holder.close()
    assert not (folder / lock.LOCK_NAME).exists()  # a process that ends removes its lock file


def test_two_real_runs_into_one_out_one_wins(tmp_path, tiny):
    """Two `ltnas search --out X` started together: one runs, the other stops with one line."""
    folder = tmp_path / "run"
    argv = [sys.executable, "-m", "ltnas", "search", tiny, "--set", "search.epochs=1", "--out", str(folder)]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen(argv + ["--seed", str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env) for seed in (0, 1)]
    results = [(p.wait(), p.stderr.read()) for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    (winner, _), = [(seed, err) for seed, (code, err) in zip((0, 1), results) if code == 0]
    (loser_err,) = [err for code, err in results if code == 2]
    assert len(loser_err.splitlines()) == 1 and str(folder) in loser_err and "Traceback" not in loser_err
    assert yaml.safe_load((folder / "config.yaml").read_text())["seed"] == winner
    rows = JsonlLog(folder / "search" / "metrics.jsonl").rows()
    assert [row["epoch"] for row in rows] == [1]  # no interleaved rows of the other run


def test_resume_while_another_process_holds_the_run_is_refused(finished, tmp_path, capsys):
    folder = copy_of(finished, tmp_path)
    before = snapshot(folder)
    holder = Holder(folder)
    try:
        for argv in (["run", "--resume", str(folder)], ["eval", str(folder)]):
            user_error(capsys, argv, str(folder), f"PID {holder.pid}")
    finally:
        holder.close()
    assert snapshot(folder) == before


def test_stale_lock_of_a_killed_process_does_not_block_a_resume(tmp_path):
    holder = Holder(tmp_path)
    holder.kill()  # kill -9: the lock file stays, its flock goes with the process
    assert (tmp_path / lock.LOCK_NAME).read_text().strip() == str(holder.pid)
    lock.claim(tmp_path)  # what `--resume` does first
    assert (tmp_path / lock.LOCK_NAME).read_text().strip() == str(os.getpid())
    lock.release_all()
    assert not (tmp_path / lock.LOCK_NAME).exists()


def test_compare_resume_while_a_member_is_held_is_refused(tmp_path, tiny, capsys):
    from ltnas.compare import Comparison, spec_from_methods

    out = tmp_path / "cmp"
    Comparison.create(spec_from_methods(Path(tiny), ["darts", "fairdarts"], [0]), out)
    lock.release_all()  # as when that process ended
    member = out / "fairdarts" / "seed_0"
    holder = Holder(member)
    try:
        user_error(capsys, ["compare", "--resume", str(out)], str(member), f"PID {holder.pid}")
    finally:
        holder.close()


def test_supernet_cache_entry_being_trained_is_refused(tmp_path):
    from ltnas.stages.imbnas import source_supernet, supernet_key

    raw = {**TINY_RUN, "source_data": TINY_RUN["data"], "search": {"method": "imbnas"},
           "adapt": {"supernet_cache": str(tmp_path / "cache")}}
    config = validate_config(raw)
    entry = tmp_path / "cache" / supernet_key(config)
    entry.mkdir(parents=True)
    holder = Holder(entry)
    try:
        with pytest.raises(LtnasError, match=f"supernet cache {entry} .*PID {holder.pid}"):
            source_supernet(config, torch.device("cpu"))
    finally:
        holder.close()
    assert not (entry / "key.yaml").exists()  # the refused process wrote nothing there


def test_a_process_may_reclaim_its_own_folder(tmp_path):
    first = lock.claim(tmp_path)
    assert lock.claim(tmp_path) is first and lock.holds(tmp_path)
    lock.release_all()
    assert not lock.holds(tmp_path) and not (tmp_path / lock.LOCK_NAME).exists()


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_a_stopped_comparison_leaves_no_worker_holding_a_member(tmp_path, tiny, signal_name):
    """`ltnas compare --jobs 2` stopped with SIGTERM (`kill`, a job scheduler) stops its workers and says how to
    continue, as Ctrl-C does; killed outright (SIGKILL), its workers notice their parent is gone and stop
    themselves. Either way no worker goes on running a member and holding its folder for the resume to find."""
    import time

    folder = tmp_path / "cmp"
    argv = [sys.executable, "-m", "ltnas", "compare", tiny, "--methods", "cnn", "--seeds", "0,1", "--jobs", "2",
            "--set", "train.epochs=100000", "--no-progress", "--out", str(folder)]
    log = tmp_path / "stderr.txt"  # a file, not a pipe: reading a pipe would wait for the workers to end too
    with log.open("w") as stderr:  # SIGINT ignored, as in a job a script starts in the background
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"},
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    locks = [folder / "cnn" / f"seed_{seed}" / lock.LOCK_NAME for seed in (0, 1)]
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while len(workers) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        workers = {int(text) for text in (_read(path) for path in locks) if text and int(text) != process.pid}
    assert len(workers) == 2, "both members should be running in worker processes"
    process.send_signal(getattr(signal, signal_name))
    code = process.wait(timeout=120)
    deadline = time.monotonic() + 120  # generous: on a loaded machine a niced worker may wait long for the CPU
    while any(process_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(process_alive(pid) for pid in workers)
    assert not any(path.exists() for path in locks)  # each worker let go of its member's folder
    if signal_name == "SIGTERM":
        stderr = log.read_text()
        assert code == 130 and "Traceback" not in stderr
        assert f"continue with `ltnas compare --resume {folder}`" in stderr.splitlines()[-1]


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------- 2. damaged or unwritable files


@pytest.mark.parametrize("damage", ["truncated", "empty", "other_architecture"])
def test_resume_with_a_damaged_checkpoint_is_one_line(searched, tmp_path, tiny, capsys, damage):
    folder = copy_of(searched, tmp_path)
    checkpoint = folder / "search" / "checkpoint.pt"
    data = checkpoint.read_bytes()
    if damage == "truncated":
        checkpoint.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        checkpoint.write_bytes(b"")
    else:  # a checkpoint whose network has other shapes (say, another init_channels)
        state = torch.load(checkpoint, weights_only=False)
        network = state["task"]["strategy"]["network"]
        name = next(key for key, value in network.items() if value.dim() == 4)
        network[name] = torch.zeros(*network[name].shape[:-1], network[name].shape[-1] + 2)
        torch.save(state, checkpoint)
    before = snapshot(folder)
    words = ("does not fit",) if damage == "other_architecture" else ("damaged",)
    user_error(capsys, ["search", "--resume", str(folder)], str(checkpoint), "--resume", *words)
    assert snapshot(folder) == before  # nothing lost: the file is still there to restore or inspect


def test_eval_with_a_truncated_model_is_one_line(finished, tmp_path, capsys):
    folder = copy_of(finished, tmp_path)
    model = folder / "train" / "model.pt"
    model.write_bytes(model.read_bytes()[:1000])
    before = snapshot(folder)
    user_error(capsys, ["eval", str(folder)], str(model), "damaged")
    assert snapshot(folder) == before


def test_a_garbage_middle_row_of_metrics_is_one_line(searched, tmp_path, capsys):
    folder = copy_of(searched, tmp_path)
    log = folder / "search" / "metrics.jsonl"
    log.write_text("garbage\n" + log.read_text())
    user_error(capsys, ["search", "--resume", str(folder)], str(log), "line 1")


def test_jsonl_log_appends_whole_lines_and_reads_a_torn_tail(tmp_path, capsys):
    log = JsonlLog(tmp_path / "m.jsonl")
    log.append({"epoch": 1})
    log.append({"epoch": 2})
    assert log.path.read_text() == '{"epoch": 1}\n{"epoch": 2}\n'
    with log.path.open("ab") as handle:
        handle.write(b'{"epoch": 3, "loss": 0.\xc3')  # torn inside a multi-byte character
    assert log.rows() == [{"epoch": 1}, {"epoch": 2}]
    log.truncate(2)
    assert log.path.read_text() == '{"epoch": 1}\n{"epoch": 2}\n'


def test_corrupt_data_json_is_one_line(searched, tmp_path, capsys):
    folder = copy_of(searched, tmp_path)
    (folder / "data.json").write_text('{"classes": [')
    user_error(capsys, ["search", "--resume", str(folder)], str(folder / "data.json"), "delete it")


def _disk_full_in_epoch_2(monkeypatch, where: str) -> None:
    """Epoch 2 hits a full disk halfway through writing its checkpoint or its metrics row."""
    import ltnas.train.loop as loop
    from ltnas.atomic import atomic_file

    real_append = JsonlLog.append
    seen = {"checkpoint": 0, "log": 0}

    def save(obj, path):
        if Path(path).name == "checkpoint.pt":
            seen["checkpoint"] += 1
            if where == "checkpoint" and seen["checkpoint"] == 2:
                with atomic_file(path) as handle:
                    handle.write(b"half a checkpoint")
                    raise OSError(errno.ENOSPC, "No space left on device")
        atomic_save(obj, path)

    def append(log, row):
        if log.path.name == "metrics.jsonl":
            seen["log"] += 1
            if where == "log" and seen["log"] == 2:
                with log.path.open("a") as handle:
                    handle.write(json.dumps(row)[:9])
                raise OSError(errno.ENOSPC, "No space left on device", str(log.path))
        real_append(log, row)

    monkeypatch.setattr(loop, "atomic_save", save)
    monkeypatch.setattr(JsonlLog, "append", append)


@pytest.mark.parametrize("where", ["checkpoint", "log"])
def test_disk_full_is_one_line_and_resume_continues(tmp_path, tiny, capsys, monkeypatch, where):
    folder = tmp_path / "run"
    _disk_full_in_epoch_2(monkeypatch, where)
    line = user_error(capsys, ["search", tiny, "--out", str(folder)], "no space left", "intact",
                      f"`ltnas search --resume {folder}`")
    assert "checkpoint" in line
    assert torch.load(folder / "search" / "checkpoint.pt", weights_only=False)["epoch"] == 1
    assert not list(folder.rglob("*.tmp"))
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["search", "--resume", str(folder)]) == 0
    err = capsys.readouterr().err
    if where == "log":  # the torn row: a warning, then gone
        assert "ltnas: warning:" in err and "line 2" in err
    assert "Traceback" not in err
    assert [row["epoch"] for row in JsonlLog(folder / "search" / "metrics.jsonl").rows()] == [1, 2]


def test_disk_full_inside_torch_save_keeps_the_old_file(tmp_path, monkeypatch):
    """torch.save reports a failed write as RuntimeError; atomic_save turns it into DiskFull."""
    import ltnas.atomic as atomic

    path = tmp_path / "checkpoint.pt"
    atomic_save({"epoch": 1}, path)
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(DiskFull, match="no space left"):
        atomic_save({"w": torch.zeros(100_000)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def _read_only(monkeypatch, folder: Path) -> None:
    """Writes into `folder` fail as on a read-only file system (the tests run as root, whom chmod
    does not stop): the lock file, atomic files and plain writes alike."""
    import tempfile

    def refuse(path):
        if str(path).startswith(str(folder)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    real_open, real_mkstemp, real_write_text = os.open, tempfile.mkstemp, pathlib.Path.write_text

    def open_(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def mkstemp(*args, dir=None, **kwargs):
        refuse(Path(dir) / "x")
        return real_mkstemp(*args, dir=dir, **kwargs)

    def write_text(self, *args, **kwargs):
        refuse(self)
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(pathlib.Path, "write_text", write_text)


@pytest.mark.parametrize("argv", [["report"], ["eval"], ["run", "--resume"]])
def test_read_only_run_folder_is_one_line(finished, tmp_path, capsys, monkeypatch, argv):
    folder = copy_of(finished, tmp_path)
    before = snapshot(folder)
    _read_only(monkeypatch, folder)
    user_error(capsys, [*argv, str(folder)], str(folder), "Read-only file system", "writable")
    monkeypatch.undo()
    assert {k: v for k, v in snapshot(folder).items() if not k.startswith("plots/")} == \
        {k: v for k, v in before.items() if not k.startswith("plots/")}


@pytest.mark.parametrize("argv", [["report"], ["eval"], ["run", "--resume"]])
def test_read_only_run_folder_chmod(finished, tmp_path, capsys, argv):
    if os.geteuid() == 0:
        pytest.skip("running as root: a 0o555 folder is still writable (see the simulated test)")
    folder = copy_of(finished, tmp_path)
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
    for path in modes:
        path.chmod(0o555)
    try:
        user_error(capsys, [*argv, str(folder)], str(folder), "writable")
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def test_non_utf8_config_and_genotype_files(tmp_path, tiny, capsys):
    config = tmp_path / "latin1.yaml"
    config.write_bytes(yaml.safe_dump(TINY_RUN).encode() + b"# caf\xe9\n")
    user_error(capsys, ["run", str(config), "--out", str(tmp_path / "a")], str(config), "UTF-8")
    genotype = tmp_path / "g.json"
    genotype.write_bytes(b'{"name": "caf\xe9"}')
    user_error(capsys, ["train", tiny, "--genotype", str(genotype), "--out", str(tmp_path / "b")],
               str(genotype), "UTF-8")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ---------------------------------------------------------------- 3. input that must be refused


def test_profile_leaving_a_class_empty_is_refused(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    user_error(capsys, ["run", tiny, "--set", "data.ratio=1000000", "--out", str(out)],
               "without a training image", "[40, 0, 0, 0]", "data.ratio")
    assert not out.exists()


def test_image_folder_with_one_class_is_refused(tmp_path, tiny, capsys):
    from PIL import Image

    (tmp_path / "images" / "cat").mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / "images" / "cat" / f"{i}.png")
    out = tmp_path / "run"
    user_error(capsys, ["run", tiny, "--set", "data.source=folder", "--set", f"data.root={tmp_path / 'images'}",
                        "--set", "data.profile=none", "--out", str(out)], "single class", "at least two")
    assert not out.exists()


def test_genotype_edge_from_a_node_without_inputs_is_refused(tmp_path, tiny, capsys):
    cell = [["sep_conv_3x3", 2, 0], ["sep_conv_3x3", 2, 1], ["skip_connect", 4, 3], ["sep_conv_3x3", 4, 2]]
    genotype = tmp_path / "g.json"
    genotype.write_text(json.dumps({"normal": cell, "normal_concat": [2, 4], "reduce": cell, "reduce_concat": [2, 4]}))
    user_error(capsys, ["train", tiny, "--genotype", str(genotype), "--out", str(tmp_path / "run")],
               "['skip_connect', 4, 3]", "node 3", "no input")
    assert not (tmp_path / "run").exists()


def test_published_genotype_with_such_an_edge_still_loads(tmp_path):
    from ltnas.space import load_genotype, published_genotypes

    fair_c = published_genotypes()["FairDARTS_c"]  # its normal cell has an edge from the empty node 3
    fair_c.to_json(tmp_path / "c.json")
    assert load_genotype(tmp_path / "c.json") == fair_c


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n"])
def test_empty_config_is_refused(tmp_path, capsys, text):
    config = tmp_path / "empty.yaml"
    config.write_text(text)
    user_error(capsys, ["run", str(config), "--out", str(tmp_path / "run")], "is empty")
    assert not (tmp_path / "run").exists()


def test_drw_epoch_beyond_the_epochs_is_warned(tmp_path, tiny, capsys, monkeypatch):
    import ltnas.pipeline as pipeline

    def stop(config, run):  # the warning comes when the run folder is made; no need to search
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "search_only", stop)
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["search", tiny, "--set", "search.epochs=1", "--set", "search.longtail.reweight=drw",
                 "--set", "search.longtail.drw_epoch=1", "--out", str(out)]) == 130
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ltnas: warning:")]
    assert len(warnings) == 1 and "search.longtail.drw_epoch=1" in warnings[0] and "never re-weights" in warnings[0]


def test_drw_warnings_only_for_sections_in_use():
    raw = json.loads(json.dumps(TINY_RUN))
    raw["train"]["longtail"] = {"reweight": "drw", "drw_epoch": 2}  # train.epochs is 2
    raw["supernet"] = {"longtail": {"reweight": "drw", "drw_epoch": 99}}  # not an imbnas run
    (message,) = drw_warnings(validate_config(raw))
    assert message.startswith("train.longtail.drw_epoch=2 is not below train.epochs=2")
    raw["train"]["longtail"]["drw_epoch"] = 1
    assert drw_warnings(validate_config(raw)) == []


@pytest.mark.parametrize("seed", ["-3", str(2**70), str(MAX_SEED + 1)])
def test_bad_seed_is_refused_before_anything_is_created(tmp_path, tiny, capsys, seed):
    out = tmp_path / "run"
    user_error(capsys, ["run", tiny, "--seed", seed, "--out", str(out)], "seed", f"0..{MAX_SEED}")
    assert not out.exists()


def test_bad_compare_seeds_are_refused_before_anything_is_created(tmp_path, tiny, capsys):
    out = tmp_path / "cmp"
    user_error(capsys, ["compare", tiny, "--methods", "darts", "--seeds=-1,2", "--out", str(out)], "seed",
               f"0..{MAX_SEED}")
    assert not out.exists()


def test_largest_seed_is_accepted():
    assert validate_config({"seed": MAX_SEED}).seed == MAX_SEED


@pytest.mark.parametrize("name", ["../../x", "a/b", "line\nbreak", "..", "back\\slash"])
def test_names_that_are_not_a_folder_name_are_refused(tmp_path, tiny, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    user_error(capsys, ["run", tiny, "--set", f"name={json.dumps(name)}"], "name", "plain folder name")
    assert list(tmp_path.iterdir()) == []


def test_eval_of_a_folder_holding_only_a_config_writes_nothing(tmp_path, tiny, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(tiny, folder / "config.yaml")
    user_error(capsys, ["eval", str(folder)], str(folder), "nothing to evaluate", f"--resume {folder}")
    assert [p.name for p in folder.iterdir()] == ["config.yaml"]


# ---------------------------------------------------------------- 4. words


def test_a_bad_override_is_blamed_on_its_own_key(tmp_path, tiny, capsys):
    line = user_error(capsys, ["run", tiny, "--set", "data.ratio=null", "--set", "data.factor=2",
                               "--out", str(tmp_path / "run")], "--set data.factor", "(0, 1]")
    assert "data.ratio" not in line


def test_ctrl_c_names_the_real_folder(tmp_path, tiny, capsys, monkeypatch):
    import ltnas.stages.standard as standard

    def interrupted(ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(standard, "search", interrupted)
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["run", tiny, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"`ltnas run --resume {out}`" in err and "RUN_DIR" not in err


def test_divergence_says_what_works(tmp_path, tiny, capsys, monkeypatch):
    from ltnas.search.task import SearchTask

    monkeypatch.setattr(SearchTask, "run_epoch", lambda self, epoch, on_step: {"loss": float("nan")})
    out = tmp_path / "run"
    line = user_error(capsys, ["search", tiny, "--out", str(out)], "diverged at epoch 1",
                      "a resume would diverge again", "lower search.sgd.lr", "new --out")
    assert "kept" not in line  # at epoch 1 there is no good epoch to keep
    assert not out.exists()  # nothing was learnt: the new folder goes, so the same --out works again


def test_one_file_mode_for_everything_a_run_writes(finished):
    for name in ("config.yaml", "data.json", "eval.json", "report.md", "train/checkpoint.pt", "train/model.pt",
                 "search/genotype.json", "search/metrics.jsonl"):
        assert (finished / name).stat().st_mode & 0o777 == 0o644, name


def test_atomic_files_follow_the_umask(tmp_path):
    mask = os.umask(0o027)
    try:
        atomic_write_text("x", tmp_path / "a.txt")
        atomic_save({"x": 1}, tmp_path / "b.pt")
    finally:
        os.umask(mask)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {"a.txt": 0o640, "b.pt": 0o640}
