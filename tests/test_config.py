"""Typed config: defaults from the papers, overrides, one-line errors."""

from __future__ import annotations

import pytest

from ltnas.config import PRIMITIVES, RunConfig, load_config
from ltnas.errors import LtnasError


def test_defaults_are_the_darts_settings():
    config = RunConfig()
    s, t = config.search, config.train
    assert (s.cell.init_channels, s.cell.layers, s.batch_size, s.epochs) == (16, 8, 64, 50)
    sgd = s.sgd
    assert (sgd.lr, sgd.lr_min, sgd.momentum, sgd.weight_decay, sgd.grad_clip) == (0.025, 0.001, 0.9, 3e-4, 5.0)
    assert (s.arch_lr, tuple(s.arch_betas), s.arch_weight_decay, s.alpha_init_std) == (3e-4, (0.5, 0.999), 1e-3, 1e-3)
    assert tuple(s.cell.primitives) == PRIMITIVES and config.data.val_fraction == 0.5
    assert (t.cell.init_channels, t.cell.layers) == (36, 20) and (t.sgd.lr, t.sgd.lr_min) == (0.025, 0.0)
    assert (t.auxiliary_weight, t.drop_path, t.augment.cutout) == (0.4, 0.2, 16)


def test_overrides_parse_values_as_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("search:\n  epochs: 5\n")
    config = load_config(path, ["search.epochs=7", "search.cell.primitives=[none, skip_connect]", "data.ratio=10",
                                "search.augment.flip=false", "train.genotype=DARTS_V2"])
    assert config.search.epochs == 7 and config.search.cell.primitives == ["none", "skip_connect"]
    assert config.data.ratio == 10.0 and config.search.augment.flip is False
    assert config.train.genotype == "DARTS_V2"


@pytest.mark.parametrize("override,message", [
    ("search.epoch=3", "did you mean 'epochs'"),
    ("serch.epochs=3", "did you mean 'search'"),
    ("data.ratio=0.5", "ratio must be >= 1"),
    ("data.factor=0", "factor must be in (0, 1]"),
    ("data.factor=1.5", "factor must be in (0, 1]"),
    ("data.source=imagenet", "unknown dataset 'imagenet'"),
    ("search.cell.primitives=[none]", "at least one operation"),
    ("search.cell.primitives=[skip_connect, skip_connect]", "more than once"),
    ("search.order=third", "search.order"),
    ("epochs", "not key=value"),
])
def test_bad_values_give_one_line(override, message):
    with pytest.raises(LtnasError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)


def test_ratio_and_factor_together_are_refused():
    with pytest.raises(LtnasError, match="not both"):
        load_config(None, ["data.ratio=10", "data.factor=0.1"])


def test_yaml_round_trip(tmp_path):
    config = load_config(None, ["search.epochs=3", "data.source=synthetic"])
    path = tmp_path / "resolved.yaml"
    path.write_text(config.to_yaml())
    assert load_config(path) == config
