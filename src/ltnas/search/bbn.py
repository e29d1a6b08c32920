"""DARTS inside a bilateral-branch network (BBN), with heterogeneous LR scheduling (HLS): HLS (Tang, 2024).

The network: a backbone of stacked search cells with its own α (normal and reduction cell), and
two heads — instance-sampling and class-balanced — each a single normal search cell fed by the
last two backbone outputs, with its own α and its own linear classifier.

One search step (HLS (Tang, 2024), Algorithm 1):
  - an α step on a validation batch from each sampler, then a weight step on a training batch
    from each sampler, both with
        o_ins = head_ins(backbone(x_ins)),   o_cls = head_cls(backbone(x_cls))
        L = μ·CE(μ o_ins + (1 − μ) o_cls, y_ins) + (1 − μ)·CE(μ o_ins + (1 − μ) o_cls, y_cls)
  - the α gradient is first order (∇α L_val at w) or, with `search.order: second`, Algorithm 1's unrolled one
    (its eqs. 9 and 11): ∇α L_val(w − ξ ∇w L_train(w, α), α), DARTS's finite-difference approximation
    (search/darts.py, `unrolled_arch_gradients`) with each weight group's own ξ (HLS may scale the backbone's)
  - every α group (backbone, instance head, class-balanced head) has its own optimizer (SGD by
    default, see `arch_optimizer`), so a learning rate schedule reaches exactly one group. With HLS the backbone α learning rate is scaled by
    1 − exp(−τ μ_t) (optionally the backbone weight learning rate too).

Theorem 1 of the paper is why HLS exists: ∇α_ins L carries a factor μ and ∇α_cls L a factor 1 − μ,
while the backbone's gradient is a μ-weighted sum of two gradients of similar size and so does not
shrink as μ moves; left alone the backbone keeps changing late in the search.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ltnas.atomic import atomic_write_text
from ltnas.config import PRIMITIVES, SearchConfig
from ltnas.search.darts import gradients, unrolled_arch_gradients
from ltnas.search.schedules import hls_factor, make_schedule
from ltnas.space.genotype import derive_genotype
from ltnas.space.heads import make_classifier
from ltnas.space.mixing import EdgeMixing
from ltnas.space.relaxation import ForwardWeights, Relaxation, make_relaxation
from ltnas.space.search_network import SearchBackbone, SearchCell, num_edges

Batch = tuple[torch.Tensor, torch.Tensor]
BRANCHES = ("instance", "balanced")
# the cell types with their own α: the backbone's normal and reduction cell, and each head's cell
CELLS = ("normal", "reduce", "head_instance", "head_balanced")
# μ of each continued-training variant (HLS (Tang, 2024), Section V-D); frozen_backbone also stops the backbone.
CONTINUED_MU = {"mu_zero": 0.0, "mu_half": 0.5, "frozen_backbone": 0.0}


def mix(o_ins: torch.Tensor, o_cls: torch.Tensor, mu: float) -> torch.Tensor:
    """The combined logits μ·o_ins + (1 − μ)·o_cls."""
    return mu * o_ins + (1.0 - mu) * o_cls


def bbn_loss(o_ins: torch.Tensor, o_cls: torch.Tensor, y_ins: torch.Tensor, y_cls: torch.Tensor,
             mu: float) -> torch.Tensor:
    """μ·CE(mixed, y_ins) + (1 − μ)·CE(mixed, y_cls) on the mixed logits (Algorithm 1, line 11)."""
    return mixed_loss(mix(o_ins, o_cls, mu), y_ins, y_cls, mu)


def mixed_loss(mixed: torch.Tensor, y_ins: torch.Tensor, y_cls: torch.Tensor, mu: float) -> torch.Tensor:
    """μ·CE(mixed, y_ins) + (1 − μ)·CE(mixed, y_cls) of the mixed logits μ·o_ins + (1 − μ)·o_cls."""
    return mu * F.cross_entropy(mixed, y_ins) + (1.0 - mu) * F.cross_entropy(mixed, y_cls)


class SearchHead(nn.Module):
    """One normal search cell on the backbone's last two outputs, global pooling, a linear (or normalised)
    classifier."""

    def __init__(self, nodes: int, c_prev_prev: int, c_prev: int, channels: int, reduction_prev: bool,
                 num_classes: int, primitives: tuple[str, ...], normalised: bool = False,
                 mixing: EdgeMixing | None = None):
        super().__init__()
        self.cell = SearchCell(nodes, c_prev_prev, c_prev, channels, False, reduction_prev, primitives, mixing)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = make_classifier(nodes * channels, num_classes, normalised)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                edge_weights: torch.Tensor | None = None, sampled: list[int] | None = None) -> torch.Tensor:
        """The head cell's `weights` (edges, ops), `edge_weights` and `sampled` as in `SearchCell.forward`."""
        cell = self.cell(s0, s1, weights, None, edge_weights, sampled)
        return self.classifier(self.global_pooling(cell).flatten(1))


