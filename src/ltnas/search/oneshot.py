"""One-shot search (IMB-NAS (Yao, 2024)): a weight-sharing supernet trained one sampled path at a time.

A *path* picks, in each cell type, two distinct inputs per intermediate node and one operation per
chosen edge: exactly a DARTS genotype with two edges per node, so paths are `Genotype`s and every
tool for genotypes (JSON, drawing, retraining) applies. Running a path executes only its chosen
operations of the DARTS supernet (`SearchNetwork`); α is not used.

The trained supernet is a reusable artefact (`save_supernet` / `load_supernet`): its weights, the
network shape, and the data and settings it was trained with, so that a later evolution or
adaptation can rebuild exactly the split the supernet never trained on.
"""

from __future__ import annotations

import itertools

import random
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from ltnas.atomic import atomic_save
from ltnas.config import DataConfig, LongTailConfig, StepSgdConfig, SupernetConfig
from ltnas.data import DeviceBatches, ImageSet, LongTailDataset, batches_of, stratified_split
from ltnas.errors import LtnasError
from ltnas.longtail import LongTailLoss, build_criterion
from ltnas.metrics import stage_seconds
from ltnas.space import DiscreteNetwork, Edge, Genotype, SearchNetwork
from ltnas.space.heads import is_normalised, uses_normalised_classifier
from ltnas.space.search_network import SearchCell
from ltnas.train.checkpoint import load_checkpoint
from ltnas.train.loop import OnStep, ProgressReporter, fit
from ltnas.train.lr_schedule import lr_scheduler
from ltnas.train.precise_bn import recalibrate_batchnorm

SUPERNET_FORMAT = "ltnas-supernet/1"


# --- the space of paths ---------------------------------------------------------------------------
class PathSpace:
    """Paths through a supernet with `nodes` intermediate nodes per cell and candidate `primitives`."""

    def __init__(self, nodes: int, primitives: Sequence[str]):
        self.nodes = nodes
        self.ops = tuple(name for name in primitives if name != "none")  # `none` is no path
        if not self.ops:
            raise LtnasError("a one-shot supernet needs at least one operation besides 'none'")

    @classmethod
    def of(cls, network: SearchNetwork) -> "PathSpace":
        return cls(network.nodes, network.primitives)

    def sample(self, rng: random.Random) -> Genotype:
        """Uniform: for each node two distinct inputs, for each of them one operation."""
        return self.from_genes({kind: [self.random_gene(node, rng) for node in self.node_ids]
                                for kind in ("normal", "reduce")})

    def extreme(self, op: str, rng: random.Random) -> Genotype:
        """Every edge `op`, random inputs (sandwich sampling's largest and smallest paths)."""
        genes = {kind: [tuple((source, op) for source, _ in self.random_gene(node, rng)) for node in self.node_ids]
                 for kind in ("normal", "reduce")}
        return self.from_genes(genes)

    @property
    def node_ids(self) -> range:
        return range(2, 2 + self.nodes)

    def random_gene(self, node: int, rng: random.Random) -> tuple[tuple[int, str], ...]:
        """One node's choice: two distinct inputs among the nodes before it, each with an operation."""
        sources = rng.sample(range(node), 2)
        return tuple((source, rng.choice(self.ops)) for source in sources)

    # A path as genes: {cell kind: [per node ((source, op), (source, op))]}, the unit of crossover and mutation.
    def genes(self, path: Genotype) -> dict[str, list[tuple[tuple[int, str], ...]]]:
        return {kind: [tuple((e.from_node, e.op) for e in getattr(path, kind) if e.to_node == node)
                       for node in self.node_ids] for kind in ("normal", "reduce")}

    def from_genes(self, genes: dict[str, Sequence[Sequence[tuple[int, str]]]]) -> Genotype:
        # Inputs of a node are sorted, so that one architecture has one spelling (deduplication relies on it).
        cells = {kind: tuple(Edge(op, node, source) for node, gene in zip(self.node_ids, genes[kind])
                             for source, op in sorted(gene)) for kind in ("normal", "reduce")}
        concat = tuple(self.node_ids)
        return Genotype(cells["normal"], concat, cells["reduce"], concat)

    def check(self, path: Genotype) -> None:
        """A path must give every node exactly two distinct inputs with operations of this space."""
        for kind in ("normal", "reduce"):
            edges = getattr(path, kind)
            for node in self.node_ids:
                sources = [e.from_node for e in edges if e.to_node == node]
                if len(sources) != 2 or len(set(sources)) != 2:
                    raise LtnasError(f"path {kind} cell: node {node} has inputs {sources}; a one-shot path gives "
                                     "every node two distinct inputs")
            stray = [list(e) for e in edges if e.op not in self.ops or e.to_node not in self.node_ids]
            if stray:
                raise LtnasError(f"path {kind} cell: edge {stray[0]} is outside the supernet (operations "
                                 f"{', '.join(self.ops)}; nodes {self.node_ids[0]}..{self.node_ids[-1]})")


