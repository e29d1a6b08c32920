"""IMB-NAS: path sampling, path execution, subnet export, evolution, adaptation (P0–P3), end to end."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_RUN

from ltnas import pipeline
from ltnas.cli import main, resolve_config_path
from ltnas.config import EvolveConfig, RunConfig, SupernetConfig, load_config, validate_config
from ltnas.data import build_dataset
from ltnas.errors import LtnasError
from ltnas.methods import method, resolve
from ltnas.runs import RunFolder
from ltnas.search.evolution import EvolutionTask, crossover, mutate, subnet_cost
from ltnas.search.oneshot import (
    PathSpace, SupernetPath, export_subnet, load_supernet, path_forward, path_key, recalibrate_bn, save_supernet,
)
from ltnas.space import Genotype, SearchNetwork, count_parameters
from ltnas.stages.imbnas import adapt_supernet, supernet_key, without_later_defaults
from ltnas.train.loop import fit

OPS = [name for name in SupernetConfig().cell.primitives]  # the 7 DARTS operations without `none`

# A tiny IMB-NAS run: source = 6 balanced synthetic classes, target = 4 long-tailed ones (other classes).
TINY_IMBNAS = {
    **copy.deepcopy(TINY_RUN),
    "source_data": {"source": "synthetic", "num_classes": 6, "channels": 3, "image_size": 8, "n_max": 30,
                    "test_per_class": 5, "profile": "balanced", "val_fraction": 0.3,
                    "augment": {"crop_padding": 1, "flip": True, "cutout": 0}},
    "search": {"method": "imbnas"},
    "supernet": {"cell": {"init_channels": 4, "layers": 3}, "epochs": 2, "batch_size": 16,
                 "sgd": {"lr_milestones": [1]},
                 "augment": {"crop_padding": 1, "flip": True, "cutout": 0}},
    "evolve": {"population": 4, "generations": 2, "crossover": 2, "mutation": 2, "parents": 2, "bn_batches": 1,
               "bn_batch_size": 16},
    "adapt": {"epochs": 2, "batch_size": 16, "sgd": {"lr_milestones": [1]},
              "finetune_longtail": {"reweight": "drw", "drw_epoch": 1}},
}
TINY_IMBNAS["data"] = {**TINY_IMBNAS["data"], "val_fraction": 0.3}
TINY_IMBNAS["train"] = {**TINY_IMBNAS["train"], "epochs": 1, "auxiliary": False}


def tiny_config(tmp_path: Path, *overrides: str) -> RunConfig:
    raw = copy.deepcopy(TINY_IMBNAS)
    raw["adapt"]["supernet_cache"] = str(tmp_path / "cache")
    path = tmp_path / "imbnas.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path, list(overrides))


def tiny_supernet(num_classes: int = 4, seed: int = 0) -> SearchNetwork:
    torch.manual_seed(seed)
    return SearchNetwork(4, num_classes, 3, primitives=OPS)


# --- paths ----------------------------------------------------------------------------------------
def test_sampled_paths_are_valid_genotypes_and_cover_every_op_and_input():
    space = PathSpace(4, OPS)
    rng = random.Random(0)
    ops_seen, inputs_seen = {"normal": set(), "reduce": set()}, set()
    for _ in range(300):
        path = space.sample(rng)
        space.check(path)
        assert Genotype.from_dict(path.to_dict()) == path  # a genotype through and through (JSON round trip)
        for kind in ("normal", "reduce"):
            edges = getattr(path, kind)
            assert len(edges) == 8 and path.cell(kind)[1] == (2, 3, 4, 5)
            for node in range(2, 6):
                sources = [e.from_node for e in edges if e.to_node == node]
                assert len(sources) == 2 and len(set(sources)) == 2 and max(sources) < node
            ops_seen[kind] |= {e.op for e in edges}
            inputs_seen |= {(e.to_node, e.from_node) for e in edges}
    assert ops_seen["normal"] == ops_seen["reduce"] == set(OPS)
    assert inputs_seen == {(node, source) for node in range(2, 6) for source in range(node)}  # all 14 edges


def test_none_is_never_sampled_and_bad_paths_are_refused():
    space = PathSpace(2, ["none", "skip_connect", "avg_pool_3x3"])
    assert space.ops == ("skip_connect", "avg_pool_3x3")
    one_input = Genotype.from_dict({"normal": [["skip_connect", 2, 0]], "normal_concat": [2],
                                    "reduce": [["skip_connect", 2, 0]], "reduce_concat": [2]})
    with pytest.raises(LtnasError, match="two distinct inputs"):
        space.check(one_input)
    outside = space.sample(random.Random(0)).to_dict()
    outside["normal"][0][0] = "sep_conv_5x5"
    with pytest.raises(LtnasError, match="outside the supernet"):
        space.check(Genotype.from_dict(outside))


def test_a_path_runs_only_its_own_operations():
    network = tiny_supernet()
    path = PathSpace.of(network).sample(random.Random(1))
    called = set()
    for cell_index, cell in enumerate(network.cells):
        for edge_index, edge in enumerate(cell.edges):
            for op_index, op in enumerate(edge.ops):
                op.register_forward_hook(lambda m, i, o, key=(cell_index, edge_index, op_index): called.add(key))
    path_forward(network, torch.randn(2, 3, 8, 8), path)
    from ltnas.search.oneshot import edge_index

    expected = set()
    for cell_index, cell in enumerate(network.cells):
        for e in (path.reduce if cell.reduction else path.normal):
            expected.add((cell_index, edge_index(e.to_node, e.from_node), network.primitives.index(e.op)))
    assert called == expected and len(called) == 3 * 8


@pytest.mark.parametrize("layers", [3, 2])  # with 2 layers the first cell already reduces
def test_exported_subnet_computes_what_the_supernet_path_computes(layers):
    torch.manual_seed(0)
    network = SearchNetwork(4, 4, layers, primitives=OPS)
    space = PathSpace.of(network)
    rng = random.Random(3)
    with torch.no_grad():  # non-trivial weights and BN statistics
        for parameter in network.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    x = torch.randn(5, 3, 8, 8)
    for _ in range(4):
        path = space.sample(rng)
        network.train()
        recalibrate_bn(SupernetPath(network, path), [(torch.randn(8, 3, 8, 8), None)], 1)
        network.eval()
        subnet = export_subnet(network, path).eval()
        assert torch.allclose(subnet(x), path_forward(network, x, path), atol=1e-5)
        # the same parameter count as the genotype's own DiscreteNetwork, plus nothing but identity BN affines
        assert count_parameters(subnet) >= count_parameters(type(subnet)(path, 4, network.num_classes, layers))


def test_bn_recalibration_replaces_running_statistics_by_the_batch_average():
    network = tiny_supernet()
    path = PathSpace.of(network).sample(random.Random(0))
    batches = [(torch.randn(8, 3, 8, 8) + 3.0, None), (torch.randn(8, 3, 8, 8) + 3.0, None)]
    recalibrate_bn(SupernetPath(network, path), batches, 2)
    stem_bn = network.stem[1]
    with torch.no_grad():
        means = [network.stem[0](x).mean(dim=(0, 2, 3)) for x, _ in batches]
    assert torch.allclose(stem_bn.running_mean, (means[0] + means[1]) / 2, atol=1e-5)
    assert stem_bn.momentum == 0.1  # restored


# --- evolution ------------------------------------------------------------------------------------
def test_crossover_and_mutation_keep_paths_valid():
    space = PathSpace(4, OPS)
    rng = random.Random(0)
    for _ in range(200):
        a, b = space.sample(rng), space.sample(rng)
        child = crossover(space, a, b, rng)
        space.check(child)
        genes_a, genes_b, genes_child = space.genes(a), space.genes(b), space.genes(child)
        for kind in genes_child:
            assert all(g in (ga, gb) for g, ga, gb in zip(genes_child[kind], genes_a[kind], genes_b[kind]))
        space.check(mutate(space, a, 0.5, rng))
    a = space.sample(rng)
    assert path_key(mutate(space, a, 0.0, rng)) == path_key(a)
    assert path_key(mutate(space, a, 1.0, rng)) != path_key(a)


class OpCountingEvolution(EvolutionTask):
    """Synthetic task: fitness = share of edges that use sep_conv_3x3 (the clearly better op)."""

    calls = 0

    def fitness(self, path):
        self.calls += 1
        edges = path.normal + path.reduce
        return sum(e.op == "sep_conv_3x3" for e in edges) / len(edges)

    def images_per_candidate(self):
        return 0  # no images: the fitness is computed from the path alone


def _op_counting(network, config, seed=0, cost=lambda path: (1, 1)):
    return OpCountingEvolution(network, config, None, None, [], cost, seed)


def test_evolution_improves_the_best_fitness_where_one_op_is_clearly_better(tmp_path):
    config = EvolveConfig(population=12, generations=8, crossover=5, mutation=5, parents=4, mutation_prob=0.15)
    task = _op_counting(tiny_supernet(), config)
    rows = fit(task, config.generations, tmp_path / "evolve")
    best = [row["best_fitness"] for row in rows]
    assert best == sorted(best) and best[-1] > best[0] + 0.2
    assert rows[-1]["mean_fitness"] > rows[0]["mean_fitness"] + 0.2
    # deduplicated: each candidate scored once; the history holds them all
    assert task.calls == len(task.candidates) == rows[-1]["evaluated"]
    lines = (tmp_path / "evolve" / "candidates.jsonl").read_text().splitlines()
    assert len(lines) == len(task.candidates)
    assert len({json.dumps(json.loads(line)["genotype"]) for line in lines}) == len(lines)
    assert Genotype.from_json(tmp_path / "evolve" / "genotype.json").to_dict()["normal"] == \
        task.best().to_dict()["normal"]


def test_evolution_resumes_to_the_same_candidates(tmp_path):
    config = EvolveConfig(population=6, generations=3, crossover=2, mutation=2, parents=3)
    straight = _op_counting(tiny_supernet(), config)
    fit(straight, 3, tmp_path / "straight")
    fit(_op_counting(tiny_supernet(), config), 1, tmp_path / "killed")  # killed after one generation
    resumed = _op_counting(tiny_supernet(), config)
    fit(resumed, 3, tmp_path / "killed")
    assert list(resumed.candidates) == list(straight.candidates)


def test_evolution_respects_the_parameter_budget(tmp_path):
    network = tiny_supernet()

    def cost(path):
        return subnet_cost(path, 4, 3, 4, 3, 8)

    costs = [cost(PathSpace.of(network).sample(random.Random(s))) for s in range(10)]
    budget = sorted(params for params, _ in costs)[len(costs) // 2]
    madds_budget = sorted(madds for _, madds in costs)[len(costs) // 2]
    config = EvolveConfig(population=4, generations=2, crossover=2, mutation=2, parents=2, max_params=budget,
                          max_madds=madds_budget)
    task = _op_counting(network, config, cost=cost)
    fit(task, 2, tmp_path / "budget")
    assert task.candidates and all(record["params"] <= budget and record["madds"] <= madds_budget
                                   for record in task.candidates.values())
    tight = _op_counting(network, EvolveConfig(population=2, generations=1, crossover=1, mutation=1, parents=1,
                                               max_params=10), cost=cost)
    with pytest.raises(LtnasError, match="budget"):
        fit(tight, 1, tmp_path / "tight")


def test_subnet_cost_counts_parameters_and_multiply_adds():
    path = PathSpace(4, ["skip_connect"]).sample(random.Random(0))
    params, madds = subnet_cost(path, 4, 3, 10, 3, 8)
    from ltnas.space import DiscreteNetwork

    assert params == count_parameters(DiscreteNetwork(path, 4, 10, 3, in_channels=3, image_size=8))
    # the stem alone: 3×3 conv from 3 to 12 channels on 8×8 = 8·8·12·27 multiply-adds
    assert madds > 8 * 8 * 12 * 27
    # retrained with LDAM: the cosine classifier has no bias (10 fewer parameters), the same multiply-adds
    assert subnet_cost(path, 4, 3, 10, 3, 8, normalised=True) == (params - 10, madds)


# --- the supernet artefact and adaptation ---------------------------------------------------------
def test_supernet_file_round_trip_and_bad_files(tmp_path):
    network = tiny_supernet(num_classes=6)
    save_supernet(tmp_path / "s.pt", network, {"data": {"name": "x"}, "seed": 1})
    loaded, meta = load_supernet(tmp_path / "s.pt")
    assert meta == {"data": {"name": "x"}, "seed": 1}
    assert all(torch.equal(a, b) for a, b in zip(network.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(LtnasError, match="not found"):
        load_supernet(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(LtnasError, match="cannot read supernet"):
        load_supernet(tmp_path / "junk.pt")
    torch.save({"model": 1}, tmp_path / "other.pt")
    with pytest.raises(LtnasError, match="not an ltnas supernet"):
        load_supernet(tmp_path / "other.pt")


@pytest.mark.parametrize("procedure", ["P1", "P2"])
def test_adaptation_to_a_target_with_other_classes(tmp_path, procedure):
    """P1 leaves every backbone weight and BN statistic bit-identical; P2 changes them. Both give the
    supernet a new classifier for the target's 4 classes (the source has 6)."""
    config = tiny_config(tmp_path, f"adapt.procedure={procedure}")
    target = build_dataset(config.data, seed=0)
    network = tiny_supernet(num_classes=6)
    before = {k: v.clone() for k, v in network.state_dict().items() if not k.startswith("classifier")}
    adapt_supernet(network, config, target, tmp_path / "adapt", torch.device("cpu"))
    after = {k: v for k, v in network.state_dict().items() if not k.startswith("classifier")}
    identical = all(torch.equal(before[k], after[k]) for k in before)
    assert identical == (procedure == "P1")
    assert network.classifier.out_features == target.num_classes == 4
    assert path_forward(network, torch.randn(2, 3, 8, 8), PathSpace.of(network).sample(random.Random(0))).shape == (2, 4)


