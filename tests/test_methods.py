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
OLD_IMBNAS_CONFIG = Path(__file__).parent / "data" / "config_saved_before_shared_sections.yaml"


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
    config = RunConfig.model_validate({"search": {"method": "fairdarts", "sgd": {"lr": 0.1}}})
    defaults = METHODS["fairdarts"].search_defaults
    assert (config.search.sgd.lr, config.search.arch_lr, config.search.derive) == (0.1, defaults["arch_lr"], "threshold")
    # a section the config sets part of keeps the method's values for the rest (sgd.lr_min) and the
    # section's own defaults for what the method leaves alone (sgd.momentum)
    assert (config.search.sgd.lr_min, config.search.sgd.momentum) == (defaults["sgd"]["lr_min"], 0.9)
    assert RunConfig().search.sgd.lr == 0.025  # darts: no method defaults


# What each method resolves to with nothing set (recorded from the flat layout before search.sgd and
# search.cell): epochs, batch_size, sgd.lr, sgd.lr_min, sgd.momentum, sgd.weight_decay, arch_lr, arch_betas,
# order, derive, number of primitives.
RESOLVED = {
    "darts": (50, 64, 0.025, 0.001, 0.9, 3e-4, 3e-4, (0.5, 0.999), "first", "darts", 8),
    "fairdarts": (50, 128, 0.005, 0.001, 0.9, 3e-4, 3e-3, (0.9, 0.999), "first", "threshold", 7),
    "ssf": (50, 128, 0.005, 0.001, 0.9, 3e-4, 3e-3, (0.9, 0.999), "first", "threshold", 7),
    "bbn": (50, 128, 0.02, 0.001, 0.9, 3e-4, 0.02, (0.5, 0.999), "first", "darts", 8),
    "pcdarts": (50, 256, 0.1, 0.0, 0.9, 3e-4, 6e-4, (0.5, 0.999), "first", "darts", 8),
    "gdas": (250, 256, 0.025, 0.001, 0.9, 5e-4, 3e-4, (0.5, 0.999), "first", "darts", 8),
    "imbnas": (50, 64, 0.025, 0.001, 0.9, 3e-4, 3e-4, (0.5, 0.999), "first", "darts", 8),
    # FairDARTS's Table 3 methods: DARTS's search settings, the FairDARTS code's α betas for the noisy search
    "darts_noise": (50, 64, 0.025, 0.001, 0.9, 3e-4, 3e-4, (0.9, 0.999), "first", "darts", 8),
    "random": (50, 64, 0.025, 0.001, 0.9, 3e-4, 3e-4, (0.5, 0.999), "first", "darts", 8),
}


@pytest.mark.parametrize("name", METHODS)
def test_every_method_resolves_to_its_recorded_settings(name):
    search = RunConfig.model_validate({"search": {"method": name}}).search
    sgd = search.sgd
    assert (search.epochs, search.batch_size, sgd.lr, sgd.lr_min, sgd.momentum, sgd.weight_decay, search.arch_lr,
            tuple(search.arch_betas), search.order, search.derive, len(search.cell.primitives)) == RESOLVED[name]
    # the saved config holds every value used: saved and read back, it resolves to the same config
    saved = validate_config(yaml.safe_load(saved_yaml(validate_config({"search": {"method": name}}))))
    assert saved.search == search


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
def test_a_method_table_entry_with_old_flat_keys_reads_as_the_new_layout(monkeypatch):
    """search_defaults written in the flat layout ("lr") still apply at the new place (sgd.lr)."""
    from dataclasses import replace

    monkeypatch.setitem(METHODS, "pcdarts", replace(METHODS["pcdarts"], search_defaults={"lr": 0.3, "batch_size": 7}))
    search = validate_config({"search": {"method": "pcdarts"}}).search
    assert (search.sgd.lr, search.batch_size) == (0.3, 7)


