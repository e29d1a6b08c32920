"""IMB-NAS (Yao, 2024): adapt a supernet trained once on a balanced source to an imbalanced target.

    P0  search the source supernet (fitness on the source), retrain the best subnet on the target
    P1  freeze the backbone, retrain a new classifier on the target (class-balanced loss), search
    P2  fine-tune backbone and a new classifier on the target (DRW, lower LR, fewer epochs), search
    P3  train a supernet on the target itself (DRW), search: the expensive paragon

In every procedure the architecture found is then retrained from scratch on the whole target
training set (the `train` section) and evaluated like any ltnas run, and `eval.json` gets the
procedure's own cost: wall time and images seen by each stage.

**The source supernet is shared.** It is the expensive artefact, so P0, P1 and P2 never train it
themselves: they read `adapt.supernet` (a file from `ltnas supernet train`) or, when that is unset,
the cache `adapt.supernet_cache/<key>/supernet.pt`, where `key` hashes everything that determines
the supernet (the `supernet` section, the `source_data` section and the seed). The first variant of
a comparison trains it there (resumable, like any stage); every later variant with the same
source, supernet settings and seed finds it and only adapts. Its cost is reported under
`source_supernet` with `shared: true`, apart from the procedure's own.

Stages and where they live in the run folder: supernet/ (P3), adapt/ (P1, P2), evolve/, train/.
Each is an epoch task of the shared loop, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import yaml

from ltnas import lock
from ltnas.atomic import atomic_write_text
from ltnas.config import DataConfig, RunConfig, flat_layout
from ltnas.data import LongTailDataset, batches_of, build_dataset
from ltnas.errors import LtnasError
from ltnas.longtail import build_criterion
from ltnas.runs import RunFolder, resolve_device
from ltnas.search.evolution import EvolutionTask, subnet_cost
from ltnas.search.oneshot import (
    SUPERNET_FORMAT, SupernetTask, load_supernet, search_split, stage_cost, train_supernet,
)
from ltnas.space import Genotype, SearchNetwork
from ltnas.space.heads import make_classifier, uses_normalised_classifier
from ltnas.stages.context import Context, stage_seconds, stage_seed
from ltnas.stages.evaluate import evaluate_retrained, report
from ltnas.stages.retrain import train
from ltnas.train.checkpoint import seed_everything
from ltnas.train.loop import JsonlLog, ProgressReporter, fit


def run_imbnas(config: RunConfig, run: RunFolder) -> dict:
    """The whole IMB-NAS run of `config.adapt.procedure` (its run in ltnas.methods)."""
    procedure = config.adapt.procedure
    ctx = Context.prepare(config, run)  # the target: `data`
    cost: dict[str, dict[str, Any]] = {}
    if procedure == "P3":
        supernet_file = train_supernet(
            config.supernet, config.adapt.target_longtail, config.data, ctx.dataset, config.seed,
            stage_seed(config.seed, "supernet"), run.path / "supernet", ctx.device, ctx.progress)
        network, meta = load_supernet(supernet_file, ctx.device)
        cost["supernet"] = meta["cost"]
        search_data, val_fraction, split_seed = ctx.dataset, config.data.val_fraction, meta["seed"]
    else:
        supernet_file = source_supernet(config, ctx.device, ctx.progress)
        network, meta = load_supernet(supernet_file, ctx.device)
        cost["source_supernet"] = {**meta["cost"], "shared": True}
        if procedure == "P0":
            search_data, val_fraction, split_seed = recorded_dataset(meta)
        else:
            rows = adapt_supernet(network, config, ctx.dataset, run.path / "adapt", ctx.device, ctx.progress)
            cost["adapt"] = stage_cost(rows)
            search_data, val_fraction, split_seed = ctx.dataset, config.data.val_fraction, config.seed
    genotype, rows = evolve(network, config, search_data, val_fraction, split_seed, ctx.dataset,
                            run.path / "evolve", ctx.device, ctx.progress)
    cost["evolve"] = stage_cost(rows)

    train(ctx, genotype)
    results = evaluate_retrained(ctx)
    cost["train"] = retrain_cost(config, ctx.dataset, run)
    results.update({
        "genotype": "evolved",
        "procedure": procedure,
        "supernet": {"file": str(supernet_file), "data": meta["data"]["name"],
                     "classes": len(meta["data"]["classes"]), "train_counts": meta["data"]["train_counts"]},
        "cost": cost,
    })
    # the procedure's own cost: everything but the shared source supernet
    own = [stage for stage in cost if not cost[stage].get("shared")]
    cost["procedure"] = {"seconds": sum(cost[s]["seconds"] for s in own),
                         "images": sum(cost[s]["images"] for s in own)}
    # "search" is everything before the retrain that the procedure itself paid for (the summary's search time)
    searched = sum(cost[stage]["seconds"] for stage in own if stage != "train")
    results["seconds"] = {**{stage: cost[stage]["seconds"] for stage in own}, "search": searched,
                          "eval": results["seconds"]["eval"]}
    ctx.write_eval(results)
    report(ctx)
    return results


# --- the source supernet, trained once ------------------------------------------------------------
def supernet_key(config: RunConfig) -> str:
    """Hash of everything that determines the source supernet: its settings, its data and the seed."""
    if config.source_data is None:
        raise LtnasError("no source dataset: set source_data (the balanced source, e.g. source_data.source: cifar10, "
                         "source_data.profile: balanced) or adapt.supernet (a file from `ltnas supernet train`)")
    # the supernet's settings in the layout before `supernet.cell`/`supernet.sgd`, so that supernets cached
    # before keep their key
    supernet = flat_layout("supernet", config.supernet.model_dump(mode="json"))
    identity = {"format": SUPERNET_FORMAT, "supernet": supernet,
                "data": config.source_data.model_dump(mode="json"), "seed": config.seed}
    return hashlib.sha256(json.dumps(without_later_defaults(identity), sort_keys=True).encode()).hexdigest()[:16]


# Settings added after supernets were first cached, with the value that means "off": left out of the key
# while off, so a supernet cached before them keeps its key.
LATER_SETTINGS = {"augment": {"rotate": 0.0, "zoom": 0.0},
                  "data": {"train_list": None, "val_list": None, "test_list": None}}


def without_later_defaults(identity: Any) -> Any:
    """`identity` without the LATER_SETTINGS that are at their off value, in every section they occur in."""
    if not isinstance(identity, dict):
        return identity
    result = {}
    for key, value in identity.items():
        value = without_later_defaults(value)
        later = LATER_SETTINGS.get(key)
        if later and isinstance(value, dict):
            value = {k: v for k, v in value.items() if not (k in later and v == later[k])}
        result[key] = value
    return result


def source_supernet(config: RunConfig, device: torch.device, progress: ProgressReporter | None = None) -> Path:
    """`adapt.supernet`, or the cached supernet for this source (trained there first if absent)."""
    if config.adapt.supernet:
        return Path(config.adapt.supernet)
    folder = Path(config.adapt.supernet_cache) / supernet_key(config)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LtnasError(f"cannot create the supernet cache {folder} ({exc.strerror}); set adapt.supernet_cache "
                         "to a writable folder") from None
    if (folder / "supernet.pt").is_file():  # finished: only read from now on
        return folder / "supernet.pt"
    # One process trains it; another that wants the same supernet meanwhile is told who does.
    entry = lock.claim(folder, "supernet cache")
    try:
        identity = {"supernet": config.supernet.model_dump(mode="json"),
                    "source_data": config.source_data.model_dump(mode="json"), "seed": config.seed}
        atomic_write_text(yaml.safe_dump(identity, sort_keys=False), folder / "key.yaml")  # what the key stands for
        dataset = build_dataset(config.source_data, seed=config.seed)
        return train_supernet(config.supernet, config.supernet.longtail, config.source_data, dataset, config.seed,
                              stage_seed(config.seed, "supernet"), folder, device, progress)
    finally:
        entry.release()


def recorded_dataset(meta: dict[str, Any]) -> tuple[LongTailDataset, float, int]:
    """The dataset a supernet was trained on, its val fraction and split seed, from what it recorded."""
    data_config = DataConfig.model_validate(meta["data_config"])
    return build_dataset(data_config, seed=meta["data_seed"]), data_config.val_fraction, meta["seed"]


# --- P1 / P2: adapting the source supernet to the target ------------------------------------------
def adapt_supernet(network: SearchNetwork, config: RunConfig, target: LongTailDataset, folder: Path,
                   device: torch.device, progress: ProgressReporter | None = None) -> list[dict]:
    """Give `network` a new classifier for the target's classes and train it on the target's search split:
    alone on a frozen backbone (P1) or together with the backbone (P2). Returns the stage's metrics rows."""
    procedure, cfg = config.adapt.procedure, config.adapt
    if procedure not in ("P1", "P2"):
        raise ValueError(f"adapt_supernet is for P1 and P2, not {procedure}")
    if network.stem[0].in_channels != target.channels:
        raise LtnasError(f"the source supernet takes {network.stem[0].in_channels}-channel images but the target has "
                         f"{target.channels}; use a source and a target with the same channels")
    torch.manual_seed(stage_seed(config.seed, "adapt"))
    # The classifier is always rebuilt: the target's classes need not be the source's (CIFAR-10 → CIFAR-100).
    frozen = procedure == "P1"
    longtail = cfg.classifier_longtail if frozen else cfg.finetune_longtail
    network.classifier = make_classifier(network.feature_dim, target.num_classes,
                                         uses_normalised_classifier(longtail)).to(device)
    network.num_classes = target.num_classes
    for parameter in network.parameters():
        parameter.requires_grad_(not frozen)
    for parameter in network.classifier.parameters():
        parameter.requires_grad_(True)
    train_set, _ = search_split(target, config.data.val_fraction, config.seed)
    batches = batches_of(train_set, target, cfg.batch_size, device, stage_seed(config.seed, "adapt", 1),
                         sampler=longtail.sampler, augment=cfg.augment)
    criterion = build_criterion(longtail, train_set.counts(target.num_classes), cfg.epochs, device)
    trained = list(network.classifier.parameters()) if frozen else list(network.parameters())
    task = SupernetTask(network, cfg.sgd, config.supernet, criterion, batches, stage_seed(config.seed, "adapt"),
                        parameters=trained, train_backbone=not frozen, name="adapt")
    return fit(task, cfg.epochs, folder, progress)


