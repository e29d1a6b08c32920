"""SSF-NAS: the two-view augmentation, the projector, how Barlow Twins enters the search, resume."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_RUN

from ltnas import pipeline
from ltnas.config import SearchConfig, ViewsConfig, validate_config
from ltnas.data.views import ViewAugment, gaussian_blur, grayscale, hue_shift, resized_crop, solarize
from ltnas.errors import LtnasError
from ltnas.runs import RunFolder
from ltnas.methods import METHODS
from ltnas.search import DartsSearch, FairDartsSearch, Projector, SsfSearch
from ltnas.search.ssf import BarlowTwins, with_barlow_twins
from ltnas.search.task import SearchTask
from ltnas.space import SearchNetwork

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------ the views


def test_views_have_the_input_shape_and_follow_the_generator():
    x = torch.randn(6, 3, 12, 12)
    augment = ViewAugment(ViewsConfig(), MEAN, STD)
    a1, a2 = augment(x, generator(3))
    b1, b2 = augment(x, generator(3))
    assert a1.shape == a2.shape == x.shape
    assert torch.equal(a1, b1) and torch.equal(a2, b2)  # the generator is the only randomness
    assert not torch.allclose(a1, a2) and not torch.allclose(a1, x)


def test_views_map_back_to_pixels_and_normalise_again(monkeypatch):
    """With every transform off (and the crop made the identity), each view is the input itself."""
    import ltnas.data.views as views

    monkeypatch.setattr(views, "resized_crop", lambda x, *args, **kwargs: x)
    pixels = torch.rand(4, 3, 8, 8)
    x = (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    off = ViewsConfig(flip=False, jitter=0, grayscale=0, blur=(0, 0), solarize=(0, 0))
    v1, v2 = ViewAugment(off, MEAN, STD)(x, generator())
    torch.testing.assert_close(v1, x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v2, x, atol=1e-5, rtol=1e-5)


def test_full_crop_without_flip_is_the_identity_and_flip_mirrors():
    x = torch.rand(5, 3, 8, 8)
    torch.testing.assert_close(resized_crop(x, (1.0, 1.0), False, generator(), ratio=(1.0, 1.0)), x)
    flipped = resized_crop(x, (1.0, 1.0), True, generator(1), ratio=(1.0, 1.0))
    for sample in range(5):  # each sample is either itself or its mirror image
        assert torch.allclose(flipped[sample], x[sample], atol=1e-6) or \
            torch.allclose(flipped[sample], x[sample].flip(-1), atol=1e-6)


def test_solarize_grayscale_and_hue_against_their_formulas():
    x = torch.tensor([0.1, 0.5, 0.9]).view(1, 3, 1, 1)
    torch.testing.assert_close(solarize(x).flatten(), torch.tensor([0.1, 0.5, 0.1]))
    luma = 0.299 * 0.1 + 0.587 * 0.5 + 0.114 * 0.9
    torch.testing.assert_close(grayscale(x).flatten(), torch.full((3,), luma))
    one_channel = torch.rand(2, 1, 4, 4)
    assert torch.equal(grayscale(one_channel), one_channel)

    rgb = torch.rand(3, 3, 5, 5)
    torch.testing.assert_close(hue_shift(rgb, torch.zeros(3)), rgb, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hue_shift(rgb, torch.ones(3)), rgb, atol=1e-5, rtol=1e-5)  # a full turn
    half = hue_shift(rgb, torch.full((3,), 0.5))
    torch.testing.assert_close(grayscale(half), grayscale(rgb), atol=1e-5, rtol=1e-5)  # luma is kept
    assert not torch.allclose(half, rgb, atol=1e-3)


def test_blur_keeps_flat_images_and_smooths_noise():
    flat = torch.full((2, 3, 10, 10), 0.7)
    torch.testing.assert_close(gaussian_blur(flat, generator()), flat)
    noise = torch.rand(2, 3, 10, 10)
    blurred = gaussian_blur(noise, generator())
    assert blurred.shape == noise.shape and blurred.std() < noise.std()


def test_single_channel_views_skip_the_colour_steps():
    x = torch.randn(4, 1, 8, 8)
    v1, v2 = ViewAugment(ViewsConfig(flip=False), (0.5,), (0.25,))(x, generator())
    assert v1.shape == v2.shape == x.shape and torch.isfinite(v1).all()


# -------------------------------------------------------------------------------- the strategy


def test_projector_is_linear_bn_relu_twice_then_linear():
    projector = Projector(12, [32, 16, 8])
    kinds = [type(layer).__name__ for layer in projector]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert projector(torch.randn(5, 12)).shape == (5, 8)


def ssf(placement: str = "add", arch_step: bool = False, seed: int = 0) -> SsfSearch:
    torch.manual_seed(seed)
    # No clipping: a global gradient-norm clip would couple every gradient's scale to the labels.
    config = SearchConfig(method="ssf", epochs=2, sgd={"grad_clip": 1e9},
                          ssl={"placement": placement, "arch_step": arch_step, "projector": [16, 16]})
    network = SearchNetwork(4, 3, 3, primitives=config.cell.primitives, nodes=2, relaxation="sigmoid")
    return SsfSearch(network, config, F.cross_entropy, views=ViewAugment(config.ssl.views, MEAN, STD),
                     generator=generator(seed))


def weight_step_gradients(strategy, x, y, views_seed: int = 5) -> dict[str, torch.Tensor]:
    """The gradients one weight step leaves on the supernet (by name) and the projector ("projector.*"),
    with the views drawn from `views_seed`; the step is undone."""
    state = copy.deepcopy(strategy.state_dict())
    strategy.generator.manual_seed(views_seed)
    strategy.weight_step((x, y))
    grads = {name: p.grad.clone() for name, p in strategy.network.named_parameters() if p.grad is not None}
    grads |= {f"projector.{name}": p.grad.clone() for name, p in strategy.projector.named_parameters()
              if p.grad is not None}
    strategy.load_state_dict(state)  # undo the step
    return grads


X = torch.randn(8, 3, 8, 8, generator=generator(11))
Y, OTHER_Y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), torch.tensor([2, 0, 1, 1, 2, 0, 2, 0])


# placement → (the labels reach the supernet's weights, Barlow Twins reaches them, BT reaches α)
READINGS = {"add": (True, True, False), "replace": (False, True, False), "arch": (True, False, True)}


@pytest.mark.parametrize("placement", READINGS)
def test_each_placement_decides_which_losses_reach_which_gradients(placement):
    labels_reach_backbone, ssl_reaches_backbone, ssl_reaches_alpha = READINGS[placement]
    strategy = ssf(placement)
    grads = weight_step_gradients(strategy, X, Y)
    relabelled = weight_step_gradients(strategy, X, OTHER_Y)
    other_views = weight_step_gradients(strategy, X, Y, views_seed=6)
    backbone = [name for name, _ in strategy.network.named_parameters()
                if name in grads and not name.startswith("classifier")]
    projector = [name for name in grads if name.startswith("projector.")]
    assert backbone and len(projector) == len(list(strategy.projector.parameters()))

    def same(a, b, names):
        return all(torch.allclose(a[n], b[n]) for n in names)

    assert (not same(grads, relabelled, backbone)) == labels_reach_backbone
    assert (not same(grads, other_views, backbone)) == ssl_reaches_backbone
    assert not same(grads, relabelled, ["classifier.weight"])  # the classifier always learns the labels
    assert same(grads, relabelled, projector)  # the projector learns from the views alone, in every reading
    assert not same(grads, other_views, projector)

    fair = FairDartsSearch(strategy.network, strategy.config, F.cross_entropy)
    ours, plain = strategy.arch_gradients((X, Y), (X, Y)), fair.arch_gradients((X, Y), (X, Y))
    assert (not all(torch.allclose(a, b) for a, b in zip(ours, plain))) == ssl_reaches_alpha


def test_arch_placement_alpha_gradient_is_fairdarts_plus_the_barlow_twins_term():
    """arch: ∇α = ∇α (L_val + w01·L01) + ∇α (w·BT/D on two views of the validation batch); the weight step's
    supernet gradients are FairDARTS' own (BT reaches only the projector there)."""
    strategy = ssf("arch")
    val = (torch.randn(8, 3, 8, 8, generator=generator(12)), Y)
    fair = FairDartsSearch(strategy.network, strategy.config, F.cross_entropy)
    strategy.generator.manual_seed(3)
    ours = strategy.arch_gradients(val, val)
    strategy.generator.manual_seed(3)
    bt = torch.autograd.grad(strategy.barlow_twins_term(val[0]), strategy.alphas, allow_unused=True,
                             materialize_grads=True)
    for got, plain, term in zip(ours, fair.arch_gradients(val, val), bt):
        torch.testing.assert_close(got, plain + term)
        assert term.abs().sum() > 0

    grads = weight_step_gradients(strategy, X, Y)
    state = copy.deepcopy(fair.state_dict())
    fair.weight_step((X, Y))
    for name, p in strategy.network.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(grads[name], p.grad)
    fair.load_state_dict(state)