def test_imbnas_config_and_bad_input(tmp_path):
    config = tiny_config(tmp_path)
    assert resolve(method("imbnas").run).__name__ == "run_imbnas"
    assert supernet_key(config) == supernet_key(tiny_config(tmp_path, "adapt.procedure=P0", "data.ratio=2"))
    assert supernet_key(config) != supernet_key(tiny_config(tmp_path, "supernet.epochs=3"))
    assert supernet_key(config) != supernet_key(tiny_config(tmp_path, "seed=1"))
    # longtail.rw_lambda (added later) stays out of the key while unset, so cached supernets keep their key
    assert "rw_lambda" not in json.dumps(without_later_defaults(config.supernet.model_dump(mode="json")))
    drw = supernet_key(tiny_config(tmp_path, "supernet.longtail.reweight=drw"))
    assert drw != supernet_key(tiny_config(tmp_path, "supernet.longtail.reweight=drw", "supernet.longtail.rw_lambda=1.0"))
    with pytest.raises(LtnasError, match="source_data"):
        supernet_key(tiny_config(tmp_path, "source_data=null"))
    with pytest.raises(LtnasError, match="exceed the population"):
        tiny_config(tmp_path, "evolve.crossover=9")
    defaults = RunConfig()
    assert (defaults.evolve.population, defaults.evolve.generations, defaults.evolve.crossover,
            defaults.evolve.mutation, defaults.evolve.mutation_prob, defaults.evolve.parents) == (50, 20, 25, 25, 0.1, 10)
    supernet, adapt = defaults.supernet, defaults.adapt
    assert (supernet.epochs, supernet.sgd.lr, supernet.sgd.lr_milestones) == (500, 0.1, [300, 400])
    assert (adapt.epochs, adapt.sgd.lr, adapt.finetune_longtail.drw_epoch) == (200, 0.01, 100)


