"""Baseline networks: the published sizes, shapes, and the same retrain → evaluate → report → compare path
as a searched genotype."""

from __future__ import annotations

import json

import pytest
import torch
from test_cli import call, user_error

from ltnas.cli import resolve_config_path
from ltnas.compare import method_variant, spec_from_methods
from ltnas.config import BASELINE_NETWORKS, load_config
from ltnas.methods import QUICKSTART as QUICKSTART_METHODS
from ltnas.space import count_parameters
from ltnas.space.baselines import BASELINES, BasicBlock, build_baseline


def test_registry_matches_the_config_names():
    assert tuple(BASELINES) == BASELINE_NETWORKS


@pytest.mark.parametrize("name,published", [("resnet20", 0.27e6), ("resnet32", 0.46e6), ("resnet44", 0.66e6),
                                            ("resnet56", 0.85e6), ("resnet110", 1.7e6)])
def test_cifar_resnets_have_the_published_sizes(name, published):
    """He et al. (2016), Table 6 (CIFAR-10): 0.27M, 0.46M, 0.66M, 0.85M, 1.7M parameters."""
    params = count_parameters(build_baseline(name, 10, 3))
    assert round(params / 1e6, 2 if published < 1e6 else 1) == pytest.approx(published / 1e6)


def test_resnet32_structure_and_exact_count():
    net = build_baseline("resnet32", 10, 3)
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 15 and [b.conv1.out_channels for b in blocks] == [16] * 5 + [32] * 5 + [64] * 5
    # conv stem + 15 blocks of two 3×3 convs (+ BN) + 64→10 linear; option-A shortcuts add nothing
    convs = 3 * 3 * 3 * 16 + sum(9 * b.conv1.in_channels * b.conv1.out_channels + 9 * b.conv2.in_channels
                                 * b.conv2.out_channels for b in blocks)
    bns = 2 * 16 + sum(2 * (b.bn1.num_features + b.bn2.num_features) for b in blocks)
    assert count_parameters(net) == convs + bns + 64 * 10 + 10 == 464_154
    assert isinstance(net.classifier, torch.nn.Linear)