def test_weight_step_reports_both_losses_and_trains_the_projector():
    strategy = ssf("add")
    before = [p.detach().clone() for p in strategy.projector.parameters()]
    out = strategy.step((torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))),
                        (torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))))
    assert set(out) == {"loss", "ssl_loss", "correct", "count"} and out["ssl_loss"] > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, strategy.projector.parameters()))
    assert not any(p is a for p in strategy.weights for a in strategy.alphas)  # α never in the weight step


@pytest.mark.parametrize("placement,arch_step", [("add", False), ("add", True), ("replace", True), ("arch", False)])
def test_barlow_twins_enters_the_alpha_step_only_when_asked(placement, arch_step):
    strategy = ssf(placement, arch_step=arch_step)
    fair = FairDartsSearch(strategy.network, strategy.config, F.cross_entropy)
    val = (torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,)))
    ours = strategy.arch_gradients(val, val)
    plain = fair.arch_gradients(val, val)
    same = all(torch.allclose(a, b) for a, b in zip(ours, plain))
    assert same == (placement != "arch" and not arch_step)


def test_ssf_alpha_optimizer_uses_fairdarts_betas():
    assert ssf().a_optimizer.param_groups[0]["betas"] == (0.9, 0.999)  # FairDARTS code: arch_lr_gamma 0.9