# --- end to end -----------------------------------------------------------------------------------
def test_p1_then_p0_share_one_source_supernet_end_to_end(tmp_path):
    results = {}
    for procedure in ("P1", "P0"):
        config = tiny_config(tmp_path, f"adapt.procedure={procedure}")
        results[procedure] = pipeline.run_all(config, RunFolder.create(tmp_path / procedure, config))
    cache = list((tmp_path / "cache").iterdir())
    assert len(cache) == 1  # trained once, by P1; P0 found it
    supernet_rows = (cache[0] / "metrics.jsonl").read_text().splitlines()
    assert len(supernet_rows) == TINY_IMBNAS["supernet"]["epochs"]
    for procedure, result in results.items():
        assert result["procedure"] == procedure and result["supernet"]["classes"] == 6
        assert len(result["balanced_test"]["per_class"]) == 4  # the target's classes
        assert result["cost"]["source_supernet"]["shared"] is True
        assert result["cost"]["evolve"]["images"] > 0 and result["cost"]["train"]["images"] > 0
        assert json.loads((tmp_path / procedure / "eval.json").read_text())["cost"] == result["cost"]
        report = (tmp_path / procedure / "report.md").read_text()
        assert "## IMB-NAS" in report and (tmp_path / procedure / "plots" / "evolution.png").is_file()
    assert "adapt" in results["P1"]["cost"] and "adapt" not in results["P0"]["cost"]