def path_key(path: Genotype) -> str:
    """A canonical string of a path (for deduplication and as a dictionary key)."""
    return ";".join(f"{kind}:" + ",".join(f"{e.from_node}>{e.to_node}:{e.op}" for e in getattr(path, kind))
                    for kind in ("normal", "reduce"))


# --- running a path -------------------------------------------------------------------------------
def edge_index(to_node: int, from_node: int) -> int:
    """Row of edge from_node → to_node in the supernet's edge list (node j has 2 + (j − 2) inputs)."""
    return sum(2 + j for j in range(to_node - 2)) + from_node


def _cell_forward(cell: SearchCell, s0: torch.Tensor, s1: torch.Tensor, edges: Sequence[Edge]) -> torch.Tensor:
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    for node in range(2, 2 + cell.nodes):
        inputs = [e for e in edges if e.to_node == node]
        states.append(sum(cell.edges[edge_index(node, e.from_node)].op(e.op)(states[e.from_node]) for e in inputs))
    return torch.cat(states[2:], dim=1)


def path_features(network: SearchNetwork, x: torch.Tensor, path: Genotype) -> torch.Tensor:
    """Pooled features of `x` through `path` only: the other operations are never run."""
    s0 = s1 = network.stem(x)
    for cell in network.cells:
        edges = path.reduce if cell.reduction else path.normal
        s0, s1 = s1, _cell_forward(cell, s0, s1, edges)
    return network.global_pooling(s1).flatten(1)


def path_forward(network: SearchNetwork, x: torch.Tensor, path: Genotype) -> torch.Tensor:
    return network.classifier(path_features(network, x, path))


class SupernetPath(nn.Module):
    """A view of one path of a supernet as a model (for evaluation and BN recalibration)."""

    def __init__(self, network: SearchNetwork, path: Genotype):
        super().__init__()
        self.network = network
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return path_forward(self.network, x, self.path)


