"""FairDARTS' second search space S₂ (ltnas/space/mobile.py): layout, relaxation under each strategy, the
derivation rules, the discrete network's counts, and search → retrain → evaluate → report → predict runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import nchw_layer_calls
from test_cli import call, user_error

import ltnas
from ltnas.config import load_config
from ltnas.errors import LtnasError
from ltnas.methods import S2_PRIMITIVES
from ltnas.search.darts import DartsSearch
from ltnas.search.fairdarts import FairDartsSearch
from ltnas.search.gdas import GumbelRelaxation
from ltnas.space import load_genotype
from ltnas.space.mobile import (
    SKIP, InvertedBottleneck, LayerSpec, MixedLayer, MobileArch, MobileNetwork, MobileSearchNetwork, derive_mobile,
    layer_specs, make_divisible, network_cost, resolve_layout,
)

torch.manual_seed(0)
TINY = {"layout": "small", "width_mult": 0.25}  # widths 8 … 80 (the 1280 head stays), 8× down-sampling


def tiny_supernet(relaxation="softmax", num_classes=3) -> MobileSearchNetwork:
    return MobileSearchNetwork(num_classes, 3, relaxation=relaxation, alpha_init_std=0.5, **TINY)


# --------------------------------------------------------------------------------------- the layout
def test_imagenet_layout_is_the_19_layer_proxylessnas_mobile_space():
    specs = layer_specs("imagenet")
    assert len(specs) == 19
    assert [s.c_out for s in specs] == [32] * 2 + [40] * 4 + [80] * 4 + [96] * 4 + [192] * 4 + [320]
    assert [i for i, s in enumerate(specs) if s.stride == 2] == [0, 2, 6, 14]  # 32x with the stem's stride 2
    # skip fits where the width and resolution stay: all but the first layer of each stage (96 and 320 widen)
    assert [i for i, s in enumerate(specs) if not s.skippable] == [0, 2, 6, 10, 14, 18]
    assert specs[0].c_in == 16
    small = layer_specs("small")
    assert [i for i, s in enumerate(small) if s.stride == 2] == [2, 6, 14]  # the small layout: 8x
    assert (resolve_layout("auto", 224), resolve_layout("auto", 32), resolve_layout("auto", 8)) == (
        "imagenet", "small", "small")


def test_make_divisible_is_proxylessnas_rounding():
    assert [make_divisible(v) for v in (32 * 0.25, 40 * 0.25, 80 * 0.25, 96 * 1.4, 4)] == [8, 16, 24, 136, 8]


# ------------------------------------------------------------------------------------ relaxations
def test_softmax_and_sigmoid_weights_over_each_layers_own_candidates():
    for relaxation in ("softmax", "sigmoid"):
        net = tiny_supernet(relaxation)
        alpha = net.alpha_layers.detach()
        weights = net.relaxed_weights()["layers"].detach()
        assert weights.shape == (19, 7)
        for index, spec in enumerate(net.specs):
            cols = [i for i, name in enumerate(S2_PRIMITIVES) if name != SKIP or spec.skippable]
            expected = torch.softmax(alpha[index, cols], 0) if relaxation == "softmax" else torch.sigmoid(alpha[index, cols])
            assert torch.allclose(weights[index, cols], expected)
            if not spec.skippable:
                assert weights[index, S2_PRIMITIVES.index(SKIP)] == 0  # absent, not merely small
        if relaxation == "softmax":
            assert torch.allclose(weights.sum(1), torch.ones(19))


def test_layer_output_is_the_weighted_sum_of_its_candidates():
    layer = MixedLayer(LayerSpec(8, 8, 1), S2_PRIMITIVES).eval()
    x, w = torch.randn(2, 8, 4, 4), torch.rand(7)
    expected = sum(w[i] * op(x) for i, op in enumerate(layer.ops))
    assert torch.allclose(layer(x, w), expected, atol=1e-6)
    assert torch.allclose(layer.ops[-1](x), x)  # the skip candidate is the identity
    assert torch.allclose(layer(x, w, sampled=2), w[2] * layer.ops[2](x), atol=1e-6)
    stride = MixedLayer(LayerSpec(8, 16, 2), S2_PRIMITIVES)
    assert len(stride.ops) == 6 and stride(x, w).shape == (2, 16, 2, 2)


def test_supernet_shapes_gradients_and_weights_kept_apart():
    net = tiny_supernet("sigmoid")
    x = torch.randn(2, 3, 8, 8)
    logits = net(x)
    assert logits.shape == (2, 3) and net.features(x).shape == (2, net.feature_dim)
    logits.sum().backward()
    assert net.alpha_layers.grad is not None and net.alpha_layers.grad.abs().sum() > 0
    names = [name for name, _ in net.named_parameters()]
    assert "alpha_layers" not in names and net.arch_parameters() == [net.alpha_layers]


@pytest.mark.parametrize("in_channels", [1, 3])
def test_channels_last_supernet_runs_its_layers_nhwc_for_grey_images_too(in_channels):
    """As the cell supernet's (test_space.py): a one-channel batch keeps NCHW strides, so the stem's output is made NHWC."""
    seen = []
    for layout in (True, False):
        net = MobileSearchNetwork(3, in_channels, alpha_init_std=0.5, channels_last=layout, **TINY)
        net.layers[0].register_forward_hook(lambda layer, inputs, out: seen.append(
            inputs[0].is_contiguous(memory_format=torch.channels_last) and not inputs[0].is_contiguous()))
        net(torch.randn(2, in_channels, 8, 8))
    assert seen == [True, False]


def test_channels_last_supernet_trains_nhwc_throughout_for_grey_images():
    """No convolution or BatchNorm of a channels_last S₂ step, forward or backward, sees an NCHW tensor: the stem's
    first convolution of a grey batch comes out NCHW, and the stem's BatchNorms and convolutions after it ran NCHW
    until that output was made NHWC (`nhwc_stem`, as the cell supernet's)."""
    torch.manual_seed(0)
    net = MobileSearchNetwork(3, 1, alpha_init_std=0.5, channels_last=True, **TINY)
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))
    assert nchw_layer_calls(lambda: F.cross_entropy(net(x), y).backward()) == []