def test_cli_supernet_evolve_adapt_p3(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    raw = copy.deepcopy(TINY_IMBNAS)
    raw["evolve"]["generations"] = 1
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    assert main(["supernet", "train", "c.yaml", "--out", "sup", "--no-progress"]) == 0
    supernet_file = tmp_path / "sup" / "supernet" / "supernet.pt"
    _, meta = load_supernet(supernet_file)
    assert meta["data"]["name"] == "synthetic" and len(meta["data"]["classes"]) == 6  # trained on source_data
    assert meta["data_config"]["num_classes"] == 6 and meta["cost"]["images"] > 0
    assert main(["evolve", "--supernet", str(supernet_file), "--out", "evo", "--no-progress",
                 "--set", "evolve.population=4", "--set", "evolve.crossover=2", "--set", "evolve.mutation=2",
                 "--set", "evolve.parents=2", "--set", "evolve.generations=1"]) == 0
    assert Genotype.from_json(tmp_path / "evo" / "evolve" / "genotype.json")
    assert json.loads((tmp_path / "evo" / "data.json").read_text())["classes"].__len__() == 6
    assert main(["adapt", "c.yaml", "--procedure", "P3", "--out", "p3", "--no-progress"]) == 0
    result = json.loads((tmp_path / "p3" / "eval.json").read_text())
    assert result["procedure"] == "P3" and "supernet" in result["cost"] and "source_supernet" not in result["cost"]
    assert result["supernet"]["classes"] == 4  # P3's supernet is the target's
    capsys.readouterr()
    assert main(["adapt", "c.yaml", "--procedure", "P1", "--supernet", "missing.pt", "--out", "bad"]) == 2
    assert "supernet file" in capsys.readouterr().err and not (tmp_path / "bad").exists()


# --- shipped configs ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["imbnas_cifar100_table2", "imbnas_cifar100_table2_smoke"])
def test_table2_comparison_files_give_valid_run_configs(name):
    path = resolve_config_path(name)
    spec = yaml.safe_load(path.read_text())["compare"]
    base = yaml.safe_load(resolve_config_path(spec["base"]).read_text())
    assert set(spec["published"]["values"]) == set(spec["variants"]) and len(spec["variants"]) == 16
    for variant, overrides in spec["variants"].items():
        raw = copy.deepcopy(base)
        from ltnas.config import apply_override

        for item in overrides:
            apply_override(raw, item)
        config = validate_config(raw, source=f"{name}:{variant}")
        assert config.search.method == "imbnas" and config.adapt.procedure == variant.split("-")[0]


@pytest.mark.parametrize("sampling, paths_per_step", [("uniform", 1), ("sandwich", 3), ("attentive", 3)])
def test_supernet_sampling_strategies_train_and_count_images(sampling, paths_per_step):
    from ltnas.data import DeviceBatches, make_synthetic
    from ltnas.longtail import build_criterion
    from ltnas.config import LongTailConfig
    from ltnas.search.oneshot import SupernetTask

    images = make_synthetic(4, 3, 8, per_class=8).train
    config = SupernetConfig(cell={"init_channels": 4, "layers": 3}, epochs=1, batch_size=16,
                            sgd={"lr_milestones": []}, sampling=sampling, sandwich_random=1, attentive_candidates=2)
    network = tiny_supernet()
    batches = DeviceBatches(images, 16, device="cpu", mean=[0.5] * 3, std=[0.25] * 3,
                            generator=torch.Generator().manual_seed(0))
    task = SupernetTask(network, config.sgd, config, build_criterion(LongTailConfig(), [8] * 4, 1), batches, seed=0)
    before = [p.clone() for p in network.parameters()]
    row = task.run_epoch(0, lambda **_: None)
    # sandwich trains largest + smallest + 1 random path; attentive scores 2 and trains 1
    assert row["images"] == 32 * paths_per_step and row["train_loss"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, network.parameters()))
    if sampling == "sandwich":
        assert (task.sampler.largest, task.sampler.smallest) == ("sep_conv_5x5", "max_pool_3x3")


def test_killed_imbnas_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, "adapt.procedure=P2")
    straight = pipeline.run_all(config, RunFolder.create(tmp_path / "straight", config))

    original = EvolutionTask.run_epoch

    def killed_in_second_generation(self, epoch, on_step):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch, on_step)

    monkeypatch.setattr(EvolutionTask, "run_epoch", killed_in_second_generation)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_all(config, RunFolder.create(tmp_path / "killed", config))
    monkeypatch.setattr(EvolutionTask, "run_epoch", original)
    run = RunFolder.open(tmp_path / "killed")
    resumed = pipeline.run_all(run.config(), run)
    for name in ("evolve/candidates.jsonl", "train/genotype.json"):
        assert (tmp_path / "killed" / name).read_text() == (tmp_path / "straight" / name).read_text()
    assert resumed["balanced_test"] == straight["balanced_test"]
    rows = (tmp_path / "killed" / "evolve" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["epoch"] for row in rows] == [1, 2]  # generation 1 kept, generation 2 run once
