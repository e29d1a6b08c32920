"""DARTS's ImageNet evaluation network (train.cell.stem: imagenet): sizes against the published ones, shapes,
and the model file that keeps it."""

from __future__ import annotations

import pytest
import torch

from ltnas.space import DiscreteNetwork, count_parameters, load_genotype
from ltnas.space.cost import multiply_adds, subnet_cost


def imagenet_network(genotype: str, auxiliary: bool = False) -> DiscreteNetwork:
    """DARTS's ImageNet size: C = 48, 14 cells, 1000 classes, 224-px images."""
    return DiscreteNetwork(load_genotype(genotype), 48, 1000, 14, auxiliary=auxiliary, image_size=224, stem="imagenet")


def test_darts_v2_imagenet_parameters_match_darts():
    # DARTS (Liu et al., 2019), Table 3: 4.7M; the authors' train_imagenet log prints "param size = 4.718752MB".
    model = imagenet_network("DARTS_V2", auxiliary=True)
    assert count_parameters(model) == 4_718_752
    assert count_parameters(model, include_auxiliary=True) > count_parameters(model)


def test_fairdarts_b_imagenet_cost_matches_fairdarts_table_2():
    # FairDARTS (Chu et al., 2020), Table 2: FairDARTS-B 4.8M parameters, 541M multiply-adds.
    params, madds = subnet_cost(load_genotype("FairDARTS_b"), 48, 14, 1000, 3, 224, stem="imagenet")
    assert abs(params - 4.8e6) < 0.1e6
    assert round(madds / 1e6) == 541


def test_fairdarts_a_imagenet_cost_of_the_zoo_cell():
    # Table 2 prints 3.6M / 417M for FairDARTS-A; the zoo's FairDARTS_a cell gives 3.47M / 395M here (at CIFAR
    # size it gives 2.36M / 371M against Table 1's 2.8M / 373M): recorded, not matched (README, "ImageNet").
    params, madds = subnet_cost(load_genotype("FairDARTS_a"), 48, 14, 1000, 3, 224, stem="imagenet")
    assert (params, round(madds / 1e6)) == (3_472_000, 395)


def test_imagenet_stems_follow_darts():
    model = imagenet_network("DARTS_V2")
    convs0 = [m for m in model.stem0 if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs0] == [(3, 24, (2, 2)), (24, 48, (2, 2))]
    assert [type(m).__name__ for m in model.stem0] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d"]
    assert [type(m).__name__ for m in model.stem1] == ["ReLU", "Conv2d", "BatchNorm2d"]
    assert model.stem1[1].stride == (2, 2) and not hasattr(model, "stem")
    assert type(model.cells[0].preprocess0).__name__ == "FactorizedReduce"  # reduction_prev on the first cell
    assert [i for i, cell in enumerate(model.cells) if cell.reduction] == [4, 9]


def test_imagenet_network_shapes_at_224():
    model = imagenet_network("DARTS_V2", auxiliary=True)
    sizes = {}

    def record(name):
        def hook(module, inputs, output):
            sizes[name] = output.shape[-1]
        return hook

    model.stem1.register_forward_hook(record("stem1"))
    model.cells[9].register_forward_hook(record("cell9"))
    model.train()
    with torch.no_grad():
        logits, aux = model(torch.randn(2, 3, 224, 224))
    assert logits.shape == aux.shape == (2, 1000)
    assert sizes == {"stem1": 28, "cell9": 7}  # the auxiliary head (after cell 2L//3) sees 7 × 7
    assert isinstance(model.auxiliary_head.features[1], torch.nn.AvgPool2d)  # DARTS's pool 5, stride 2


@pytest.mark.parametrize("in_channels,size", [(1, 16), (3, 32), (3, 40)])
def test_imagenet_network_small_sizes(in_channels, size):
    model = DiscreteNetwork(load_genotype("FairDARTS_a"), 8, 5, 5, auxiliary=True, in_channels=in_channels,
                            image_size=size, stem="imagenet")
    x = torch.randn(2, in_channels, size, size)
    model.train()
    logits, aux = model(x)
    assert logits.shape == aux.shape == (2, 5)
    model.eval()
    assert model(x).shape == (2, 5)
    (logits.sum() + aux.sum()).backward()
    assert all(p.grad is not None for p in model.stem0.parameters())


def test_imagenet_network_costs_less_than_the_cifar_one_at_the_same_size():
    cifar = DiscreteNetwork(load_genotype("DARTS_V2"), 8, 5, 5, image_size=32)
    imagenet = DiscreteNetwork(load_genotype("DARTS_V2"), 8, 5, 5, image_size=32, stem="imagenet")
    assert multiply_adds(imagenet, 3, 32) < multiply_adds(cifar, 3, 32) / 20  # 8× down-sampled before the cells


def test_unknown_stem_is_refused():
    from ltnas.config import validate_config
    from ltnas.errors import LtnasError

    with pytest.raises(LtnasError, match="stem"):
        DiscreteNetwork(load_genotype("DARTS_V2"), 8, 5, 5, stem="mobile")
    with pytest.raises(LtnasError, match="train.cell.stem"):
        validate_config({"train": {"network": "resnet20", "cell": {"stem": "imagenet"}}})
    with pytest.raises(LtnasError, match="stem"):
        validate_config({"train": {"cell": {"stem": "imagenett"}}})


def test_model_file_keeps_the_imagenet_network(tmp_path):
    from ltnas.model_io import Preprocess, build_network, genotype_network_spec, load_model, save_model

    genotype = load_genotype("DARTS_V2")
    spec = genotype_network_spec(genotype, 8, 5, 5, True, 3, 32, stem="imagenet")
    model = build_network(spec)
    assert hasattr(model, "stem0")
    save_model(tmp_path / "model.pt", spec, model.state_dict(), list("abcde"), Preprocess(32, 3, (0.5,) * 3, (0.2,) * 3))
    loaded = load_model(tmp_path / "model.pt")
    x = torch.randn(1, 3, 32, 32)
    model.eval()
    torch.testing.assert_close(loaded.model(x), model(x))
    # a file written before the stem existed has no "stem" and is the CIFAR network
    old = {**spec, "kwargs": {k: v for k, v in spec["kwargs"].items() if k != "stem"}}
    assert hasattr(build_network(old), "stem")