def test_ssf_config_defaults_and_checks():
    config = SearchConfig(method="ssf")
    assert config.batch_size == 128 and config.derive == "threshold" and "none" not in config.cell.primitives
    assert config.ssl.placement == "add" and config.ssl.lambd == 0.0051 and config.ssl.arch_step is False
    assert config.ssl.enabled and not SearchConfig(method="fairdarts").ssl.enabled
    # `mode`, the key's name before `placement`, is still read (configs and run folders written before)
    assert SearchConfig(method="ssf", ssl={"mode": "replace"}).ssl.placement == "replace"
    with pytest.raises(ValueError, match="old name of ssl.placement"):
        SearchConfig(method="ssf", ssl={"mode": "replace", "placement": "arch"})
    with pytest.raises(ValueError, match="placement"):
        SearchConfig(method="ssf", ssl={"placement": "both"})
    with pytest.raises(ValueError, match="always searches with Barlow Twins"):
        SearchConfig(method="ssf", ssl={"enabled": False})
    with pytest.raises(ValueError, match="first"):
        SearchConfig(method="ssf", order="second")
    with pytest.raises(ValueError, match="projector"):
        SearchConfig(ssl={"projector": []})
    with pytest.raises(ValueError, match="crop_scale"):
        ViewsConfig(crop_scale=(0.8, 0.2))
    unchecked = SearchConfig.model_construct(method="ssf", order="second")  # as API users could build it
    with pytest.raises(LtnasError, match="first"):
        SsfSearch(SearchNetwork(2, 3, 3), unchecked, F.cross_entropy, views=ViewAugment(ViewsConfig(), MEAN, STD),
                  generator=generator())


# ------------------------------------------------------- Barlow Twins with any DARTS-style strategy


OPTIONAL = [name for name, entry in METHODS.items() if entry.barlow_twins == "option"]


def test_barlow_twins_is_an_option_of_every_darts_style_search_and_of_no_other():
    assert set(OPTIONAL) == {"darts", "fairdarts", "pcdarts", "gdas", "darts_noise"}
    for name, entry in METHODS.items():
        if entry.barlow_twins == "no":
            with pytest.raises(ValueError, match="has no weight and α steps for Barlow Twins"):
                SearchConfig(method=name, ssl={"enabled": True})
    with pytest.raises(ValueError, match="first-order"):
        SearchConfig(method="darts", order="second", ssl={"enabled": True})
    assert SearchConfig(method="darts", order="second").order == "second"  # without BT second order stays
    assert with_barlow_twins(FairDartsSearch) is SsfSearch and with_barlow_twins(SsfSearch) is SsfSearch
    assert with_barlow_twins(DartsSearch) is with_barlow_twins(DartsSearch)  # one class per strategy


