"""`ltnas rank`: does an architecture's rank on balanced data predict its rank on long-tailed data?

IMB-NAS (Yao, 2024), after Duggal et al., rests on the claim that it does not, which is why a supernet
trained on balanced data must be adapted before its evolution can be trusted on imbalanced data. This
stage measures it for one set of architectures:

1. the architectures: `rank.paths` random paths of the one-shot space (seeded), or the final population
   (the last generation) of an evolution's `candidates.jsonl` (`rank.candidates`);
2. for each label distribution of `rank.distributions` (the `data` section with a profile and ratio of its
   own), a supernet is trained on that distribution with the `supernet` section (same seed, same recipe:
   only the labels' distribution differs), in RUN/rank/<label>/supernet/ (resumable);
3. every architecture is scored on every supernet as the evolution scores a candidate (inherited weights,
   BatchNorm recalibrated on the distribution's training part, balanced accuracy on its validation part:
   the fitness an evolution on that distribution would rank by);
4. for each pair of distributions, Kendall's τ-b and Spearman's ρ of the two scorings (ltnas.metrics),
   and a scatter of the ranks, one panel per pair.

Writes RUN/rank/rank.json (scores, correlations), RUN/rank/rank.md and RUN/rank/plots/rank_scatter.png.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

from ltnas.atomic import atomic_write_text
from ltnas.config import DataConfig, RunConfig
from ltnas.data import LongTailDataset, batches_of, build_dataset
from ltnas.errors import LtnasError
from ltnas.metrics import kendall_tau, spearman_rho
from ltnas.runs import RunFolder, resolve_device
from ltnas.search.evolution import EvolutionTask
from ltnas.search.oneshot import PathSpace, load_supernet, path_key, search_split, train_supernet
from ltnas.space import Genotype
from ltnas.stages.context import stage_seed
from ltnas.train.checkpoint import seed_everything
from ltnas.train.loop import ProgressReporter


def rank_architectures(config: RunConfig, run: RunFolder) -> dict[str, Any]:
    """Score the same architectures under each label distribution and compare the rankings (module doc)."""
    device = resolve_device(config.device)
    progress = ProgressReporter(config.progress)
    space = PathSpace(config.supernet.cell.nodes, config.supernet.cell.primitives)
    paths, origin = architectures(config, space)
    folder = run.path / "rank"
    scores: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    data = config.rank.data_configs(config.data)
    datasets = {label: distribution_dataset(label, data_config, config.seed) for label, data_config in data.items()}
    for label, dataset in datasets.items():  # every distribution is built before any supernet trains
        counts[label] = dataset.summary()["train_counts"]
        scores[label] = score_paths(config, data[label], dataset, paths, folder / label, device, progress)
    result = {
        "architectures": origin,
        "paths": [path.to_dict() for path in paths],
        "distributions": {label: {"data": config.rank.distributions[label], "train_counts": counts[label],
                                  "scores": scores[label]} for label in scores},
        "pairs": correlations(scores),
    }
    atomic_write_text(json.dumps(result, indent=1), folder / "rank.json")
    from ltnas.report.rank import write_rank_report

    write_rank_report(result, folder)
    return result


def distribution_dataset(label: str, data_config: DataConfig, seed: int) -> LongTailDataset:
    """The training data of one distribution; its faults name the distribution they come from."""
    try:
        return build_dataset(data_config, seed=seed)
    except LtnasError as exc:
        raise LtnasError(f"rank.distributions.{label}: {exc}") from None


def architectures(config: RunConfig, space: PathSpace) -> tuple[list[Genotype], str]:
    """The paths to rank and a phrase saying where they come from."""
    if config.rank.candidates:
        return final_population(Path(config.rank.candidates), space)
    rng = random.Random(stage_seed(config.seed, "rank"))
    paths: dict[str, Genotype] = {}
    for _ in range(50 * config.rank.paths):  # a tiny space may hold fewer distinct paths than asked for
        if len(paths) == config.rank.paths:
            break
        path = space.sample(rng)
        paths.setdefault(path_key(path), path)
    if len(paths) < 3:
        raise LtnasError(f"the supernet space holds only {len(paths)} distinct paths; ranks need at least 3 "
                         "(more supernet.cell.nodes or primitives)")
    return list(paths.values()), f"{len(paths)} random paths of the supernet space (seed {config.seed})"


def final_population(file: Path, space: PathSpace) -> tuple[list[Genotype], str]:
    """The last generation of an evolution's candidates.jsonl, checked against the supernet space."""
    try:
        records = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise LtnasError(f"cannot read rank.candidates {file} ({exc.strerror}); give the candidates.jsonl of an "
                         "`ltnas evolve` run (RUN/evolve/candidates.jsonl)") from None
    except json.JSONDecodeError as exc:
        raise LtnasError(f"rank.candidates {file} is not JSON lines (line {exc.lineno}); give the "
                         "candidates.jsonl of an `ltnas evolve` run") from None
    if not records or any(not isinstance(r, dict) or "genotype" not in r or "generation" not in r
                          for r in records):
        raise LtnasError(f"rank.candidates {file} holds no evolution candidates (records with generation and "
                         "genotype); give RUN/evolve/candidates.jsonl of an `ltnas evolve` run")
    last = max(record["generation"] for record in records)
    paths = [Genotype.from_dict(r["genotype"], source=str(file)) for r in records if r["generation"] == last]
    for path in paths:
        space.check(path)  # the supernet section must describe the space the evolution searched
    if len(paths) < 3:
        raise LtnasError(f"the last generation of {file} has {len(paths)} candidates; ranks need at least 3 "
                         "(a larger evolve.population)")
    return paths, f"the final population (generation {last}, {len(paths)} candidates) of {file}"


def score_paths(config: RunConfig, data_config: DataConfig, dataset: LongTailDataset, paths: list[Genotype],
                folder: Path, device, progress: ProgressReporter | None) -> list[float]:
    """Train (or find) the supernet of this distribution, then each path's evolution fitness on it."""
    done = folder / "scores.json"
    keys = [path_key(path) for path in paths]
    if done.is_file():  # a resumed run: scored already, for these paths
        saved = json.loads(done.read_text())
        if saved.get("paths") == keys:
            return saved["scores"]
    supernet_file = train_supernet(config.supernet, config.supernet.longtail, data_config, dataset, config.seed,
                                   stage_seed(config.seed, "supernet"), folder / "supernet", device, progress)
    network, meta = load_supernet(supernet_file, device)
    train_set, val_set = search_split(dataset, data_config.val_fraction, meta["seed"])
    if len(val_set) == 0:
        raise LtnasError(f"the distribution in {folder.name} leaves no validation images to score paths on; "
                         "raise data.val_fraction")
    recalibration = batches_of(train_set, dataset, config.evolve.bn_batch_size, device, 0)
    validation = batches_of(val_set, dataset, config.eval.batch_size, device)
    seed_everything(stage_seed(config.seed, "rank"))
    scorer = EvolutionTask(network, config.evolve, recalibration, validation, val_set.counts(dataset.num_classes),
                           lambda path: (0, 0), stage_seed(config.seed, "rank"))
    scores = [scorer.fitness(path) for path in paths]
    atomic_write_text(json.dumps({"paths": keys, "scores": scores}), done)
    return scores


def correlations(scores: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Kendall's τ-b and Spearman's ρ of every pair of scorings (None where a scoring has no ranking: all tied)."""
    return [{"a": a, "b": b, "kendall_tau": kendall_tau(scores[a], scores[b]),
             "spearman_rho": spearman_rho(scores[a], scores[b])}
            for a, b in itertools.combinations(scores, 2)]