def test_old_flat_stage_keys_are_read_in_their_shared_sections(tmp_path):
    """A config file in the layout before the shared sections (flat lr, init_channels, ... in each stage)."""
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"search": {"method": "pcdarts", "init_channels": 8, "lr": 0.05},
                                    "train": {"layers": 4, "lr_min": 0.01},
                                    "supernet": {"primitives": ["skip_connect"], "lr_milestones": [7]},
                                    "adapt": {"momentum": 0.5}}))
    config = load_config(path)
    assert (config.search.cell.init_channels, config.search.sgd.lr) == (8, 0.05)
    assert config.search.sgd.lr_min == 0.0 and config.search.batch_size == 256  # PC-DARTS's own, as before
    assert (config.train.cell.layers, config.train.sgd.lr_min) == (4, 0.01)
    assert (config.supernet.cell.primitives, config.supernet.sgd.lr_milestones) == (["skip_connect"], [7])
    assert (config.adapt.sgd.momentum, config.adapt.sgd.lr) == (0.5, 0.01)  # adapt's own default stays
    # an old name given with --set sets the new place and wins over the file's value, in either layout
    assert load_config(path, ["search.lr=0.2"]).search.sgd.lr == 0.2
    assert load_config(path, ["search.sgd.lr=0.3"]).search.sgd.lr == 0.3
    path.write_text(yaml.safe_dump({"search": {"sgd": {"lr": 0.05}}}))
    assert load_config(path, ["search.lr=0.2"]).search.sgd.lr == 0.2
    with pytest.raises(LtnasError, match="invalid config value for 'search.sgd.lr' in --set search.sgd.lr"):
        load_config(path, ["search.lr=-1"])
    with pytest.raises(LtnasError, match="keep search.cell.layers only"):
        validate_config({"search": {"layers": 3, "cell": {"layers": 4}}})
    with pytest.raises(LtnasError, match="unknown config key 'train.layer' in --set; did you mean 'train.cell.layers'"):
        load_config(None, ["train.layer=3"])  # a misspelt old name points to the new place


def test_a_saved_config_of_the_flat_layout_loads_with_the_same_values_and_supernet_key():
    """config.yaml of an IMB-NAS run as the flat layout saved it (tests/data, made by that code)."""
    from ltnas.stages.imbnas import supernet_key

    config = validate_config(yaml.safe_load(OLD_IMBNAS_CONFIG.read_text()))
    search, supernet, adapt, train = config.search, config.supernet, config.adapt, config.train
    assert (search.cell.init_channels, search.cell.layers, search.sgd.lr, search.sgd.grad_clip) == (8, 5, 0.05, 3.0)
    assert supernet.cell.model_dump() == {"init_channels": 4, "layers": 3, "nodes": 3,
                                           "primitives": ["skip_connect", "sep_conv_3x3"]}
    assert supernet.sgd.model_dump() == {"lr": 0.05, "momentum": 0.8, "weight_decay": 1e-4, "grad_clip": 4.0,
                                         "lr_milestones": [1], "lr_gamma": 0.1}
    assert adapt.sgd.model_dump() == {"lr": 0.02, "momentum": 0.7, "weight_decay": 5e-4, "grad_clip": 2.0,
                                      "lr_milestones": [1], "lr_gamma": 0.5}
    assert (train.cell.init_channels, train.cell.layers) == (6, 4)
    assert train.sgd.model_dump() == {"lr": 0.05, "momentum": 0.85, "weight_decay": 4e-4, "grad_clip": 6.0,
                                      "lr_min": 0.01, "schedule": "cosine", "lr_milestones": [], "lr_gamma": 0.1}
    # the source supernet it trained is found in the cache under the key the flat layout gave it
    assert supernet_key(config) == "18c11b4dd372b25d"