@contextmanager
def frozen_bn_statistics(model: nn.Module) -> Iterator[None]:
    """BNs in training mode normalise by batch statistics but leave their running statistics as they are."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in norms:
        m.track_running_stats = False  # PyTorch then neither reads nor updates running_mean/var/num_batches
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


def recalibrate_bn(model: nn.Module, batches, num_batches: int) -> None:
    """Replace every BN's running statistics by their plain average over `num_batches` training batches
    (`ltnas.train.precise_bn`).

    Weight sharing leaves each BN with statistics of a mixture of paths; a subnet's own statistics
    are needed before its accuracy means anything (SPOS)."""
    recalibrate_batchnorm(model, itertools.islice(batches, num_batches))


# --- a subnet as a standalone network -------------------------------------------------------------
def export_subnet(network: SearchNetwork, path: Genotype, auxiliary: bool = False) -> DiscreteNetwork:
    """A `DiscreteNetwork` that computes exactly what `path` computes in the supernet (same weights,
    same BN statistics), to fine-tune or deploy a subnet without the supernet.

    The supernet's BNs are affine-free; the standalone network's are affine with weight 1 and bias 0,
    the identity, so it starts equal and can learn them. Its pooling edges keep the BN that follows
    pooling in the supernet (a DiscreteNetwork built from the genotype alone has none), so its
    state_dict has those extra BN entries.
    """
    PathSpace.of(network).check(path)
    subnet = DiscreteNetwork(path, network.C, network.num_classes, network.layers, auxiliary=auxiliary,
                             in_channels=network.in_channels, stem_multiplier=network.stem_multiplier,
                             normalised=is_normalised(network.classifier))
    device = next(network.parameters()).device
    subnet.to(device)

    def copy(source: nn.Module, target: nn.Module) -> None:
        missing, unexpected = target.load_state_dict(source.state_dict(), strict=False)
        # Only the affine BN parameters may be new, and they keep their identity initialisation.
        norms = {name for name, m in target.named_modules() if isinstance(m, nn.BatchNorm2d)}
        if unexpected or any(key.rpartition(".")[0] not in norms for key in missing):
            raise RuntimeError(f"supernet and subnet modules differ: missing {missing}, unexpected {unexpected}")

    copy(network.stem, subnet.stem)
    copy(network.classifier, subnet.classifier)
    for cell, sub_cell in zip(network.cells, subnet.cells):
        copy(cell.preprocess0, sub_cell.preprocess0)
        copy(cell.preprocess1, sub_cell.preprocess1)
        for index, edge in enumerate(sub_cell.edges):
            mixed = cell.edges[edge_index(edge.to_node, edge.from_node)]
            source = mixed.op(edge.op)
            if "pool" in edge.op:
                sub_cell.ops[index] = nn.Sequential(sub_cell.ops[index], nn.BatchNorm2d(mixed.channels)).to(device)
            copy(source, sub_cell.ops[index])
    return subnet


# --- training the supernet ------------------------------------------------------------------------
class PathSampler:
    """Which paths one training step trains: uniform, sandwich or attentive (see SupernetConfig)."""

    def __init__(self, space: PathSpace, config: SupernetConfig, network: SearchNetwork):
        self.space = space
        self.config = config
        # Largest and smallest path by the parameters of each operation on the first edge.
        sizes = {op: sum(p.numel() for p in network.cells[0].edges[0].op(op).parameters())
                 for op in space.ops}
        self.largest = max(space.ops, key=lambda op: (sizes[op], space.ops.index(op)))
        self.smallest = min(space.ops, key=lambda op: (sizes[op], space.ops.index(op)))

    def paths(self, rng: random.Random) -> list[Genotype]:
        if self.config.sampling == "sandwich":
            return [self.space.extreme(self.largest, rng), self.space.extreme(self.smallest, rng),
                    *(self.space.sample(rng) for _ in range(self.config.sandwich_random))]
        if self.config.sampling == "attentive":
            return [self.space.sample(rng) for _ in range(self.config.attentive_candidates)]
        return [self.space.sample(rng)]


class SupernetTask:
    """Supernet training as an epoch task: SGD, step LR schedule, clipping, sampled paths per step.

    `optim` is the stage's SGD section (a StepSgdConfig: `supernet.sgd`, or `adapt.sgd` when fine-tuning);
    `sampling` says which paths a step trains. With `parameters`
    given only those are trained, and with `train_backbone=False` the backbone's BN running
    statistics stay untouched too (IMB-NAS P1: the classifier learns on a frozen backbone). Its BNs
    still normalise by batch statistics, as in supernet training: the classifier then sees features
    like those of a recalibrated subnet, which is how evolution will score it.
    """

    def __init__(self, network: SearchNetwork, optim: StepSgdConfig, sampling: SupernetConfig, criterion: LongTailLoss,
                 batches: DeviceBatches, seed: int, parameters: Sequence[nn.Parameter] | None = None,
                 train_backbone: bool = True, name: str = "supernet"):
        self.name = name
        self.network = network
        self.optim = optim
        self.sampling = sampling
        self.criterion = criterion
        self.batches = batches
        self.train_backbone = train_backbone
        self.sampler = PathSampler(PathSpace.of(network), sampling, network)
        self.rng = random.Random(seed)
        self.parameters = list(parameters if parameters is not None else network.parameters())
        self.optimizer = torch.optim.SGD(self.parameters, optim.lr, momentum=optim.momentum,
                                         weight_decay=optim.weight_decay)
        self.scheduler = lr_scheduler(self.optimizer, optim, 0)  # StepSgdConfig: the step schedule

    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def run_epoch(self, epoch: int, on_step: OnStep) -> dict[str, Any]:
        self.network.train()
        if self.train_backbone:
            return self._epoch(epoch, on_step)
        with frozen_bn_statistics(self.network):
            return self._epoch(epoch, on_step)

    def _epoch(self, epoch: int, on_step: OnStep) -> dict[str, Any]:
        self.criterion.set_epoch(epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        loss_sum, correct, count, images = 0.0, 0, 0, 0
        for x, y in self.batches:
            paths = self.sampler.paths(self.rng)
            if self.sampling.sampling == "attentive" and len(paths) > 1:
                with torch.no_grad():  # AttentiveNAS "worst-up": train the path the batch finds hardest
                    losses = [self.criterion(path_forward(self.network, x, p), y).item() for p in paths]
                images += len(y) * len(paths)
                paths = [paths[max(range(len(paths)), key=losses.__getitem__)]]
            self.optimizer.zero_grad(set_to_none=True)
            for index, path in enumerate(paths):
                logits = path_forward(self.network, x, path)
                loss = self.criterion(logits, y)
                loss.backward()  # sandwich: the gradients of its paths add up
                if index == 0:
                    loss_sum += loss.item() * len(y)
                    correct += (logits.argmax(1) == y).sum().item()
                    count += len(y)
                images += len(y)
            nn.utils.clip_grad_norm_(self.parameters, self.optim.grad_clip)
            self.optimizer.step()
            on_step(loss=loss.item())
        self.scheduler.step()
        return {"train_loss": loss_sum / count, "train_acc": correct / count, "lr": lr, "images": images}

    def after_epoch(self, epoch: int, folder: Path) -> None:
        pass

    def truncate_history(self, folder: Path, epochs_done: int) -> None:
        pass

    def state_dict(self) -> dict:
        return {"network": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "rng": self.rng.getstate(),
                "generator": self.batches.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.rng.setstate(state["rng"])
        self.batches.generator.set_state(state["generator"])


def build_supernet(config: SupernetConfig, num_classes: int, in_channels: int, normalised: bool = False
                   ) -> SearchNetwork:
    """The one-shot supernet of `config.cell`; `normalised`: LDAM-DRW's cosine classifier (when its loss is LDAM)."""
    cell = config.cell
    return SearchNetwork(cell.init_channels, num_classes, cell.layers, in_channels=in_channels,
                         primitives=cell.primitives, nodes=cell.nodes, normalised=normalised)