def test_gdas_runs_one_sampled_candidate_per_layer():
    relaxation = GumbelRelaxation(tau=1.0)
    relaxation.generator = torch.Generator().manual_seed(0)
    net = tiny_supernet(relaxation)
    forward = net.forward_weights()["layers"]
    assert len(forward.sampled) == 19
    for index, pick in enumerate(forward.sampled):
        assert forward.weights[index, pick].item() == pytest.approx(1.0)
        assert net.specs[index].skippable or S2_PRIMITIVES[pick] != SKIP
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 3)


def test_fairdarts_zero_one_loss_reaches_s2_alpha(tiny_config_file):
    config = load_config(tiny_config_file, ["search.method=fairdarts", "search.space=s2", "search.s2.layout=small",
                                    "search.s2.width_mult=0.25"])
    net = tiny_supernet("sigmoid")
    strategy = FairDartsSearch(net, config.search, torch.nn.functional.cross_entropy)
    grads = strategy.zero_one_grads()
    assert grads[0].shape == (19, 7) and grads[0].abs().sum() > 0
    assert DartsSearch.network_options(config.search)["relaxation"] == "softmax"


# ------------------------------------------------------------------------------------- derivation
def _weights(rows: dict[int, dict[str, float]], fill: float = 0.1) -> torch.Tensor:
    weights = torch.full((19, 7), fill)
    for row, values in rows.items():
        for name, value in values.items():
            weights[row, S2_PRIMITIVES.index(name)] = value
    return weights


def test_darts_derivation_takes_each_layers_argmax():
    specs = layer_specs("imagenet")
    weights = _weights({1: {SKIP: 0.5}, 2: {SKIP: 0.9, "ib_k5_e6": 0.3}, 3: {"ib_k7_e3": 0.4}})
    arch = derive_mobile(weights, S2_PRIMITIVES, specs, "darts")
    assert arch.layers[1] == (SKIP,)
    assert arch.layers[2] == ("ib_k5_e6",)  # layer 2 widens: its skip column does not exist
    assert arch.layers[3] == ("ib_k7_e3",)
    assert arch.layers[0] == ("ib_k3_e3",)  # ties: the first candidate, as DARTS
    assert arch.skips() == 1


