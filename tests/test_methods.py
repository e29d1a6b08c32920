"""The method table (ltnas.methods), the config layout that moves with it, and `ltnas config show`."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import TINY_RUN

from ltnas import pipeline
from ltnas.cli import main
from ltnas.compare import spec_from_methods
from ltnas.config import MOVED_KEYS, RunConfig, load_config, migrate_layout, validate_config
from ltnas.errors import LtnasError
from ltnas.methods import METHODS, method, quickstart_methods, resolve
from ltnas.runs import RunFolder, saved_yaml

OLD_CONFIG = Path(__file__).parent / "data" / "config_saved_before_method_sections.yaml"


def test_every_method_entry_resolves_to_its_stages_and_strategy():
    for entry in METHODS.values():
        for target in (entry.run, entry.search, entry.evaluate, *([entry.network] if entry.network else [])):
            assert callable(resolve(target)), target
        for _, target in entry.report_sections:
            assert callable(resolve(target)), target
        if entry.strategy:
            assert callable(entry.strategy_class().network_options)
        assert RunConfig.model_validate({"search": {"method": entry.name}}).search.method == entry.name
    assert quickstart_methods() == ["darts", "fairdarts", "ssf", "cnn", "resnet32", "darts_v2"]
    with pytest.raises(LtnasError, match="unknown search method 'enas'; choose from darts, fairdarts"):
        method("enas")


def test_method_defaults_come_from_the_table_and_a_set_key_wins():
    config = RunConfig.model_validate({"search": {"method": "fairdarts", "lr": 0.1}})
    defaults = METHODS["fairdarts"].search_defaults
    assert (config.search.lr, config.search.arch_lr, config.search.derive) == (0.1, defaults["arch_lr"], "threshold")
    assert RunConfig().search.lr == 0.025  # darts: no method defaults


def test_compare_names_variants_by_the_table(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_RUN))
    spec = spec_from_methods(path, ["ssf", "bbn"], [0])
    assert list(spec.variants) == [METHODS["ssf"].title, METHODS["bbn"].title] == ["SSF-NAS", "BBN-HLS"]


def test_saved_config_keeps_the_sections_its_method_reads():
    for name, entry in METHODS.items():
        saved = yaml.safe_load(saved_yaml(validate_config({"search": {"method": name}})))
        assert ("fairdarts" in saved["search"]) == ("search.fairdarts" in entry.sections)
        assert ("bbn" in saved["search"]) == (name == "bbn")
        assert ("supernet" in saved) == (name == "imbnas")


# --- moved keys: configs and run folders written before -------------------------------------------------
def test_moved_keys_are_read_at_their_new_place():
    raw = {"search": {"method": "fairdarts", "zero_one_weight": 3.0}}
    assert migrate_layout(raw) == {"search": {"method": "fairdarts", "fairdarts": {"zero_one_weight": 3.0}}}
    assert raw == {"search": {"method": "fairdarts", "zero_one_weight": 3.0}}  # the input is left alone
    assert validate_config(raw).search.fairdarts.zero_one_weight == 3.0
    assert load_config(None, ["search.zero_one_kind=l1"]).search.fairdarts.zero_one_kind == "l1"
    with pytest.raises(LtnasError, match="keep search.fairdarts.zero_one_weight only"):
        validate_config({"search": {"zero_one_weight": 3.0, "fairdarts": {"zero_one_weight": 4.0}}})
    assert all(old != new for old, new in MOVED_KEYS)


def test_a_run_folder_saved_in_the_old_layout_resumes_evaluates_and_reports(tmp_path, capsys):
    """config.yaml as ltnas wrote it before `search.fairdarts` existed (tests/data, made by that code):
    the run resumes from its search into retraining, evaluates and reports with the values it saved."""
    old = yaml.safe_load(OLD_CONFIG.read_text())
    assert old["search"]["zero_one_weight"] == 5.0 and "fairdarts" not in old["search"]
    raw = copy.deepcopy(TINY_RUN)
    raw["search"].update(method="fairdarts", epochs=1, derive="darts",
                         fairdarts={"zero_one_weight": 5.0, "zero_one_kind": "l1"})
    raw["train"].update(epochs=1)
    config = validate_config(raw)
    run = RunFolder.create(tmp_path / "run", config)
    pipeline.search_only(config, run)  # the search, then "killed"
    shutil.copy(OLD_CONFIG, run.config_file)

    reread = RunFolder.open(run.path).config()
    assert reread.search.fairdarts.zero_one_weight == 5.0 and reread.search.fairdarts.zero_one_kind == "l1"
    assert reread.model_dump() == config.model_dump() | {"version": reread.version}
    assert main(["run", "--resume", str(run.path), "--no-progress"]) == 0
    assert (run.path / "train" / "model.pt").is_file()
    first = json.loads((run.path / "eval.json").read_text())
    assert main(["eval", str(run.path)]) == 0
    assert json.loads((run.path / "eval.json").read_text())["balanced_test"] == first["balanced_test"]
    assert main(["report", str(run.path)]) == 0
    assert "search" in (run.path / "report.md").read_text().lower()


# --- ltnas config show ----------------------------------------------------------------------------------
def test_config_show_prints_every_value_with_its_description_and_origin(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"search": {"method": "fairdarts", "epochs": 3}}))
    assert main(["config", "show", str(path), "--set", "search.layers=5"]) == 0
    out = capsys.readouterr().out
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if not line.startswith("#")}
    assert "epochs: 3  # (set)" in out and "  layers: 5  # cells in the network (reduction cells at 1/3 and 2/3) (set)" in out
    # the method's own setting, visible as such, with the key's description
    assert "  lr: 0.005  # SGD learning rate (the schedule's start) (FairDARTS default)" in out
    assert "zero_one_weight: 10.0  # weight w01 of the zero-one loss" in out
    assert "val_fraction: 0.1  # share of each class's training images" in out
    config = load_config(path, ["search.layers=5"])
    shown = yaml.safe_load(out)  # the output is YAML of the resolved config
    assert shown["search"]["layers"] == 5 and shown["search"]["fairdarts"] == config.search.fairdarts.model_dump()
    assert "arch_betas" in lines
    assert "  bbn:  # (not read by a fairdarts run)" in out and "supernet:  # (not read by a fairdarts run)" in out
    assert "  fairdarts:" in out and "  fairdarts:  # (not" not in out


def test_config_show_of_a_shipped_name_and_of_a_run_folder(tmp_path, capsys):
    assert main(["config", "show", "quickstart"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["name"] == load_config(
        Path(__file__).parents[1] / "configs" / "quickstart.yaml").name
    run = RunFolder.create(tmp_path / "run", validate_config({}))
    shutil.copy(OLD_CONFIG, run.config_file)
    assert main(["config", "show", str(run.path)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["search"]["fairdarts"]["zero_one_weight"] == 5.0
    assert main(["config", "show", "no_such_config"]) == 2
    assert "not found" in capsys.readouterr().err


def test_stage_time_is_the_sum_of_its_epochs():
    from ltnas.metrics import stage_seconds

    assert stage_seconds([{"seconds": 1.5}, {"seconds": 2.0}, {"epoch": 3}]) == 3.5
    assert stage_seconds([]) == 0.0


def test_sgd_settings_are_declared_once_with_each_sections_default():
    fields = {name: RunConfig.model_fields[name].annotation.model_fields for name in ("train", "supernet", "adapt")}
    fields["search"] = RunConfig.model_fields["search"].annotation.model_fields
    assert len({section["lr"].description for section in fields.values()}) == 1
    config = RunConfig()
    assert (config.search.lr, config.train.lr, config.supernet.lr, config.adapt.lr) == (0.025, 0.025, 0.1, 0.01)
    with pytest.raises(LtnasError, match="adapt.momentum"):
        validate_config({"adapt": {"momentum": -1}})