def search_split(dataset: LongTailDataset, val_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """The (train, val) split of a training set that supernet training and evolution share:
    the supernet trains on `train`; candidates are scored on `val`, which it never saw."""
    train_idx, val_idx = stratified_split(dataset.train.labels, val_fraction, seed)
    return dataset.train.subset(train_idx), dataset.train.subset(val_idx)


def train_supernet(config: SupernetConfig, longtail: LongTailConfig, data_config: DataConfig,
                   dataset: LongTailDataset, data_seed: int, seed: int, folder: Path, device: torch.device,
                   progress: ProgressReporter | None = None) -> Path:
    """Train a supernet on the train part of `dataset`'s search split (split and training drawn from
    `seed`) into `folder` (resumable), then write `folder/supernet.pt`; returns its path. `dataset` is
    `data_config` built with `data_seed`; both are recorded. A finished supernet is not trained again."""
    target = folder / "supernet.pt"
    if target.is_file():
        return target
    torch.manual_seed(seed)
    train_set, _ = search_split(dataset, data_config.val_fraction, seed)
    network = build_supernet(config, dataset.num_classes, dataset.channels,
                             uses_normalised_classifier(longtail)).to(device)
    counts = train_set.counts(dataset.num_classes)
    criterion = build_criterion(longtail, counts, config.epochs, device)
    batches = batches_of(train_set, dataset, config.batch_size, device, seed + 1, sampler=longtail.sampler,
                         augment=config.augment)
    task = SupernetTask(network, config.sgd, config, criterion, batches, seed)
    rows = fit(task, config.epochs, folder, progress)
    save_supernet(target, network, {
        "supernet_config": config.model_dump(mode="json"),
        "longtail": longtail.model_dump(mode="json"),
        "data_config": data_config.model_dump(mode="json"),
        "data": dataset.summary(),
        "data_seed": data_seed,
        "seed": seed,
        "cost": stage_cost(rows),
    })
    return target


def stage_cost(rows: list[dict]) -> dict[str, float | int]:
    """Wall time and images seen of a stage, from its metrics rows."""
    return {"seconds": stage_seconds(rows), "images": int(sum(row.get("images", 0) for row in rows))}


# --- the supernet artefact ------------------------------------------------------------------------
def save_supernet(path: Path, network: SearchNetwork, meta: dict[str, Any]) -> None:
    shape = {"C": network.C, "num_classes": network.num_classes,
             "layers": network.layers, "in_channels": network.in_channels,
             "primitives": list(network.primitives), "nodes": network.nodes,
             "normalised": is_normalised(network.classifier)}
    atomic_save({"format": SUPERNET_FORMAT, "network": shape, "state_dict": network.state_dict(), **meta}, path)


def load_supernet(path: str | Path, device: torch.device | str = "cpu") -> tuple[SearchNetwork, dict[str, Any]]:
    """The supernet in `path` and everything recorded with it (data config, summary, seed, settings, cost)."""
    path = Path(path)
    if not path.is_file():
        raise LtnasError(f"supernet file {path} not found; train one with `ltnas supernet train CONFIG`")
    try:
        saved = load_checkpoint(path, device)
    except LtnasError:  # a truncated or foreign file
        raise LtnasError(f"cannot read supernet file {path} (damaged or not a torch file); pass a file written by "
                         "`ltnas supernet train`") from None
    if not isinstance(saved, dict) or saved.get("format") != SUPERNET_FORMAT:
        raise LtnasError(f"{path} is not an ltnas supernet file; pass a supernet.pt written by `ltnas supernet train`")
    shape = saved["network"]
    network = SearchNetwork(shape["C"], shape["num_classes"], shape["layers"], in_channels=shape["in_channels"],
                            primitives=shape["primitives"], nodes=shape["nodes"],
                            normalised=shape.get("normalised", False))
    network.load_state_dict(saved["state_dict"])
    meta = {key: value for key, value in saved.items() if key not in ("state_dict", "network", "format")}
    return network.to(device), meta