# --- evolution --------------------------------------------------------------------------------------
def evolve(network: SearchNetwork, config: RunConfig, dataset: LongTailDataset, val_fraction: float,
           split_seed: int, target: LongTailDataset, folder: Path, device: torch.device,
           progress: ProgressReporter | None = None) -> tuple[Genotype, list[dict]]:
    """Evolve paths of `network`, scored on the val part of `dataset`'s search split (with `split_seed`,
    the split the supernet trained on); budgets apply to the network retrained on `target`."""
    cfg = config.evolve
    train_set, val_set = search_split(dataset, val_fraction, split_seed)
    # The recalibration batches' generator is reseeded per candidate by the evolution task.
    recalibration = batches_of(train_set, dataset, cfg.bn_batch_size, device, 0)
    validation = batches_of(val_set, dataset, config.eval.batch_size, device)

    def cost(path: Genotype) -> tuple[int, int]:
        return subnet_cost(path, config.train.cell.init_channels, config.train.cell.layers, target.num_classes,
                           target.channels, target.image_size, uses_normalised_classifier(config.train.longtail),
                           config.train.cell.stem)

    seed_everything(stage_seed(config.seed, "evolve"))
    task = EvolutionTask(network, cfg, recalibration, validation, val_set.counts(dataset.num_classes), cost,
                         stage_seed(config.seed, "evolve"))
    rows = fit(task, cfg.generations, folder, progress)
    return task.best(), rows


