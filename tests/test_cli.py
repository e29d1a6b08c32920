"""The `ltnas` command line, end to end on the tiny synthetic run, and its one-line user errors.

Contract: a problem the user can fix prints exactly one line `ltnas: error: ...` on stderr (what is
wrong and how to fix it), exits with code 2, prints no traceback and leaves nothing half-made: a new
run folder that failed before any stage ran is removed, an existing run folder is never overwritten.

The CLI is called in-process through `ltnas.cli.main` (fast); two subprocess calls prove the exit
code and the missing traceback for real. Completed runs are shared per module to keep this quick.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY_RUN
from test_data import make_cifar10

from ltnas.cli import main
from ltnas.space import published_genotypes

NUM_CLASSES = TINY_RUN["data"]["num_classes"]
TEST_SIZE = NUM_CLASSES * TINY_RUN["data"]["test_per_class"]  # balanced test set
EPOCHS = TINY_RUN["search"]["epochs"]
assert EPOCHS == TINY_RUN["train"]["epochs"] == 2  # the file names below (epoch_002.json) rely on it


# ---------------------------------------------------------------- helpers


def call(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in-process; (exit code, stdout, stderr). For module-scoped fixtures (no capsys)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def user_error(capsys, argv: list[str], *words: str) -> str:
    """Assert the one-line user-error contract for `ltnas ARGV`; return the message."""
    capsys.readouterr()  # drop anything printed before
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, f"exit code {code}; stderr: {err!r}"
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    line = lines[0]
    assert line.startswith("ltnas: error: ") and line.strip() != "ltnas: error:"
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    return line


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def squeeze(text: str) -> str:
    """Text without whitespace: rich may wrap a long run-folder path at the terminal width."""
    return "".join(text.split())


def assert_metrics(metrics: dict, size: int) -> None:
    for key in ("overall", "balanced", "many", "medium", "few"):
        assert key in metrics
    assert 0 <= metrics["overall"] <= 1 and 0 <= metrics["balanced"] <= 1
    assert len(metrics["per_class"]) == NUM_CLASSES
    confusion = metrics["confusion"]
    assert len(confusion) == NUM_CLASSES and all(len(row) == NUM_CLASSES for row in confusion)
    assert sum(map(sum, confusion)) == size


# ---------------------------------------------------------------- shared runs


@pytest.fixture
def full_run(finished_tiny_run):
    """`ltnas run TINY --out DIR` (conftest's shared run, not to be changed): (folder, exit code, stdout,
    eval.json as first written)."""
    return finished_tiny_run


@pytest.fixture(scope="module")
def search_run(tmp_path_factory, tiny_yaml):
    """`ltnas search TINY --set search.epochs=1 --seed 3 --device cpu --out DIR`: (folder, exit code, stdout)."""
    folder = tmp_path_factory.mktemp("search") / "run"
    code, out, err = call(["search", str(tiny_yaml), "--set", "search.epochs=1", "--seed", "3", "--device", "cpu",
                           "--out", str(folder)])
    assert code == 0, err
    return folder, code, out


@pytest.fixture(scope="module")
def file_train_run(tmp_path_factory, tiny_yaml, search_run):
    """`ltnas train TINY --genotype genotype.json --set train.epochs=1 --out DIR`, run inside the search
    folder of `search_run`, so that the genotype file is given by a relative path: (folder, stdout)."""
    folder = tmp_path_factory.mktemp("file_train") / "run"
    cwd = os.getcwd()
    os.chdir(search_run[0] / "search")
    try:
        code, out, err = call(["train", str(tiny_yaml), "--genotype", "genotype.json", "--set", "train.epochs=1",
                               "--out", str(folder)])
    finally:
        os.chdir(cwd)
    assert code == 0, err
    return folder, out


@pytest.fixture
def tiny(tiny_yaml) -> str:
    return str(tiny_yaml)


# ---------------------------------------------------------------- 1. ltnas run / eval / report


def test_run_writes_the_whole_run_folder(full_run):
    folder, code, out, evaluation = full_run
    assert code == 0
    for name in ("config.yaml", "data.json", "eval.json", "report.md"):
        assert (folder / name).is_file(), name
    for name in ("metrics.jsonl", "alpha.jsonl", "genotype.json", "checkpoint.pt", f"genotypes/epoch_{EPOCHS:03d}.json"):
        assert (folder / "search" / name).is_file(), name
    for name in ("metrics.jsonl", "model.pt", "checkpoint.pt", "genotype.json"):
        assert (folder / "train" / name).is_file(), name
    assert list((folder / "plots").glob("*.png"))
    assert yaml.safe_load((folder / "config.yaml").read_text())["name"] == "tiny"
    # one row per epoch
    assert [row["epoch"] for row in jsonl_rows(folder / "search" / "metrics.jsonl")] == [1, 2]
    assert [row["epoch"] for row in jsonl_rows(folder / "search" / "alpha.jsonl")] == [1, 2]
    assert [row["epoch"] for row in jsonl_rows(folder / "train" / "metrics.jsonl")] == [1, 2]
    # the searched cell is the one retrained
    searched = json.loads((folder / "search" / "genotype.json").read_text())
    trained = json.loads((folder / "train" / "genotype.json").read_text())
    assert {k: v for k, v in searched.items() if k != "name"} == {k: v for k, v in trained.items() if k != "name"}


def test_run_eval_json_metrics(full_run):
    folder, _, _, evaluation = full_run
    data = json.loads((folder / "data.json").read_text())
    assert_metrics(evaluation["balanced_test"], TEST_SIZE)
    assert_metrics(evaluation["longtail_test"], sum(data["longtail_test_counts"]))
    assert evaluation["params"] > 0
    assert evaluation["seconds"]["search"] > 0 and evaluation["seconds"]["train"] > 0


def test_run_prints_summary_and_folder(full_run):
    folder, _, out, evaluation = full_run
    assert "ltnas run summary" in out
    assert "Balanced test: balanced" in out
    balanced = f"{100 * evaluation['balanced_test']['balanced']:.2f}%"
    assert balanced in out
    assert f"Runfolder:{folder}" in squeeze(out)


def test_eval_and_report_rewrite(full_run, capsys, tmp_path):
    folder, _, _, before = full_run
    folder = Path(shutil.copytree(folder, tmp_path / "run"))  # the shared run stays as it finished
    (folder / "eval.json").unlink()
    assert main(["eval", str(folder)]) == 0
    out, err = capsys.readouterr()
    after = json.loads((folder / "eval.json").read_text())
    assert after["balanced_test"]["balanced"] == before["balanced_test"]["balanced"]
    assert after["balanced_test"]["confusion"] == before["balanced_test"]["confusion"]
    assert "ltnas run summary" in out and f"Runfolder:{folder}" in squeeze(out)
    assert "Traceback" not in err

    (folder / "report.md").unlink()
    assert main(["report", str(folder)]) == 0
    capsys.readouterr()
    report = (folder / "report.md").read_text()
    assert report.startswith("# Run report: tiny")


# ---------------------------------------------------------------- 2. search, train


def test_search_writes_only_the_search(search_run):
    folder, code, out = search_run
    assert code == 0
    assert (folder / "search" / "genotype.json").is_file()
    assert (folder / "search" / "checkpoint.pt").is_file()
    assert not (folder / "train").exists()
    assert not (folder / "eval.json").exists()
    assert "normal:" in out and "reduce:" in out  # the genotype, described
    assert str(folder / "search" / "genotype.json") in squeeze(out)


def test_train_published_genotype(tmp_path, tiny, capsys):
    folder = tmp_path / "darts"
    assert main(["train", tiny, "--genotype", "DARTS_V2", "--set", "train.epochs=1", "--out", str(folder)]) == 0
    out, _ = capsys.readouterr()
    trained = json.loads((folder / "train" / "genotype.json").read_text())
    assert trained == published_genotypes()["DARTS_V2"].to_dict()
    assert (folder / "train" / "model.pt").is_file()
    assert not (folder / "search").exists()
    evaluation = json.loads((folder / "eval.json").read_text())
    assert evaluation["genotype"] == "DARTS_V2"
    assert_metrics(evaluation["balanced_test"], TEST_SIZE)
    assert (folder / "report.md").is_file()
    assert "DARTS_V2" in out and f"Runfolder:{folder}" in squeeze(out)


def test_train_genotype_file(file_train_run, search_run):
    folder = file_train_run[0]
    searched = search_run[0] / "search" / "genotype.json"
    expected = {k: v for k, v in json.loads(searched.read_text()).items() if k != "name"}
    trained = {k: v for k, v in json.loads((folder / "train" / "genotype.json").read_text()).items() if k != "name"}
    assert trained == expected
    assert (folder / "train" / "model.pt").is_file()
    assert (folder / "eval.json").is_file() and not (folder / "search").exists()


def test_train_resume_from_another_folder(file_train_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--resume", str(file_train_run[0])])
    _, err = capsys.readouterr()
    assert code == 0, err


# ---------------------------------------------------------------- 3. --set, --seed, --device


def test_overrides_seed_and_device(search_run, file_train_run):
    # search_run: --set search.epochs=1 --seed 3 --device cpu; file_train_run: --set train.epochs=1
    search_folder, train_folder = search_run[0], file_train_run[0]
    assert len(jsonl_rows(search_folder / "search" / "metrics.jsonl")) == 1
    assert len(jsonl_rows(search_folder / "search" / "alpha.jsonl")) == 1
    assert len(jsonl_rows(train_folder / "train" / "metrics.jsonl")) == 1
    config = yaml.safe_load((search_folder / "config.yaml").read_text())
    assert config["seed"] == 3 and config["device"] == "cpu" and config["search"]["epochs"] == 1
    config = yaml.safe_load((train_folder / "config.yaml").read_text())
    assert config["train"]["epochs"] == 1 and config["seed"] == TINY_RUN["seed"]
    assert config["search"]["epochs"] == EPOCHS  # only what was --set changes


# ---------------------------------------------------------------- 4. listings


def test_genotypes_and_configs_listings(capsys):
    assert main(["genotypes"]) == 0
    out, _ = capsys.readouterr()
    names = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert "DARTS_V2" in names and "FairDARTS_a" in names
    assert main(["configs"]) == 0
    out, _ = capsys.readouterr()
    assert "quickstart" in [line.split()[0] for line in out.splitlines() if line.strip()]


# ---------------------------------------------------------------- 5. user errors


def test_missing_cifar_folder_removes_the_new_run_folder(tmp_path, tiny, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "run"
    line = user_error(capsys, ["run", tiny, "--set", "data.source=cifar10", "--set", f"data.root={empty}",
                               "--out", str(out)], "CIFAR-10 not found", str(empty), "data.download=true")
    assert "cifar-10-batches-py" in line
    assert not out.exists()


def test_corrupt_cifar_file_removes_the_new_run_folder(tmp_path, tiny, capsys):
    root = tmp_path / "cifar"
    folder = make_cifar10(root)
    (folder / "data_batch_1").write_bytes(b"\x00garbage\xff" * 10)
    out = tmp_path / "run"
    user_error(capsys, ["run", tiny, "--set", "data.source=cifar10", "--set", f"data.root={root}", "--out", str(out)],
               "corrupt", str(folder / "data_batch_1"), "download")
    assert not out.exists()


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["data.source=imagenet"], ["unknown dataset 'imagenet'", "cifar10", "synthetic"]),
        (["search.cell.primitives=[none,conv_9x9]"], ["unknown primitive 'conv_9x9'", "sep_conv_3x3"]),
        (["search.epoch=3"], ["unknown config key 'search.epoch'", "did you mean 'epochs'"]),
        (["bogus=3"], ["unknown config key 'bogus'", "search"]),
        (["data.ratio=0.5"], ["ratio must be >= 1", "0.5", "factor"]),
        (["data.ratio=null", "data.factor=0"], ["factor must be in (0, 1]", "ratio"]),
        (["data.factor=0.1"], ["ratio or as factor, not both"]),  # the tiny config already has a ratio
        (["search.epochs=abc"], ["search.epochs"]),
        (["train.augment.cutt=2"], ["unknown config key 'train.augment.cutt'", "did you mean 'cutout'"]),
    ],
    ids=["dataset", "primitive", "key-typo", "top-level-key", "ratio<1", "factor<=0", "ratio+factor",
         "not-an-int", "nested-key-typo"],
)
def test_bad_config_values(tmp_path, tiny, capsys, overrides, words):
    out = tmp_path / "run"
    argv = ["run", tiny, "--out", str(out)]
    for item in overrides:
        argv += ["--set", item]
    user_error(capsys, argv, *words)
    assert not out.exists()


def test_bad_set_value_is_attributed_to_set(tmp_path, tiny, capsys):
    line = user_error(capsys, ["run", tiny, "--set", "data.source=imagenet", "--out", str(tmp_path / "run")],
                      "imagenet")
    assert "--set" in line


def test_unknown_genotype_name(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    user_error(capsys, ["train", tiny, "--genotype", "NOPE", "--out", str(out)],
               "unknown genotype 'NOPE'", "DARTS_V2", "genotype.json")
    assert not out.exists()


def test_train_without_genotype(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    user_error(capsys, ["train", tiny, "--out", str(out)], "no genotype to train", "--genotype")
    assert not out.exists()


def _genotype_file(path: Path, cell_edit) -> Path:
    genotype = published_genotypes()["DARTS_V2"].to_dict()
    genotype.pop("name")
    cell_edit(genotype)
    path.write_text(json.dumps(genotype))
    return path


def test_genotype_file_edge_from_missing_node(tmp_path, tiny, capsys):
    def edit(genotype):
        genotype["normal"][0] = ["sep_conv_3x3", 2, 5]

    path = _genotype_file(tmp_path / "missing_node.json", edit)
    out = tmp_path / "run"
    user_error(capsys, ["train", tiny, "--genotype", str(path), "--out", str(out)],
               "normal cell", "['sep_conv_3x3', 2, 5]", "node 5", "earlier node")
    assert not out.exists()


def test_genotype_file_unknown_op(tmp_path, tiny, capsys):
    def edit(genotype):
        genotype["reduce"][1][0] = "conv_9x9"

    path = _genotype_file(tmp_path / "bad_op.json", edit)
    out = tmp_path / "run"
    user_error(capsys, ["train", tiny, "--genotype", str(path), "--out", str(out)],
               "reduce cell", "unknown operation 'conv_9x9'", "sep_conv_3x3")
    assert not out.exists()


def test_genotype_file_not_json(tmp_path, tiny, capsys):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    user_error(capsys, ["train", tiny, "--genotype", str(path), "--out", str(tmp_path / "run")],
               str(path), "genotype JSON")
    assert not (tmp_path / "run").exists()


def test_config_file_missing(tmp_path, capsys):
    missing = tmp_path / "nothere.yaml"
    user_error(capsys, ["run", str(missing), "--out", str(tmp_path / "run")], str(missing), "not found", "quickstart")
    assert not (tmp_path / "run").exists()


def test_config_file_invalid_yaml(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ndata: [\n  source: digits\n")
    user_error(capsys, ["run", str(path), "--out", str(tmp_path / "run")], str(path), "not valid YAML", "line")
    assert not (tmp_path / "run").exists()


def test_config_file_not_a_mapping(tmp_path, capsys):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    user_error(capsys, ["run", str(path), "--out", str(tmp_path / "run")], str(path), "mapping")


def test_no_config_given(tmp_path, capsys):
    user_error(capsys, ["run", "--out", str(tmp_path / "run")], "no config given", "CONFIG")


def test_set_without_equals(tmp_path, tiny, capsys):
    user_error(capsys, ["run", tiny, "--set", "search.epochs", "--out", str(tmp_path / "run")],
               "'search.epochs'", "key=value", "--set search.epochs=3")
    assert not (tmp_path / "run").exists()


def test_set_into_a_value_that_is_not_a_section(tmp_path, tiny, capsys):
    user_error(capsys, ["run", tiny, "--set", "seed.x=1", "--out", str(tmp_path / "run")], "seed is not a section")


def test_unwritable_output_folder_under_a_file(tmp_path, tiny, capsys):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("not a folder\n")
    user_error(capsys, ["run", tiny, "--out", str(blocker / "run")], "cannot write", str(blocker / "run"), "--out")
    assert blocker.read_text() == "not a folder\n"


def test_unwritable_output_folder_read_only_parent(tmp_path, tiny, capsys):
    parent = tmp_path / "read_only"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        if os.access(parent, os.W_OK):
            pytest.skip("running as root: a 0o500 folder is still writable")
        user_error(capsys, ["run", tiny, "--out", str(parent / "run")], "cannot write", "writable --out")
        assert not (parent / "run").exists()
    finally:
        parent.chmod(0o700)


@pytest.mark.parametrize("kind", ["empty-dir", "missing"])
def test_resume_of_a_folder_without_a_run(tmp_path, capsys, kind):
    folder = tmp_path / "nothing"
    if kind == "empty-dir":
        folder.mkdir()
    user_error(capsys, ["run", "--resume", str(folder)], str(folder), "holds no ltnas run", "ltnas run CONFIG")
    assert folder.exists() == (kind == "empty-dir")
    if kind == "empty-dir":
        assert not any(folder.iterdir())


@pytest.mark.parametrize(
    "extra",
    [["CONFIG"], ["--set", "search.epochs=1"], ["CONFIG", "--set", "train.epochs=1"]],
    ids=["config", "set", "config+set"],
)
def test_resume_refuses_config_and_set(full_run, tiny, capsys, extra):
    folder = full_run[0]
    before = snapshot(folder)
    argv = ["run", *[tiny if item == "CONFIG" else item for item in extra], "--resume", str(folder)]
    named = [flag for flag in ("CONFIG", "--set") if flag in extra]  # the message names what to drop
    user_error(capsys, argv, "--resume", "saved config", *named)
    assert snapshot(folder) == before


def test_resume_refuses_genotype(full_run, capsys):
    folder = full_run[0]
    before = snapshot(folder)
    user_error(capsys, ["train", "--genotype", "DARTS_V2", "--resume", str(folder)], "--genotype")
    assert snapshot(folder) == before


def _resumed_anyway(config, run):
    raise AssertionError(f"the run in {run.path} was resumed instead of the option being refused")


def test_resume_refuses_seed(full_run, capsys, monkeypatch):
    monkeypatch.setattr("ltnas.pipeline.run_all", _resumed_anyway)
    user_error(capsys, ["run", "--resume", str(full_run[0]), "--seed", "5"], "--resume", "--seed")


def test_resume_refuses_out(full_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ltnas.pipeline.run_all", _resumed_anyway)
    user_error(capsys, ["run", "--resume", str(full_run[0]), "--out", str(tmp_path / "elsewhere")], "--out")


@pytest.mark.parametrize("command", ["run", "search", "train"])
def test_existing_run_folder_is_never_overwritten(full_run, tiny, capsys, command):
    folder = full_run[0]
    before = snapshot(folder)
    argv = [command, tiny, "--out", str(folder)] + (["--genotype", "DARTS_V2"] if command == "train" else [])
    user_error(capsys, argv, str(folder), "already exists", f"--resume {folder}", "another --out")
    assert snapshot(folder) == before


def test_existing_non_empty_foreign_folder_is_never_overwritten(tmp_path, tiny, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n")
    user_error(capsys, ["run", tiny, "--out", str(folder)], "already exists", "--resume")
    assert snapshot(folder) == {"notes.txt": b"keep me\n"}


def test_out_that_is_a_regular_file_is_never_overwritten(tmp_path, tiny, capsys):
    path = tmp_path / "results.txt"
    path.write_text("keep me\n")
    user_error(capsys, ["run", tiny, "--out", str(path)], str(path), "is a file", "another --out")
    assert path.read_text() == "keep me\n"


def test_out_that_is_a_regular_file_gets_no_resume_advice(tmp_path, tiny, capsys):
    path = tmp_path / "results.txt"
    path.write_text("keep me\n")
    line = user_error(capsys, ["run", tiny, "--out", str(path)], str(path))
    assert "--resume" not in line


def test_failed_run_keeps_a_preexisting_empty_out_folder(tmp_path, tiny, capsys):
    folder = tmp_path / "made_by_user"
    folder.mkdir()
    user_error(capsys, ["run", tiny, "--set", "data.source=cifar10", "--set", f"data.root={tmp_path / 'none'}",
                        "--out", str(folder)], "CIFAR-10 not found")
    assert folder.is_dir()


def test_failed_run_leaves_no_new_parent_folders(tmp_path, tiny, capsys):
    user_error(capsys, ["run", tiny, "--set", "data.source=cifar10", "--set", f"data.root={tmp_path / 'none'}",
                        "--out", str(tmp_path / "a" / "b" / "run")], "CIFAR-10 not found")
    assert not (tmp_path / "a").exists()


def test_eval_without_a_trained_model(search_run, capsys):
    folder = search_run[0]
    before = snapshot(folder)
    user_error(capsys, ["eval", str(folder)], str(folder), "no trained model", f"--resume {folder}", "ltnas train")
    assert snapshot(folder) == before


@pytest.mark.parametrize("command", ["eval", "report"])
def test_eval_and_report_of_a_folder_without_a_run(tmp_path, capsys, command):
    user_error(capsys, [command, str(tmp_path / "nowhere")], "holds no ltnas run", "ltnas run CONFIG")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    ("device", "words"),
    [("tpu", ["unknown device 'tpu'", "cpu"]), ("cuda", ["'cuda'", "no CUDA", "--device cpu"])],
)
def test_bad_device(tmp_path, tiny, capsys, device, words):
    if device == "cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    out = tmp_path / "run"
    user_error(capsys, ["run", tiny, "--device", device, "--out", str(out)], *words)
    assert not out.exists()


def test_bad_device_for_eval(full_run, capsys):
    folder = full_run[0]
    before = snapshot(folder)
    user_error(capsys, ["eval", str(folder), "--device", "tpu"], "unknown device 'tpu'")
    assert snapshot(folder) == before


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["frobnicate"], ["invalid choice: 'frobnicate'", "--help"]),
        ([], ["required", "command", "--help"]),
        (["eval"], ["required", "run_dir", "ltnas eval --help"]),
        (["report"], ["required", "run_dir"]),
        (["run", "CONFIG", "--seed", "abc"], ["--seed", "'abc'", "ltnas run --help"]),
        (["run", "CONFIG", "--bogus"], ["unrecognized arguments: --bogus", "--help"]),
    ],
    ids=["unknown-command", "no-command", "eval-no-dir", "report-no-dir", "bad-seed", "unknown-option"],
)
def test_argparse_errors_are_one_line(tiny, capsys, argv, words):
    user_error(capsys, [tiny if item == "CONFIG" else item for item in argv], *words)


# ---------------------------------------------------------------- 6. for real, in a subprocess


def _ltnas(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "ltnas", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_subprocess_missing_config(tmp_path):
    result = _ltnas(["run", "missing.yaml", "--out", "run"], tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ltnas: error: ") and "missing.yaml" in lines[0]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_commands_that_build_nothing_answer_without_importing_torch(tmp_path):
    """`--help`, `configs`, `config show` and a config that cannot run answer in a fraction of a second: torch
    (~1.5 s to import) is loaded only by the commands that need a device, a network or a run folder."""
    code = ("import sys\n"
            "from ltnas.cli import main\n"
            "codes = [main(['configs']), main(['config', 'show', 'quickstart']), main(['run', 'missing.yaml']),\n"
            "         main(['search', 'quickstart', '--set', 'search.epochs=0']), main(['quickstart', '--jobs', '0'])]\n"
            "try:\n"
            "    main(['--help'])\n"
            "except SystemExit as stop:\n"
            "    codes.append(stop.code)\n"
            "print(codes, 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "ignore"},
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines()[-1] == "[0, 0, 2, 2, 2, 0] False", result.stderr


def test_subprocess_missing_cifar(tmp_path, tiny):
    # Goes through torch, the run folder and the data layer: still one line, exit 2, nothing left behind.
    result = _ltnas(["run", tiny, "--set", "data.source=cifar10", "--set", "data.root=nowhere", "--out", "run"],
                    tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ltnas: error: CIFAR-10 not found")
    assert list(tmp_path.iterdir()) == []