def test_threshold_derivation_keeps_at_most_two_and_falls_back_to_skip():
    specs = layer_specs("imagenet")
    weights = _weights({
        1: {"ib_k3_e3": 0.8, "ib_k5_e6": 0.95, SKIP: 0.9},  # three above: the strongest two, strongest first
        3: {"ib_k7_e6": 0.76},                               # one above 0.75
        4: {"ib_k7_e6": 0.74},                               # none: skip (the layer is removed)
        6: {"ib_k7_e6": 0.3, SKIP: 0.99},                    # none (skip is absent at a stride-2 layer): strongest
    })
    arch = derive_mobile(weights, S2_PRIMITIVES, specs, "threshold", threshold=0.75)
    assert arch.layers[1] == ("ib_k5_e6", SKIP)
    assert arch.layers[3] == ("ib_k7_e6",)
    assert arch.layers[4] == (SKIP,)
    assert arch.layers[6] == ("ib_k7_e6",)
    assert arch.layers[0] == ("ib_k3_e3",)  # not skippable, nothing above: the strongest (first of ties)
    assert derive_mobile(weights, S2_PRIMITIVES, specs, "threshold", threshold=0.8).layers[3] == (SKIP,)
    with pytest.raises(LtnasError, match="do not match"):
        derive_mobile(torch.zeros(18, 7), S2_PRIMITIVES, specs)


# --------------------------------------------------------------------- architecture and its network
def test_architecture_round_trip_and_bad_architectures(tmp_path):
    arch = MobileArch(tuple(("ib_k3_e3", SKIP) if spec.skippable else ("ib_k5_e6",) for spec in layer_specs("small")),
                      "small", 0.25, name="mine")
    path = tmp_path / "s2.json"
    arch.to_json(path)
    assert json.loads(path.read_text())["space"] == "s2"
    assert MobileArch.from_json(path) == arch and load_genotype(path) == arch  # train.genotype takes it too
    layers = list(arch.layers)
    with pytest.raises(LtnasError, match="skip_connect cannot join"):
        MobileArch(tuple([(SKIP,)] + layers[1:]), "imagenet")  # layer 0 has stride 2 at the imagenet layout
    with pytest.raises(LtnasError, match="one or two different"):
        MobileArch(tuple([("ib_k3_e3", "ib_k5_e3", "ib_k7_e3")] + layers[1:]), "small")
    with pytest.raises(LtnasError, match="19 searchable layers"):
        MobileArch(tuple(layers[:18]), "small")
    with pytest.raises(LtnasError, match="unknown candidate"):
        MobileArch(tuple([("sep_conv_3x3",)] + layers[1:]), "small")


def _ib_params(c_in: int, c_out: int, k: int, e: int) -> int:
    """1×1 expand, k×k depthwise, 1×1 project, and a BN (γ, β) after each."""
    hidden = c_in * e
    return c_in * hidden + hidden * k * k + hidden * c_out + 2 * (hidden + hidden + c_out)


def test_counts_match_a_hand_count_of_a_small_fixed_network():
    # Every layer ib_k3_e3 (+ skip where it fits), small layout, width × 0.25, 8×8 input, 10 classes.
    arch = MobileArch(tuple(("ib_k3_e3", SKIP) if spec.skippable else ("ib_k3_e3",) for spec in layer_specs("small", 0.25)),
                      "small", 0.25)
    params, madds = network_cost(MobileNetwork(arch, 10), 3, 8)
    # Widths by hand: stem 8, first 8; stages 8 (32·¼), 16 (40·¼ = 10 → 16), 24, 24, 48, 80; head 1280.
    widths = [8] * 2 + [16] * 4 + [24] * 4 + [24] * 4 + [48] * 4 + [80]
    sides = [8] * 2 + [4] * 4 + [2] * 8 + [1] * 5  # output side of each layer (strides at layers 2, 6, 14)
    stem_params = 3 * 8 * 9 + 2 * 8 + 8 * 9 + 2 * 8 + 8 * 8 + 2 * 8
    stem_madds = 64 * (8 * 3 * 9) + 64 * (8 * 9) + 64 * (8 * 8)
    hand_params, hand_madds, c_in, side_in = stem_params, stem_madds, 8, 8
    for c_out, side in zip(widths, sides):
        hidden = 3 * c_in
        hand_params += _ib_params(c_in, c_out, 3, 3)
        hand_madds += side_in ** 2 * hidden * c_in + side ** 2 * hidden * 9 + side ** 2 * c_out * hidden
        c_in, side_in = c_out, side
    hand_params += 80 * 1280 + 2 * 1280 + 1280 * 10 + 10
    hand_madds += 1 * 1280 * 80 + 1280 * 10
    assert (params, madds) == (hand_params, hand_madds)
    block = InvertedBottleneck(8, 16, 3, 3, 2)
    assert sum(p.numel() for p in block.parameters()) == 8 * 24 + 24 * 9 + 24 * 16 + 2 * (24 + 24 + 16) == 920