def retrain_cost(config: RunConfig, target: LongTailDataset, run: RunFolder) -> dict[str, float | int]:
    """Wall time of the retrain stage and the images it trained on (full batches, as DeviceBatches draws)."""
    epochs = len(JsonlLog(run.train / "metrics.jsonl").rows())
    n, batch = len(target.train), config.train.batch_size
    per_epoch = min(n, max(1, n // batch) * batch)
    return {"seconds": stage_seconds(run.train) or 0.0, "images": per_epoch * epochs}


# --- the CLI's stand-alone stages ---------------------------------------------------------------------
def supernet_only(config: RunConfig, run: RunFolder) -> Path:
    """`ltnas supernet train`: a supernet on `source_data` (or `data`) in RUN/supernet/supernet.pt."""
    data_config = config.source_data or config.data
    device = resolve_device(config.device)
    dataset = build_dataset(data_config, seed=config.seed)
    if run.read_json("data.json") is None:
        run.write_json("data.json", dataset.summary())
    return train_supernet(config.supernet, config.supernet.longtail, data_config, dataset, config.seed,
                          stage_seed(config.seed, "supernet"), run.path / "supernet", device,
                          ProgressReporter(config.progress))


def evolve_only(config: RunConfig, run: RunFolder) -> Genotype:
    """`ltnas evolve`: evolve `adapt.supernet` on the data it was trained on; without one, first train a
    supernet on `data` (RUN/supernet/). Writes RUN/evolve/genotype.json and the report."""
    device = resolve_device(config.device)
    progress = ProgressReporter(config.progress)
    if config.adapt.supernet:
        network, meta = load_supernet(config.adapt.supernet, device)
        dataset, val_fraction, split_seed = recorded_dataset(meta)
    else:
        dataset = build_dataset(config.data, seed=config.seed)
        supernet_file = train_supernet(config.supernet, config.supernet.longtail, config.data, dataset, config.seed,
                                       stage_seed(config.seed, "supernet"), run.path / "supernet", device, progress)
        network, meta = load_supernet(supernet_file, device)
        val_fraction, split_seed = config.data.val_fraction, meta["seed"]
    if run.read_json("data.json") is None:
        run.write_json("data.json", dataset.summary())
    genotype, _ = evolve(network, config, dataset, val_fraction, split_seed, dataset, run.path / "evolve", device,
                         progress)
    from ltnas.report import write_report

    write_report(run.path)
    return genotype
