"""Evolutionary search over a trained supernet's paths (SPOS, Guo et al. 2020, as IMB-NAS uses it).

Generation 0 is `population` random paths. Every later generation is `mutation` children of
mutated parents plus `crossover` children of two crossed parents, filled up with random paths;
parents are the top-`parents` candidates seen so far. A candidate's fitness is the balanced
(mean per-class) validation accuracy of its inherited-weight subnet after BN recalibration.
Candidates are deduplicated (no path is scored twice) and may be held to a budget of parameters
and multiply-adds of the network that will be retrained. Each generation is an epoch of the shared
loop, so an evolution resumes after a kill; every scored candidate is kept in `candidates.jsonl`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

from ltnas.atomic import atomic_write_text
from ltnas.config import EvolveConfig
from ltnas.data import DeviceBatches
from ltnas.errors import LtnasError
from ltnas.evaluate import predict
from ltnas.metrics import classification_metrics
from ltnas.search.oneshot import PathSpace, SupernetPath, path_key, recalibrate_bn
from ltnas.space import Genotype, SearchNetwork
from ltnas.space.cost import subnet_cost  # noqa: F401 (the cost of a candidate; imported from here by stages)
from ltnas.train.loop import OnStep

# Random draws allowed per wanted candidate before a generation settles for fewer (a small space, or a
# budget few paths meet, can run out of new valid candidates).
TRIES_PER_CANDIDATE = 50


# --- variation ------------------------------------------------------------------------------------
def mutate(space: PathSpace, parent: Genotype, prob: float, rng: random.Random) -> Genotype:
    """Redraw each node's input pair, and each of its two operations, with probability `prob`."""
    genes = space.genes(parent)
    for kind, nodes in genes.items():
        for position, (node, gene) in enumerate(zip(space.node_ids, nodes)):
            sources = [source for source, _ in gene]
            ops = [op for _, op in gene]
            if rng.random() < prob:
                sources = rng.sample(range(node), 2)
            ops = [rng.choice(space.ops) if rng.random() < prob else op for op in ops]
            nodes[position] = tuple(zip(sources, ops))
    return space.from_genes(genes)


def crossover(space: PathSpace, first: Genotype, second: Genotype, rng: random.Random) -> Genotype:
    """Each node (inputs and operations together) comes from one parent or the other: always valid."""
    genes_a, genes_b = space.genes(first), space.genes(second)
    return space.from_genes({kind: [a if rng.random() < 0.5 else b for a, b in zip(genes_a[kind], genes_b[kind])]
                             for kind in genes_a})


# --- the search -----------------------------------------------------------------------------------
class EvolutionTask:
    """One generation per epoch of the shared loop."""

    name = "evolve"

    def __init__(self, network: SearchNetwork, config: EvolveConfig, recalibration: DeviceBatches,
                 validation: DeviceBatches, val_counts: list[int], cost: Callable[[Genotype], tuple[int, int]],
                 seed: int):
        self.network = network
        self.config = config
        self.space = PathSpace.of(network)
        self.recalibration = recalibration  # training images, shuffled by a generator reset per candidate
        self.validation = validation        # the held-out split, in order
        self.val_counts = val_counts
        self.cost = cost
        self.seed = seed
        self.rng = random.Random(seed)
        self.candidates: dict[str, dict[str, Any]] = {}  # path key → record, in the order scored

    def steps_per_epoch(self) -> int:
        return self.config.population

    # --- fitness ------------------------------------------------------------------------------
    def fitness(self, path: Genotype) -> float:
        model = SupernetPath(self.network, path)
        # Every candidate is recalibrated on the same batches: fair, and the same after a resume.
        self.recalibration.generator.manual_seed(self.seed)
        recalibrate_bn(model, self.recalibration, self.config.bn_batches)
        predictions, labels, _ = predict(model, self.validation)
        return classification_metrics(predictions, labels, self.network.num_classes, self.val_counts)["balanced"]

    def images_per_candidate(self) -> int:
        recalibrated = min(self.config.bn_batches, len(self.recalibration)) * self.recalibration.batch_size
        return min(recalibrated, self.recalibration.num_images) + self.validation.num_images

    # --- one generation -----------------------------------------------------------------------
    def run_epoch(self, epoch: int, on_step: OnStep) -> dict[str, Any]:
        config = self.config
        if epoch == 0:
            new = self._new_candidates(config.population, lambda: self.space.sample(self.rng), set())
        else:
            parents = [Genotype.from_dict(record["genotype"]) for record in self.ranked()[: config.parents]]
            taken: set[str] = set()
            new = self._new_candidates(config.mutation, lambda: mutate(
                self.space, self.rng.choice(parents), config.mutation_prob, self.rng), taken)
            new += self._new_candidates(config.crossover, lambda: crossover(
                self.space, *self._two(parents), self.rng), taken)
            new += self._new_candidates(config.population - len(new), lambda: self.space.sample(self.rng), taken)
        for path, (params, madds) in new:
            self.candidates[path_key(path)] = {
                "generation": epoch + 1, "fitness": self.fitness(path), "params": params, "madds": madds,
                "genotype": path.to_dict(),
            }
            on_step(fitness=self.candidates[path_key(path)]["fitness"])
        population = [self.candidates[path_key(path)]["fitness"] for path, _ in new]
        best = self.ranked()[0]
        return {
            "best_fitness": best["fitness"],
            "mean_fitness": sum(population) / len(population) if population else None,
            "population_best": max(population, default=None),
            "population": len(population),
            "evaluated": len(self.candidates),
            "best_params": best["params"],
            "best_madds": best["madds"],
            "images": len(population) * self.images_per_candidate(),
        }

    def _two(self, parents: list[Genotype]) -> tuple[Genotype, Genotype]:
        return tuple(self.rng.sample(parents, 2)) if len(parents) > 1 else (parents[0], parents[0])

    def _new_candidates(self, wanted: int, draw: Callable[[], Genotype], taken: set[str]):
        """Up to `wanted` paths never scored before, within the budget, with their (params, madds)."""
        found = []
        for _ in range(TRIES_PER_CANDIDATE * wanted):
            if len(found) == wanted:
                break
            path = draw()
            key = path_key(path)
            if key in self.candidates or key in taken:
                continue
            taken.add(key)
            params, madds = self.cost(path)
            if (self.config.max_params and params > self.config.max_params) or (
                    self.config.max_madds and madds > self.config.max_madds):
                continue
            found.append((path, (params, madds)))
        return found

    def ranked(self) -> list[dict[str, Any]]:
        """Every candidate scored, best first (ties: the earlier scored)."""
        if not self.candidates:
            raise LtnasError("no path of the supernet meets the budget (evolve.max_params / evolve.max_madds); "
                             "raise the budget or remove it")
        return sorted(self.candidates.values(), key=lambda record: -record["fitness"])

    def best(self) -> Genotype:
        record = self.ranked()[0]
        return Genotype.from_dict(record["genotype"], name="evolved")

    # --- artefacts and checkpoint -------------------------------------------------------------
    def after_epoch(self, epoch: int, folder: Path) -> None:
        self.best().to_json(folder / "genotype.json")
        atomic_write_text("".join(json.dumps(record) + "\n" for record in self.candidates.values()),
                          folder / "candidates.jsonl")

    def truncate_history(self, folder: Path, epochs_done: int) -> None:
        pass  # candidates.jsonl is rewritten whole from the checkpointed candidates after every generation

    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate(), "candidates": list(self.candidates.items())}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])
        self.candidates = dict(state["candidates"])