def test_moved_keys_are_read_at_their_new_place():
    raw = {"search": {"method": "fairdarts", "zero_one_weight": 3.0}}
    assert migrate_layout(raw) == {"search": {"method": "fairdarts", "fairdarts": {"zero_one_weight": 3.0}}}
    assert raw == {"search": {"method": "fairdarts", "zero_one_weight": 3.0}}  # the input is left alone
    assert validate_config(raw).search.fairdarts.zero_one_weight == 3.0
    assert RunConfig.model_validate({"search": {"lr": 0.2}}).search.sgd.lr == 0.2  # any way a config arrives
    from ltnas.config import SearchConfig, TrainConfig

    search = SearchConfig(method="pcdarts", lr=0.05, init_channels=8)  # a section built on its own, too
    assert (search.sgd.lr, search.sgd.lr_min, search.cell.init_channels, search.batch_size) == (0.05, 0.0, 8, 256)
    assert TrainConfig(layers=3).cell.layers == 3
    assert load_config(None, ["search.zero_one_kind=l1"]).search.fairdarts.zero_one_kind == "l1"
    with pytest.raises(LtnasError, match="keep search.fairdarts.zero_one_weight only"):
        validate_config({"search": {"zero_one_weight": 3.0, "fairdarts": {"zero_one_weight": 4.0}}})
    assert all(old != new for old, new in MOVED_KEYS)


def test_a_run_folder_saved_in_the_old_layout_resumes_evaluates_and_reports(tmp_path, capsys):
    """config.yaml as ltnas wrote it before `search.fairdarts` (and the shared sections `search.sgd`,
    `search.cell`, `train.cell`) existed (tests/data, made by that code):
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
    assert main(["config", "show", str(path), "--set", "search.cell.layers=5"]) == 0
    out = capsys.readouterr().out
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if not line.startswith("#")}
    assert "  epochs: 3  # search epochs (set)" in out
    assert "    layers: 5  # cells in the network (reduction cells at 1/3 and 2/3) (set)" in out
    # the method's own setting, visible as such, with the key's description, and listed in the header
    assert "    lr: 0.005  # SGD learning rate (the schedule's start) (FairDARTS default)" in out
    assert [line for line in out.splitlines() if line.startswith("  batch_size: 128  # ")][0].endswith(
        "(FairDARTS default)")
    assert "# FairDARTS sets, unless the config does: " in out and "search.sgd.lr 0.005" in out
    assert "zero_one_weight: 10.0  # weight w01 of the zero-one loss" in out
    assert "val_fraction: 0.1  # share of each class's training images" in out
    config = load_config(path, ["search.layers=5"])  # the old name sets the same key
    shown = yaml.safe_load(out)  # the output is YAML of the resolved config
    assert shown["search"]["cell"]["layers"] == 5 and config.search.cell.layers == 5 and shown["search"]["fairdarts"] == config.search.fairdarts.model_dump()
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


def test_sgd_and_cell_sections_are_one_type_each_with_each_stages_defaults():
    from ltnas.config import SgdConfig, CellConfig

    stages = {name: RunConfig.model_fields[name].annotation for name in ("search", "train", "supernet", "adapt")}
    assert all(issubclass(stage.model_fields["sgd"].annotation, SgdConfig) for stage in stages.values())
    assert all(issubclass(stages[name].model_fields[key].annotation, CellConfig)
               for name, key in (("search", "cell"), ("supernet", "cell"), ("train", "cell")))
    config = RunConfig()
    assert (config.search.sgd.lr, config.train.sgd.lr, config.supernet.sgd.lr, config.adapt.sgd.lr) == (0.025, 0.025,
                                                                                                     0.1, 0.01)
    assert (config.train.cell.init_channels, config.supernet.cell.init_channels) == (36, 16)
    # a stage section that sets one key keeps the stage's own defaults for the others
    partial = validate_config({"adapt": {"sgd": {"momentum": 0.5}}, "supernet": {"cell": {"layers": 5}}})
    assert (partial.adapt.sgd.lr, partial.adapt.sgd.lr_milestones) == (0.01, [100])
    assert "none" not in partial.supernet.cell.primitives
    with pytest.raises(LtnasError, match="adapt.sgd.momentum"):
        validate_config({"adapt": {"momentum": -1}})
    with pytest.raises(LtnasError, match="unknown config key 'search.sgd.lr_milestones'"):
        validate_config({"search": {"sgd": {"lr_milestones": [3]}}})
