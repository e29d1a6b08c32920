"""Barlow Twins in a search: SSF-NAS (Yan, 2024) is FairDARTS plus Barlow Twins on two views of each
image; `with_barlow_twins` adds the same to any strategy with DARTS's weight and α steps (DARTS + BT
isolates what FairDARTS's sigmoid relaxation contributes).

Long-tailed labels pull the supernet's features towards the head classes; agreement between two
augmented views of the same image is a signal every image gives equally, whatever its class.
SSF-NAS's text puts Barlow Twins (BT) in the architecture step and calls it a replacement for the
supervised loss, without a formula; `search.ssl.placement` (see `SslConfig`) picks the reading:

    add:      weight step  L = L_sup(net(x), y) + w · BT(g(f(v1)), g(f(v2))) / D
    replace:  weight step  L = w · BT / D for the supernet, and L_sup(classifier(f(x).detach()), y) for
                           the classifier alone (a linear probe)
    arch:     α step       the method's objective (FairDARTS: L_val + w01 · L01) + w · BT / D on views of
                           the validation batch; weight step L = L_sup for the supernet, and
                           w · BT(g(f(v1).detach()), g(f(v2).detach())) / D for the projector alone
    (add and replace also put w · BT / D in the α step when `ssl.arch_step` is on)

with f the supernet's pooled features, g the projector, v1, v2 the two views and D the projector's
output width. The projector is trained with the weights; it is not part of the architecture.
"""

from __future__ import annotations

import contextlib
import functools

import torch
from torch import nn

from ltnas import distributed
from ltnas.config import SearchConfig
from ltnas.data.views import ViewAugment
from ltnas.errors import LtnasError
from ltnas.search.darts import Batch, Criterion, gradients
from ltnas.search.fairdarts import FairDartsSearch
from ltnas.search.losses import barlow_twins_loss
from ltnas.space.search_network import SearchNetwork


class Projector(nn.Sequential):
    """Barlow Twins' projector: Linear-BN-ReLU for every width but the last, then a Linear."""

    def __init__(self, in_features: int, widths: list[int]):
        layers: list[nn.Module] = []
        for width in widths[:-1]:
            layers += [nn.Linear(in_features, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            in_features = width
        layers.append(nn.Linear(in_features, widths[-1], bias=False))
        super().__init__(*layers)


class BarlowTwins:
    """Adds Barlow Twins to the DARTS-style strategy it precedes in the class's bases (`with_barlow_twins`)."""

    def __init__(self, network: SearchNetwork, config: SearchConfig, criterion: Criterion,
                 arch_criterion: Criterion | None = None, *, views: ViewAugment, generator: torch.Generator):
        if config.order != "first":
            raise LtnasError("Barlow Twins searches with first-order α gradients only (as FairDARTS); set "
                             "search.order=first")
        device = next(network.parameters()).device
        self.projector = Projector(network.feature_dim, config.ssl.projector).to(device)
        self.views = views
        self.generator = generator  # the views' only source of randomness: saved with the checkpoint
        super().__init__(network, config, criterion, arch_criterion)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [*super().weight_parameters(), *self.projector.parameters()]

    def barlow_twins_term(self, x: torch.Tensor, through_network: bool = True) -> torch.Tensor:
        """w · BT / D on two fresh views of the batch x; through_network=False: the supernet's features are
        detached (the term reaches the projector only)."""
        ssl = self.config.ssl
        view1, view2 = self.views(x, self.generator)
        with contextlib.nullcontext() if through_network else torch.no_grad():
            f1, f2 = self.network.features(view1), self.network.features(view2)
        z1, z2 = self.projector(f1), self.projector(f2)
        return ssl.weight * barlow_twins_loss(z1, z2, ssl.lambd) / z1.shape[1]

    def arch_gradients(self, train: Batch, val: Batch) -> list[torch.Tensor]:
        grads = super().arch_gradients(train, val)
        if self.config.ssl.placement != "arch" and not self.config.ssl.arch_step:
            return grads
        self.projector.train()
        return [g + b for g, b in zip(grads, gradients(self.barlow_twins_term(val[0]), self.alphas))]

    def weight_step(self, train: Batch) -> dict[str, float]:
        x, y = train
        placement = self.config.ssl.placement
        self.projector.train()
        self.w_optimizer.zero_grad(set_to_none=True)
        ssl_loss = self.barlow_twins_term(x, through_network=placement != "arch")
        if placement == "replace":  # the supernet learns from the views alone, the classifier is a linear probe
            with torch.no_grad():
                features = self.network.features(x)
            logits = self.network.classifier(features)
        else:
            logits = self.network(x)
        supervised = self.criterion(logits, y)
        (supervised + ssl_loss).backward(inputs=self.weights)
        # Under torchrun each rank's Barlow Twins term correlates its own shard of the batch.
        distributed.average_gradients(self.weights)
        nn.utils.clip_grad_norm_(self.weights, self.config.sgd.grad_clip)
        self.w_optimizer.step()
        return {"loss": supervised.item(), "ssl_loss": ssl_loss.item(),
                "correct": (logits.argmax(1) == y).sum().item(), "count": len(y)}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "projector": self.projector.state_dict(),
                "views_generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.projector.load_state_dict(state["projector"])
        self.generator.set_state(state["views_generator"])


class SsfSearch(BarlowTwins, FairDartsSearch):
    """SSF-NAS (Yan, 2024): FairDARTS (sigmoid relaxation, zero-one loss) plus Barlow Twins."""


@functools.cache
def with_barlow_twins(strategy: type) -> type:
    """`strategy` (a DartsSearch) with Barlow Twins added (the same class for the same strategy)."""
    if issubclass(strategy, BarlowTwins):
        return strategy
    if strategy is FairDartsSearch:
        return SsfSearch
    return type(f"{strategy.__name__}WithBarlowTwins", (BarlowTwins, strategy),
                {"__doc__": f"{strategy.__name__} plus Barlow Twins (search.ssl)."})