def test_option_a_shortcut_subsamples_and_pads_zero_channels():
    block = BasicBlock(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    shortcut = block.shortcut(x)
    assert shortcut.shape == (2, 32, 4, 4)
    assert torch.equal(shortcut[:, 8:24], x[:, :, ::2, ::2])
    assert shortcut[:, :8].abs().sum() == 0 and shortcut[:, 24:].abs().sum() == 0


@pytest.mark.parametrize("name", ["resnet32", "cnn"])
@pytest.mark.parametrize("channels,size", [(1, 8), (3, 32), (3, 7)])
def test_baseline_forward_shapes(name, channels, size):
    net = build_baseline(name, 5, channels)
    assert net(torch.randn(2, channels, size, size)).shape == (2, 5)
    assert net.classifier.out_features == 5


def test_unknown_network_is_a_config_error(tiny, tmp_path, capsys):
    user_error(capsys, ["train", tiny, "--set", "train.network=resnet33", "--out", str(tmp_path / "a")],
               "train.network", "resnet33", "did you mean 'resnet32'")
    user_error(capsys, ["train", tiny, "--set", "train.network=cnn", "--genotype", "DARTS_V2",
                        "--out", str(tmp_path / "b")], "train.genotype", "unset one")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.fixture
def tiny(tiny_config_file) -> str:
    return str(tiny_config_file)


def test_baseline_through_run_end_to_end(tiny_yaml, tmp_path):
    """`ltnas run` with a baseline network searches nothing, retrains it with the config's recipe and
    long-tail plug-ins, evaluates it and writes the report; `ltnas eval` reloads the saved model."""
    network = "cnn"
    out = tmp_path / network
    code, stdout, stderr = call(["run", str(tiny_yaml), "--set", f"train.network={network}",
                                 "--set", "train.longtail={loss: logit_adjusted}", "--out", str(out)])
    assert code == 0, stderr
    assert not (out / "search").exists() and not (out / "train" / "genotype.json").exists()
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["network"] == network and evaluation["genotype"] is None
    assert evaluation["params"] == count_parameters(build_baseline(network, 4, 3))
    assert evaluation["seconds"]["search"] is None and evaluation["seconds"]["train"] > 0
    assert len((out / "train" / "metrics.jsonl").read_text().splitlines()) == 2
    assert "Network" in stdout and network in stdout
    assert f"`{network}` (baseline)" in (out / "report.md").read_text()
    code, _, stderr = call(["eval", str(out)])
    assert code == 0, stderr
    assert json.loads((out / "eval.json").read_text())["balanced_test"] == evaluation["balanced_test"]


def test_method_variants():
    assert method_variant("ssf") == ("SSF-NAS", ["search.method=ssf"])
    assert method_variant("resnet32") == ("ResNet-32", ["train.network=resnet32"])
    assert method_variant("cnn") == ("CNN", ["train.network=cnn"])
    assert method_variant("darts_v2") == ("DARTS_V2", ["train.genotype=DARTS_V2"])


def test_unknown_method_names_the_three_kinds(tiny, tmp_path, capsys):
    user_error(capsys, ["compare", tiny, "--methods", "darts,vgg16", "--out", str(tmp_path / "c")],
               "vgg16", "search methods", "baseline networks", "published genotypes")


def test_comparison_puts_baselines_beside_search_methods(tiny_yaml, tmp_path):
    out = tmp_path / "cmp"
    code, stdout, stderr = call(["compare", str(tiny_yaml), "--methods", "darts,resnet20,darts_v2", "--seeds", "0",
                                 "--out", str(out), "--set", "search.epochs=1", "--set", "train.epochs=1"])
    assert code == 0, stderr
    result = json.loads((out / "comparison.json").read_text())
    assert list(result["variants"]) == ["DARTS", "ResNet-20", "DARTS_V2"]
    assert result["baselines"] == ["ResNet-20", "DARTS_V2"]
    assert result["variants"]["ResNet-20"]["search_seconds"]["mean"] is None
    assert not (out / "resnet-20" / "seed_0" / "search").exists() and (out / "darts" / "seed_0" / "search").is_dir()
    assert json.loads((out / "darts-v2" / "seed_0" / "eval.json").read_text())["genotype"] == "DARTS_V2"
    for row in ("DARTS", "ResNet-20", "DARTS_V2"):
        assert f"│ {row}" in stdout or f"| {row} |" in (out / "comparison.md").read_text()
    assert "Best searched network: DARTS" in stdout and "best baseline:" in stdout
    assert "Baselines (trained with the same recipe" in (out / "comparison.md").read_text()


def test_quickstart_compares_search_methods_with_baselines():
    """The quickstart's table: the three search methods, then the baselines trained with the same recipe."""
    spec = spec_from_methods(resolve_config_path("quickstart"), list(QUICKSTART_METHODS), [0])
    assert list(spec.variants)[:3] == ["DARTS", "FairDARTS", "SSF-NAS"]
    baselines = {name: changes for name, changes in spec.variants.items() if name not in ("DARTS", "FairDARTS",
                                                                                           "SSF-NAS")}
    assert {"CNN", "ResNet-32", "DARTS_V2"} <= set(baselines)
    for name, changes in baselines.items():
        config = load_config(resolve_config_path("quickstart"), changes)
        assert config.train.baseline or config.train.genotype, name


def test_parallel_workers_start_the_longest_members_first():
    """Searches first, then the cell network of a given genotype, then the hand-designed baselines, so the
    quickstart's DARTS_V2 does not start last and run alone; the table keeps the spec's order."""
    from ltnas.compare import start_order

    spec = spec_from_methods(resolve_config_path("quickstart"), list(QUICKSTART_METHODS), [0])
    names = list(spec.variants)
    configs = [load_config(resolve_config_path("quickstart"), changes) for changes in spec.variants.values()]
    assert [names[i] for i in start_order(configs)] == ["DARTS", "FairDARTS", "SSF-NAS", "DARTS_V2", "CNN",
                                                        "ResNet-32"]
    assert names == ["DARTS", "FairDARTS", "SSF-NAS", "CNN", "ResNet-32", "DARTS_V2"]


def test_resnet32_with_ldams_normalised_classifier_has_the_published_size():
    """LDAM-DRW's NormedLinear has no bias: 464,154 − 10 = 464,144 parameters at 10 classes."""
    from ltnas.space.heads import is_normalised

    network = build_baseline("resnet32", 10, normalised=True)
    assert is_normalised(network.classifier) and count_parameters(network) == 464_144


def test_an_ldam_baseline_run_is_a_model_file_that_predicts_anywhere(tiny_yaml, tmp_path):
    """A baseline trained under LDAM keeps its normalised classifier, and its model.pt rebuilds it with
    nothing but the file (ltnas.load_model), giving the logits the run's own network gives."""
    from ltnas import load_model
    from ltnas.space.heads import is_normalised

    out = tmp_path / "ldam"
    code, _, stderr = call(["run", str(tiny_yaml), "--set", "train.network=resnet20", "--set",
                            "train.longtail={loss: ldam}", "--set", "train.epochs=1", "--out", str(out)])
    assert code == 0, stderr
    saved = torch.load(out / "train" / "model.pt", weights_only=False)
    assert saved["network"] == {"name": "baseline", "kwargs": {"network": "resnet20", "num_classes": 4,
                                                                 "in_channels": 3, "normalised": True}}
    model, preprocess, classes = load_model(out / "train" / "model.pt")
    assert is_normalised(model.classifier) and len(classes) == 4
    reference = build_baseline("resnet20", 4, 3, normalised=True)
    reference.load_state_dict(saved["model"])
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(model(x), reference.eval()(x))