def test_counts_of_a_published_mobile_model_fairnas_b():
    """FairNAS-B (Chu et al.'s 19-layer space; their code's mb_config, MobileNetV2 blocks with the residual
    where shapes allow) is published at 4.5M parameters and 345M multiply-adds at 224 px, 1000 classes."""
    config = [(5, 3), (3, 3), (5, 3), (3, 3), (3, 6), (5, 3), (7, 3), (3, 3), (3, 6), (5, 3), (3, 3), (3, 6),
              (7, 3), (3, 3), (7, 6), (5, 6), (7, 6), (3, 6), (5, 6)]
    arch = MobileArch(tuple((f"ib_k{k}_e{e}", SKIP) if spec.skippable else (f"ib_k{k}_e{e}",)
                            for (k, e), spec in zip(config, layer_specs("imagenet"))), "imagenet")
    params, madds = network_cost(MobileNetwork(arch, 1000), 3, 224)
    assert round(params / 1e6, 1) == 4.5 and round(madds / 1e6) == 345


def test_discrete_network_shapes_drop_path_and_dropout():
    arch = MobileArch(tuple(("ib_k5_e6", SKIP) if s.skippable else ("ib_k3_e3",) for s in layer_specs("small", 0.25)),
                      "small", 0.25)
    net = MobileNetwork(arch, 5, in_channels=1, dropout=0.2)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 5)
    net.drop_path_prob = 0.5
    net.train()
    assert net(torch.randn(4, 1, 8, 8)).shape == (4, 5)
    assert net.head.dropout.p == 0.2


# ------------------------------------------------------------------------- config and pipeline
def test_space_config_key_and_refusals(tiny_config_file, capsys):
    assert load_config(tiny_config_file).search.space == "darts"  # the default: nothing existing changes
    config = load_config(tiny_config_file, ["search.space=s2"])
    assert config.search.s2.candidates == list(S2_PRIMITIVES) and config.search.s2.layout == "auto"
    for method in ("pcdarts", "bbn", "imbnas"):
        user_error(capsys, ["run", str(tiny_config_file), "--set", "search.space=s2", "--set",
                            f"search.method={method}"], "searches only in the darts space", "fairdarts")
    user_error(capsys, ["run", str(tiny_config_file), "--set", "search.space=s3"], "unknown search space")
    user_error(capsys, ["run", str(tiny_config_file), "--set", "search.space=s2", "--set",
                        "search.s2.candidates=[skip_connect]"], "at least one ib_")


QUICK_S2 = ["--set", "search.space=s2", "--set", "search.s2.width_mult=0.25", "--set", "search.epochs=1",
            "--set", "train.epochs=1", "--set", "search.threshold=0.5", "--set", "search.longtail.loss=ldam",
            "--set", "search.arch_objective=balanced", "--set", "train.longtail.loss=focal",
            "--set", "train.longtail.sampler=class_balanced"]


@pytest.fixture(scope="module")
def s2_comparison(tiny_yaml, tmp_path_factory):
    """DARTS and FairDARTS in S₂ through `ltnas compare` (search → retrain → evaluate → report each), with
    long-tail plug-ins in the search (LDAM, its cosine classifier; a balanced α objective) and the retraining
    (focal loss, class-balanced sampling)."""
    out = tmp_path_factory.mktemp("s2") / "compare"
    code, stdout, stderr = call(["compare", str(tiny_yaml), "--methods", "darts,fairdarts", "--seeds", "0",
                                 "--out", str(out), "--no-progress", *QUICK_S2])
    assert code == 0, stderr
    return out, stdout


