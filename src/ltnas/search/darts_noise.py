"""DARTS with Gaussian noise on the skip connections: FairDARTS (Chu et al., 2020)'s Table 3, experiment 2.

FairDARTS traces DARTS' collapse into skip connections to their unfair advantage in an exclusive (softmax)
competition, and predicts that noise on the skip connections breaks it: "on top of DARTS, we mix the skip
connections' architectural weights with a standard Gaussian noise N(0, 1), which has a cosine decay on 50
epochs" (published: 97.12 ± 0.23 % on CIFAR-10 over 4 searches). The scale at search epoch e (0-based) is

    s_e = s_0 · (1 + cos(π e / T)) / 2   for e ≤ T,   0 after,

with s_0 = `noise.scale` (1: standard normal) and T = `noise.decay_epochs` (unset: the search's epochs; the
paper's 50 — the authors' script defaults to `--max_step 30`, which the paper does not mention). Where the noise goes (`noise.target`):

- output (default): the authors' code (xiaomi-automl/FairDARTS, darts/model_search.py `NoiseIdentity`) adds it
  to what a skip edge outputs, inside the mixed sum: w_skip · (x + s_e · ε), ε ~ N(0, 1) per element, drawn at
  every forward pass while training, on stride-1 skips only (a reducing skip is a factorized reduction there);
- alpha: the paper's wording, α_skip + s_e · ε before the softmax, one ε per edge (of both cell types) and forward pass.

Either way only skip_connect is touched, the α step and the weight step both see noise (as in the authors'
code), and derivation, logs and evaluation read the noiseless α (noise is drawn only in training mode). The
noise comes from the strategy's own generator, saved in its checkpoint, so a resumed search draws the same
noise as an uninterrupted one. Everything else is the DARTS step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ltnas.config import SearchConfig
from ltnas.search.darts import DartsSearch
from ltnas.space.mixing import EdgeInput, EdgeMixing, MixedEdge
from ltnas.space.relaxation import ForwardWeights, SoftmaxRelaxation

# Offset of the noise generator's seed from the search seed (the batch streams use +1 and +2, GDAS +4).
NOISE_SEED = 5
SKIP = "skip_connect"


def noise_scale(epoch: int, scale: float, decay_epochs: int) -> float:
    """s_e = scale · (1 + cos(π e / T)) / 2 for e ≤ T, else 0 (the authors' `cosine_anne`)."""
    if epoch > decay_epochs:
        return 0.0
    return scale * (1 + math.cos(math.pi * epoch / decay_epochs)) / 2


class NoisySkipEdge(MixedEdge):
    """A DARTS edge whose stride-1 skip connection outputs x + s·ε while training (s: its mixing's `scale`)."""

    def __init__(self, channels: int, stride: int, primitives: tuple[str, ...], noise: "NoisySkipMixing"):
        super().__init__(channels, stride, primitives)
        self.noise = noise  # shared by every edge: the current scale and the generator
        self.skip = self.primitives.index(SKIP) if SKIP in self.primitives and stride == 1 else None

    def _run(self, i: int, inputs: EdgeInput) -> torch.Tensor:
        out = super()._run(i, inputs)
        if i == self.skip and self.training and self.noise.scale > 0:
            out = out + self.noise.scale * torch.empty_like(out).normal_(generator=self.noise.generator)
        return out


class NoisySkipMixing(EdgeMixing):
    """DARTS' weighted sum with noisy skip connections (`NoisySkipEdge`); no parameters besides α."""

    name = "noisy_skip"

    def __init__(self):
        self.scale = 0.0
        self.generator: torch.Generator | None = None  # set by the strategy (on α's device)

    def make_edge(self, channels: int, stride: int, primitives: tuple[str, ...]) -> nn.Module:
        return NoisySkipEdge(channels, stride, primitives, self)


class NoisySkipSoftmax(SoftmaxRelaxation):
    """Reads α as softmax(α); forwards softmax(α + s·ε·[op = skip]) while training, one ε per edge."""

    name = "noisy_softmax"

    def __init__(self, skip: int):
        self.skip = skip  # the skip_connect column of α
        self.scale = 0.0
        self.generator: torch.Generator | None = None  # set by the strategy (on α's device)

    def forward(self, alpha: torch.Tensor, training: bool) -> ForwardWeights:
        if not training or self.scale == 0:
            return ForwardWeights(self(alpha))
        noise = torch.zeros_like(alpha)
        noise[:, self.skip] = torch.empty_like(alpha[:, self.skip]).normal_(generator=self.generator)
        return ForwardWeights(self(alpha + self.scale * noise))

    def __repr__(self) -> str:
        return f"NoisySkipSoftmax(skip={self.skip})"


class NoisyDartsSearch(DartsSearch):
    """The DARTS step with noisy skip connections; the scale set per epoch; the noise generator checkpointed."""

    @classmethod
    def network_options(cls, config: SearchConfig) -> dict:
        if config.noise.target == "alpha":
            return {"relaxation": NoisySkipSoftmax(list(config.cell.primitives).index(SKIP))}
        return {**super().network_options(config), "mixing": NoisySkipMixing()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.generator = torch.Generator(device=self.alphas[0].device).manual_seed(torch.initial_seed() + NOISE_SEED)
        self.noise = self.network.relaxation if self.config.noise.target == "alpha" else self.network.mixing
        self.noise.generator = self.generator

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        noise = self.config.noise
        self.noise.scale = noise_scale(epoch, noise.scale, noise.decay_epochs or self.config.epochs)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "noise_generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["noise_generator"])