@pytest.mark.parametrize("name", OPTIONAL)
def test_each_strategy_with_barlow_twins_steps_and_trains_its_projector(name):
    config = SearchConfig(method=name, epochs=2, ssl={"enabled": True, "projector": [8, 8]},
                          pcdarts={"arch_start_epoch": 0})
    entry = METHODS[name]
    plain, composed = entry.strategy_class(), entry.strategy_class(config)
    assert issubclass(composed, BarlowTwins) and issubclass(composed, plain) and composed is not plain
    assert entry.strategy_class(SearchConfig(method=name)) is plain  # off: the method's own strategy
    torch.manual_seed(0)
    network = SearchNetwork(4, 3, 3, primitives=config.cell.primitives, nodes=2, **composed.network_options(config))
    strategy = composed(network, config, F.cross_entropy, views=ViewAugment(config.ssl.views, MEAN, STD),
                        generator=generator())
    strategy.set_epoch(0)
    before = [p.detach().clone() for p in strategy.projector.parameters()]
    out = strategy.step((X, Y), (X, OTHER_Y))
    assert out["ssl_loss"] > 0 and math.isfinite(out["loss"])
    assert any(not torch.equal(b, p) for b, p in zip(before, strategy.projector.parameters()))


def test_darts_with_barlow_twins_weight_gradient_is_darts_plus_the_barlow_twins_term():
    """DARTS + BT (add): the weight step's supernet gradient = DARTS's ∇w L_sup + ∇w (w·BT/D)."""
    torch.manual_seed(0)
    config = SearchConfig(method="darts", sgd={"grad_clip": 1e9}, ssl={"enabled": True, "projector": [16, 16]})
    network = SearchNetwork(4, 3, 3, primitives=config.cell.primitives, nodes=2)
    strategy = METHODS["darts"].strategy_class(config)(
        network, config, F.cross_entropy, views=ViewAugment(config.ssl.views, MEAN, STD), generator=generator())
    grads = weight_step_gradients(strategy, X, Y, views_seed=5)
    plain = DartsSearch(network, config, F.cross_entropy)
    supervised = dict(zip((n for n, _ in network.named_parameters()),
                          torch.autograd.grad(F.cross_entropy(network(X), Y), list(network.parameters()),
                                              allow_unused=True, materialize_grads=True)))
    strategy.generator.manual_seed(5)
    term = dict(zip((n for n, _ in network.named_parameters()),
                    torch.autograd.grad(strategy.barlow_twins_term(X), list(network.parameters()),
                                        allow_unused=True, materialize_grads=True)))
    backbone = [n for n, _ in network.named_parameters() if not n.startswith("classifier")]
    assert any(term[n].abs().sum() > 0 for n in backbone)
    for n in backbone:
        torch.testing.assert_close(grads[n], supervised[n] + term[n])
    assert plain.relaxation == type(strategy).relaxation == "softmax"  # still DARTS's relaxation


# -------------------------------------------------------------------------------- end to end


def ssf_config(epochs: int = 2, **ssl):
    raw = copy.deepcopy(TINY_RUN)
    raw["search"].update(method="ssf", threshold=0.5, arch_lr=0.05, epochs=epochs,
                         ssl={"projector": [16, 16], **ssl}, arch_objective="logit_adjusted")
    raw["train"]["epochs"] = 1
    return validate_config(raw)


@pytest.fixture(scope="module")
def ssf_run(tmp_path_factory) -> tuple[RunFolder, dict]:
    """One whole SSF-NAS run (2 search epochs, label loss replacing the weight step's): its folder and results."""
    config = ssf_config(placement="replace")
    run = RunFolder.create(tmp_path_factory.mktemp("ssf") / "run", config)
    return run, pipeline.run_all(config, run)


def test_ssf_runs_end_to_end_and_logs_its_ssl_loss(ssf_run):
    run, results = ssf_run
    rows = [json.loads(line) for line in (run.search / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(row["train_ssl_loss"]) and row["train_ssl_loss"] > 0 for row in rows)
    assert results["balanced_test"]["num_samples"] == 40
    plots = {p.stem for p in (run.path / "plots").iterdir()}
    assert {"sigma_histogram", "dominant_ops", "search_genotype"} <= plots


def test_ssf_search_resumes_to_the_same_state(ssf_run, tmp_path, monkeypatch):
    """The views' generator is part of the checkpoint: a resumed SSF search ends as the uninterrupted
    one of `ssf_run` (same config)."""
    config = ssf_config(placement="replace")
    straight = ssf_run[0]

    original = SearchTask.after_epoch

    def kill_after_first(self, epoch, folder):
        original(self, epoch, folder)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(SearchTask, "after_epoch", kill_after_first)
    resumed = RunFolder.create(tmp_path / "resumed", config)
    with pytest.raises(KeyboardInterrupt):
        pipeline.search(pipeline.Context.prepare(config, resumed))
    monkeypatch.setattr(SearchTask, "after_epoch", original)
    pipeline.search(pipeline.Context.prepare(config, RunFolder.open(resumed.path)))

    def alpha(run):
        return (run.search / "alpha.jsonl").read_text()

    assert alpha(resumed) == alpha(straight)