def test_darts_and_fairdarts_search_retrain_and_report_in_s2(s2_comparison):
    out, stdout = s2_comparison
    assert "DARTS" in stdout and "FairDARTS" in stdout
    for variant, relaxation in (("darts", "softmax"), ("fairdarts", "sigmoid")):
        run = out / variant / "seed_0"
        genotype = json.loads((run / "search" / "genotype.json").read_text())
        assert genotype["space"] == "s2" and len(genotype["layers"]) == 19 and genotype["layout"] == "small"
        rows = [json.loads(line) for line in (run / "search" / "alpha.jsonl").read_text().splitlines()]
        assert len(rows) == 1 and rows[-1]["relaxation"] == relaxation
        assert np.asarray(rows[-1]["layers"]).shape == (19, 7) and rows[-1]["primitives"] == list(S2_PRIMITIVES)
        assert json.loads((run / "train" / "genotype.json").read_text())["layers"] == genotype["layers"]
        evaluation = json.loads((run / "eval.json").read_text())
        assert evaluation["params"] > 0 and evaluation["balanced_test"]["num_samples"] == 40
        saved = yaml.safe_load((run / "config.yaml").read_text())
        assert saved["search"]["space"] == "s2" and saved["search"]["s2"]["width_mult"] == 0.25
        report = (run / "report.md").read_text()
        assert "S₂ network" in report and "Layers with skip as a dominant operation" in report
        for plot in ("alpha_heatmap", "dominant_ops", "alpha_history"):
            assert (run / "plots" / f"{plot}.png").stat().st_size > 0
        assert not (run / "plots" / "search_genotype.png").exists()  # no cell to draw


def test_s2_model_file_loads_and_predicts(s2_comparison):
    run = s2_comparison[0] / "fairdarts" / "seed_0"
    saved = torch.load(run / "train" / "model.pt", weights_only=True)
    assert saved["network"]["name"] == "s2" and saved["network"]["kwargs"]["normalised"] is False
    model, preprocess, classes = ltnas.load_model(run)
    assert isinstance(model, MobileNetwork) and not model.training
    arch = MobileArch.from_dict(json.loads((run / "search" / "genotype.json").read_text()))
    assert model.arch.layers == arch.layers
    images = np.random.default_rng(0).integers(0, 255, size=(3, 8, 8, 3), dtype=np.uint8)
    logits = model(preprocess(list(images)))
    assert logits.shape == (3, len(classes)) and torch.isfinite(logits).all()
    params, madds = network_cost(model, 3, 8)
    evaluation = json.loads((run / "eval.json").read_text())
    assert (evaluation["params"], evaluation["madds"]) == (params, madds)
    assert "Multiply-adds" in (run / "report.md").read_text()
    code, _, stderr = call(["export", str(run), "--format", "torchscript", "--out", str(run / "s2.pt")])
    assert code == 0, stderr


def test_retraining_an_s2_architecture_file_without_a_search(tiny_config_file, tmp_path):
    arch = MobileArch(tuple(("ib_k3_e3",) for _ in range(19)), "small", 0.25, name="plain")
    arch.to_json(tmp_path / "plain.json")
    out = tmp_path / "run"
    code, _, stderr = call(["train", str(tiny_config_file), "--genotype", str(tmp_path / "plain.json"), "--set",
                            "train.epochs=1", "--out", str(out), "--no-progress"])
    assert code == 0, stderr
    assert json.loads((out / "eval.json").read_text())["genotype"] == "plain"
    assert "S₂ network" in (out / "report.md").read_text()


def test_saved_config_keeps_the_s2_section_only_for_an_s2_search(tiny_config_file, tmp_path):
    from ltnas.runs import RunFolder

    for space, kept in (("darts", False), ("s2", True)):
        run = RunFolder.create(tmp_path / space, load_config(tiny_config_file, [f"search.space={space}"]))
        saved = yaml.safe_load(run.config_file.read_text())
        assert ("s2" in saved["search"]) == kept
        assert run.config().search.space == space


def test_s2_configs_paper_settings_and_the_smoke_run(tmp_path):
    from ltnas.cli import shipped_configs

    paper = load_config(shipped_configs()["fairdarts_s2_imagenet_lt"])
    search = paper.search
    assert (search.method, search.space, search.s2.layout, search.s2.width_mult) == ("fairdarts", "s2", "imagenet", 1.0)
    assert (search.epochs, search.batch_size, search.derive, search.threshold) == (30, 1024, "threshold", 0.75)
    assert (paper.data.source, paper.data.image_size) == ("folder", 224)
    assert paper.published.values == {"fairdarts": 75.6, "darts": 66.4}
    # the smoke config through its Table 2 comparison file: FairDARTS-D, FairDARTS-C and DARTS, each a smoke run
    out = tmp_path / "smoke"
    code, _, stderr = call(["compare", "fairdarts_s2_table2_smoke", "--set", "data.n_max=20",
                            "--set", "data.test_per_class=5", "--set", "data.longtail_test=false",
                            "--set", "search.epochs=1", "--set", "train.epochs=1", "--out", str(out),
                            "--device", "cpu", "--no-progress"])
    assert code == 0, stderr
    runs = json.loads((out / "comparison.json").read_text())["runs"]
    assert sorted(runs) == ["DARTS", "FairDARTS-C", "FairDARTS-D"]
    for variant, folders in runs.items():
        assert json.loads((out / folders[0] / "search" / "genotype.json").read_text())["layout"] == "small"
        assert (out / folders[0] / "eval.json").is_file(), variant