class TwoBranchSearchNetwork(nn.Module):
    """Backbone of search cells + instance and class-balanced search-cell heads, four α tensors (one per
    cell type of `CELLS`).

    `parameters()` yields the operation weights only; α comes from `arch_groups()` (per component).
    `normalised`: both heads end in LDAM-DRW's cosine classifier (space/heads.py). The space seam is the
    single-branch supernet's (space/search_network.py): `relaxation` says how α weights the forward pass
    (`forward`) and how it is read (`read`); `mixing` makes every edge, backbone and heads alike, and
    may add its own architecture parameters per cell type (registered as `{name}_{cell}` after α).
    """

    def __init__(
        self,
        C: int,
        num_classes: int,
        layers: int,
        in_channels: int = 3,
        primitives: tuple[str, ...] | list[str] = PRIMITIVES,
        *,
        nodes: int = 4,
        stem_multiplier: int = 3,
        relaxation: str | Relaxation = "softmax",
        alpha_init_std: float = 1e-3,
        normalised: bool = False,
        mixing: EdgeMixing | None = None,
    ):
        super().__init__()
        self.primitives = tuple(primitives)
        self.nodes = nodes
        self.num_classes = num_classes
        self.relaxation = make_relaxation(relaxation)
        self.mixing = mixing or EdgeMixing()

        backbone = SearchBackbone(C, layers, in_channels, self.primitives, nodes, stem_multiplier, self.mixing)
        self.stem, self.cells = backbone.stem, backbone.cells
        self.heads = nn.ModuleDict({
            branch: SearchHead(nodes, backbone.c_prev_prev, backbone.c_prev, backbone.channels,
                               backbone.reduction_prev, num_classes, self.primitives, normalised, self.mixing)
            for branch in BRANCHES
        })

        shape = (num_edges(nodes), len(self.primitives))
        for cell in CELLS:
            self.register_parameter(f"alpha_{cell}", nn.Parameter(alpha_init_std * torch.randn(shape)))
        self._extra = list(self.mixing.arch_shapes(*shape))
        for name, extra_shape in self.mixing.arch_shapes(*shape).items():
            for cell in CELLS:
                self.register_parameter(f"{name}_{cell}", nn.Parameter(alpha_init_std * torch.randn(extra_shape)))
        self._ARCH_NAMES = (*(f"alpha_{cell}" for cell in CELLS),
                            *(f"{name}_{cell}" for name in self._extra for cell in CELLS))

    # --- weights and architecture kept apart --------------------------------------------------

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Operation weights only (α is in `state_dict()` but has its own optimizers)."""
        for name, param in super().named_parameters(prefix, recurse, remove_duplicate):
            if name.removeprefix(prefix + "." if prefix else "") not in self._ARCH_NAMES:
                yield name, param

    def arch_groups(self) -> dict[str, list[nn.Parameter]]:
        """α per component: the backbone's normal and reduction cell, and each head's cell (each with its
        mixing's own parameters after it)."""
        def group(*cells: str) -> list[nn.Parameter]:
            return [getattr(self, f"alpha_{cell}") for cell in cells] + [
                parameter for cell in cells for parameter in self.extra_arch(cell).values()]
        return {"backbone": group("normal", "reduce"), "instance": group("head_instance"),
                "balanced": group("head_balanced")}

    def extra_arch(self, cell: str) -> dict[str, nn.Parameter]:
        """The mixing's architecture parameters of one cell type of `CELLS`, by name."""
        return {name: getattr(self, f"{name}_{cell}") for name in self._extra}

    def arch_parameters(self) -> list[nn.Parameter]:
        return [alpha for group in self.arch_groups().values() for alpha in group]

    def weight_groups(self) -> dict[str, list[nn.Parameter]]:
        """Operation weights per component: backbone (stem + cells) and the two heads together."""
        return {"backbone": [*self.stem.parameters(), *self.cells.parameters()], "heads": list(self.heads.parameters())}

    # --- forward ------------------------------------------------------------------------------
    def relaxed_weights(self) -> dict[str, torch.Tensor]:
        """Operation weights as derivation and logs read them, per cell type: normal, reduce (backbone),
        head_instance, head_balanced (the relaxation's `read`, then the mixing's)."""
        return {cell: self.mixing.read(self.relaxation.read(getattr(self, f"alpha_{cell}")), self.extra_arch(cell),
                                       self.nodes) for cell in CELLS}

    def forward_weights(self) -> dict[str, ForwardWeights]:
        """What the forward pass uses per cell type (the relaxation's `forward`)."""
        return {cell: self.relaxation.forward(getattr(self, f"alpha_{cell}"), self.training) for cell in CELLS}

    def edge_weights(self) -> dict[str, torch.Tensor | None]:
        """Per cell type the weight of each edge's whole output (the mixing's), or None."""
        return {cell: self.mixing.edge_weights(self.extra_arch(cell), self.nodes) for cell in CELLS}

    @property
    def read_symbol(self) -> str:
        """What `relaxed_weights` gives, by name ("softmax(α)" for the BBN search)."""
        return self.mixing.read_symbol(self.relaxation.symbol)

    def backbone(self, x: torch.Tensor, weights: dict[str, torch.Tensor],
                 edges: dict[str, torch.Tensor | None] | None = None,
                 sampled: dict[str, list[int] | None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The last two backbone outputs, which feed both heads; `weights`, `edges` and `sampled` per cell type
        as the forward pass uses them (default: no edge weights, every operation)."""
        edges, sampled = edges or {}, sampled or {}
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, weights[kind], None, edges.get(kind), sampled.get(kind))
        return s0, s1

    def branch_logits(self, x_ins: torch.Tensor, x_cls: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(o_ins, o_cls): the instance head on x_ins and the class-balanced head on x_cls (default x_ins).

        The two batches go through the backbone together, as one batch (Algorithm 1, lines 5-6).
        """
        forward = self.forward_weights()
        weights = {cell: f.weights for cell, f in forward.items()}
        sampled = {cell: f.sampled for cell, f in forward.items()}
        edges = self.edge_weights()

        def head(branch: str, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
            cell = f"head_{branch}"
            return self.heads[branch](s0, s1, weights[cell], edges[cell], sampled[cell])

        if x_cls is None:
            states = self.backbone(x_ins, weights, edges, sampled)
            return head("instance", *states), head("balanced", *states)
        s0, s1 = self.backbone(torch.cat([x_ins, x_cls]), weights, edges, sampled)
        n = len(x_ins)
        return head("instance", s0[:n], s1[:n]), head("balanced", s0[n:], s1[n:])

    def forward(self, x: torch.Tensor, mu: float = 0.5, x_cls: torch.Tensor | None = None) -> torch.Tensor:
        """The combined prediction at test-time mixing ratio μ (1: instance head only, 0: balanced only);
        with `x_cls` the class-balanced head sees that batch instead (as in training, `branch_logits`)."""
        return mix(*self.branch_logits(x, x_cls), mu)

    # --- genotype -----------------------------------------------------------------------------
    def genotype(self, rule: str = "darts", threshold: float = 0.85) -> dict[str, Any]:
        """The backbone genotype's cells plus `head_instance` and `head_balanced` cells, as a JSON dict."""
        weights = {k: v.detach().cpu() for k, v in self.relaxed_weights().items()}
        options = dict(rule=rule, threshold=threshold, primitives=self.primitives)
        data = derive_genotype(weights["normal"], weights["reduce"], **options).to_dict()
        for branch in BRANCHES:
            head = weights[f"head_{branch}"]
            edges, concat = derive_genotype(head, head, **options).cell("normal")
            data[f"head_{branch}"] = [list(edge) for edge in edges]
            data[f"head_{branch}_concat"] = list(concat)
        return data


def write_two_branch_genotype(genotype: dict[str, Any], path: str | Path) -> None:
    atomic_write_text(json.dumps(genotype, indent=1) + "\n", path)


class BbnSearch:
    """The BBN + DARTS strategy: one SGD over all weights, one optimizer per α component (`bbn.arch_optimizer`:
    SGD by default, or Adam), μ per epoch."""

    relaxation = "softmax"

    def __init__(self, network: TwoBranchSearchNetwork, config: SearchConfig):
        self.network = network
        self.config = config
        self.bbn = config.bbn
        self.schedule = make_schedule(self.bbn.schedule, **self.bbn.schedule_params())
        weights = network.weight_groups()
        self.weights = [w for group in weights.values() for w in group]
        self.w_optimizer = torch.optim.SGD(
            [{"params": weights["backbone"], "name": "backbone"}, {"params": weights["heads"], "name": "heads"}],
            config.sgd.lr, momentum=config.sgd.momentum, weight_decay=config.sgd.weight_decay,
        )
        self.alpha_groups = network.arch_groups()
        self.a_optimizers = {component: self.arch_optimizer(alphas) for component, alphas in self.alpha_groups.items()}
        self.mu, self.hls, self.backbone_frozen = 1.0, 1.0, False
        self._norm_sums: dict[str, float] = {}
        self._norm_steps = 0
        self.set_epoch(0)

    def arch_optimizer(self, alphas: list[nn.Parameter]) -> torch.optim.Optimizer:
        """SGD: Δα = −ξ (g + wd α) (with momentum), so the heads' steps carry Theorem 1's factors μ and 1 − μ.
        Adam divides g by its running RMS, which cancels a slowly varying factor such as μ."""
        cfg = self.config
        if self.bbn.arch_optimizer == "adam":
            return torch.optim.Adam(alphas, cfg.arch_lr, betas=tuple(cfg.arch_betas), weight_decay=cfg.arch_weight_decay)
        return torch.optim.SGD(alphas, cfg.arch_lr, momentum=self.bbn.arch_momentum, weight_decay=cfg.arch_weight_decay)

    @property
    def total_epochs(self) -> int:
        return self.config.epochs + self.bbn.continued_epochs_run

    @property
    def lr(self) -> float:
        return self.w_optimizer.param_groups[1]["lr"]  # the heads' group: never scaled by HLS

    def lr_scale(self, epoch: int) -> float:
        """The cosine weight schedule (lr → lr_min over the search epochs) as a multiple of lr;
        continued-training epochs run at the constant `bbn.continued_lr`."""
        cfg = self.config
        if epoch >= cfg.epochs:
            return self.bbn.continued_lr / cfg.sgd.lr
        cosine = 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
        return (cfg.sgd.lr_min + (cfg.sgd.lr - cfg.sgd.lr_min) * cosine) / cfg.sgd.lr

    def mixing_ratio(self, epoch: int) -> float:
        """μ of `epoch` (counted from 0 by the loop): the schedule at t = epoch (`bbn.epoch_count: from_zero`,
        BBN's code) or t = epoch + 1 (`from_one`, HLS (Tang, 2024) Algorithm 1: t = 1 … T, μ = 0 in the last
        search epoch); continued-training epochs at their constant μ."""
        if epoch >= self.config.epochs:
            return CONTINUED_MU[self.bbn.continued]
        return self.schedule(self.schedule_step(epoch), self.config.epochs)

    def schedule_step(self, epoch: int) -> int:
        """t of `epoch` (from 0) in the μ schedule: epoch (`from_zero`) or epoch + 1 (`from_one`)."""
        return epoch + (1 if self.bbn.epoch_count == "from_one" else 0)

    def set_epoch(self, epoch: int) -> None:
        """μ and every learning rate for `epoch` (from 0); a pure function of the epoch, so resuming
        needs no scheduler state."""
        cfg, bbn = self.config, self.bbn
        continued = epoch >= cfg.epochs
        self._norm_sums, self._norm_steps = {}, 0
        self.mu = self.mixing_ratio(epoch)
        self.t = self.schedule_step(epoch)
        self.backbone_frozen = continued and bbn.continued == "frozen_backbone"
        scale = self.lr_scale(epoch)
        factor = hls_factor(self.mu, bbn.tau) if bbn.hls else 1.0
        backbone_weights = 0.0 if self.backbone_frozen else (factor if bbn.scale_weight_lr else 1.0)
        self.w_optimizer.param_groups[0]["lr"] = cfg.sgd.lr * scale * backbone_weights
        self.w_optimizer.param_groups[1]["lr"] = cfg.sgd.lr * scale
        arch_lr = cfg.arch_lr * (scale if bbn.arch_lr_schedule == "cosine" else 1.0)
        backbone_alpha = 0.0 if self.backbone_frozen else factor  # HLS touches the backbone α group only
        for component, optimizer in self.a_optimizers.items():
            optimizer.param_groups[0]["lr"] = arch_lr * (backbone_alpha if component == "backbone" else 1.0)
        self.hls = factor

    def end_epoch(self) -> None:
        pass  # learning rates are set from the epoch number in `set_epoch`

    def epoch_summary(self) -> dict[str, float]:
        return {"mu": self.mu, "mu_t": self.t, "hls_factor": self.hls, "lr_backbone": self.w_optimizer.param_groups[0]["lr"],
                **{f"arch_lr_{c}": o.param_groups[0]["lr"] for c, o in self.a_optimizers.items()}}

    def gradient_norms(self) -> dict[str, float | None]:
        """Theorem 1 made visible: the mean over this epoch's α steps of ‖∇α L‖ per component
        (`alpha_grad_norm_backbone` over the normal and reduction cells' α together, `_instance`, `_balanced`):
        the heads' norms carry the factors μ and 1 − μ, the backbone's does not. None before any step."""
        steps = self._norm_steps
        return {f"alpha_grad_norm_{c}": (self._norm_sums[c] / steps if steps else None) for c in self.alpha_groups}

    # --- one search step ----------------------------------------------------------------------
    def step(self, train_ins: Batch, train_cls: Batch, val_ins: Batch, val_cls: Batch) -> dict[str, float]:
        self.network.train()
        if self.backbone_frozen:
            # A frozen backbone neither learns nor drifts: its BN statistics stay too.
            self.network.stem.eval()
            self.network.cells.eval()
        self.arch_step(val_ins, val_cls, train_ins, train_cls)
        return self.weight_step(train_ins, train_cls)

    def loss(self, ins: Batch, cls: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        (x_ins, y_ins), (x_cls, y_cls) = ins, cls
        o_ins, o_cls = self.network.branch_logits(x_ins, x_cls)
        return bbn_loss(o_ins, o_cls, y_ins, y_cls, self.mu), mix(o_ins, o_cls, self.mu)

    def arch_gradients(self, val_ins: Batch, val_cls: Batch, train_ins: Batch | None = None,
                       train_cls: Batch | None = None) -> dict[str, list[torch.Tensor]]:
        """∇α of the validation loss, per α component: first order, or with `search.order: second` (and the
        training batches) the unrolled gradient of Algorithm 1."""
        alphas = self.network.arch_parameters()
        if self.config.order == "second" and train_ins is not None:
            grads = iter(self.unrolled_arch_gradients(train_ins, train_cls, val_ins, val_cls))
        else:
            grads = iter(gradients(self.loss(val_ins, val_cls)[0], alphas))
        return {component: [next(grads) for _ in group] for component, group in self.alpha_groups.items()}

    def unrolled_arch_gradients(self, train_ins: Batch, train_cls: Batch, val_ins: Batch,
                                val_cls: Batch) -> list[torch.Tensor]:
        """HLS (Tang, 2024), eqs. 9 and 11: ∇α L_val(w', α) with w' = w − ξ ∇w L_train(w, α) (one virtual step
        of the weight optimizer, each group at its own ξ), by DARTS's finite differences."""
        (x_ins, y_ins), (x_cls, y_cls) = val_ins, val_cls

        def train_loss(params: None) -> torch.Tensor:
            return self.loss(train_ins, train_cls)[0]

        def val_loss(params: dict[str, torch.Tensor]) -> torch.Tensor:
            mixed = functional_call(self.network, params, (x_ins,), {"mu": self.mu, "x_cls": x_cls},
                                    tie_weights=False)  # as DartsSearch's: keeps the optimizer's Parameters
            return mixed_loss(mixed, y_ins, y_cls, self.mu)

        return unrolled_arch_gradients(self.network, self.w_optimizer, self.network.arch_parameters(), train_loss,
                                       val_loss, self.config.hvp_radius)

    def arch_step(self, val_ins: Batch, val_cls: Batch, train_ins: Batch | None = None,
                  train_cls: Batch | None = None) -> None:
        gradients_now = self.arch_gradients(val_ins, val_cls, train_ins, train_cls)
        self._norm_steps += 1
        for component, grads in gradients_now.items():
            norm = torch.sqrt(sum((g.detach().float() ** 2).sum() for g in grads)).item()
            self._norm_sums[component] = self._norm_sums.get(component, 0.0) + norm
        for component, grads in gradients_now.items():
            optimizer = self.a_optimizers[component]
            if optimizer.param_groups[0]["lr"] == 0.0:
                continue  # a stopped component (frozen backbone, HLS at μ = 0): keep its moments as they are
            for alpha, grad in zip(self.alpha_groups[component], grads):
                alpha.grad = grad
            optimizer.step()

    def weight_step(self, train_ins: Batch, train_cls: Batch) -> dict[str, float]:
        self.w_optimizer.zero_grad(set_to_none=True)
        loss, mixed = self.loss(train_ins, train_cls)
        loss.backward(inputs=self.weights)
        nn.utils.clip_grad_norm_(self.weights, self.config.sgd.grad_clip)
        self.w_optimizer.step()
        predicted = mixed.argmax(1)
        # BBN's training accuracy: the mixed prediction scored against both label sets, weighted by μ.
        correct = (self.mu * (predicted == train_ins[1]).sum() + (1 - self.mu) * (predicted == train_cls[1]).sum())
        return {"loss": loss.item(), "correct": correct.item(), "count": len(predicted)}

    # --- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"network": self.network.state_dict(), "w_optimizer": self.w_optimizer.state_dict(),
                "a_optimizers": {c: o.state_dict() for c, o in self.a_optimizers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["network"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        for component, optimizer in self.a_optimizers.items():
            optimizer.load_state_dict(state["a_optimizers"][component])