def test_gdas_search_in_s2_resumes_to_the_same_alpha(tiny_run, tmp_path, monkeypatch):
    """A GDAS search in S₂ (Gumbel samples, focal loss), killed after its first epoch and resumed from the run
    folder, draws the same samples and ends with the same α and architecture as an uninterrupted one."""
    from conftest import search_killed_and_resumed

    from ltnas import pipeline
    from ltnas.config import validate_config
    from ltnas.runs import RunFolder

    tiny_run["search"].update(method="gdas", space="s2", s2=TINY, epochs=2, longtail={"loss": "focal"})
    config = validate_config(tiny_run)

    def outcome(folder):
        state = torch.load(folder / "search" / "checkpoint.pt", weights_only=False)["task"]["strategy"]
        return ((folder / "search" / "alpha.jsonl").read_text(), (folder / "search" / "genotype.json").read_text(),
                state["network"]["alpha_layers"])

    pipeline.search_only(config, RunFolder.create(tmp_path / "whole", config))
    search_killed_and_resumed(config, tmp_path / "killed", monkeypatch, after_epoch=0)
    whole, resumed = outcome(tmp_path / "whole"), outcome(tmp_path / "killed")
    assert resumed[:2] == whole[:2] and torch.equal(resumed[2], whole[2])
    assert json.loads(whole[1])["space"] == "s2"


def test_second_order_step_keeps_the_weights_the_optimizer_trains(tiny_config_file):
    """S₂'s classifier is reached by two names (`classifier`, `head.classifier`); the α step's pass at the
    virtual weights w' must leave the network holding the very Parameters the weight optimizer updates."""
    config = load_config(tiny_config_file, ["search.space=s2", "search.s2.layout=small", "search.s2.width_mult=0.25",
                                            "search.order=second"])
    net = tiny_supernet()
    strategy = DartsSearch(net, config.search, torch.nn.functional.cross_entropy)
    batch = (torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0]))
    for _ in range(2):
        strategy.step(batch, batch)
        trained = {id(w) for group in strategy.w_optimizer.param_groups for w in group["params"]}
        assert trained == {id(w) for w in net.parameters()}
        assert net.classifier.weight is net.head.classifier.weight


def test_ltnas_search_in_s2_second_order_prints_the_layers(tiny_config_file, tmp_path):
    """`ltnas search` of a second-order DARTS search in S₂ prints the derived layers (no cell warning)."""
    out = tmp_path / "run"
    code, stdout, stderr = call(["search", str(tiny_config_file), "--set", "search.space=s2", "--set",
                                 "search.s2.width_mult=0.25", "--set", "search.order=second", "--set",
                                 "search.epochs=1", "--out", str(out), "--no-progress"])
    assert code == 0, stderr
    assert "warning" not in stderr
    assert MobileArch.from_json(out / "search" / "genotype.json").describe() in stdout.splitlines()


def test_table2_comparison_files_hold_both_fairdarts_models_and_darts():
    """FairDARTS-D and -C differ only in the derivation threshold; the paper's three numbers sit beside them."""
    from ltnas.cli import resolve_config_path
    from ltnas.compare import read_comparison_file
    from ltnas.config import load_config, shipped_configs

    for name, thresholds in (("fairdarts_s2_table2", (0.75, 0.8)), ("fairdarts_s2_table2_smoke", (0.5, 0.55))):
        spec = read_comparison_file(shipped_configs()[name], resolve_config_path)
        configs = {variant: load_config(spec.base, changes) for variant, changes in spec.variants.items()}
        assert {v: c.search.method for v, c in configs.items()} == {
            "FairDARTS-D": "fairdarts", "FairDARTS-C": "fairdarts", "DARTS": "darts"}
        assert (configs["FairDARTS-D"].search.threshold, configs["FairDARTS-C"].search.threshold) == thresholds
        assert all(c.search.space == "s2" for c in configs.values())
    assert spec.published is None
    published = read_comparison_file(shipped_configs()["fairdarts_s2_table2"], resolve_config_path).published
    assert published.values == {"FairDARTS-D": 75.6, "FairDARTS-C": 75.1, "DARTS": 66.4}
