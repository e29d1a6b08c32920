"""The classifier at the end of every network: a linear layer, or LDAM-DRW's normalised (cosine) one.

LDAM (Cao et al., 2019) subtracts a margin m_y from the true class's logit and scales by s before the
softmax. Its code pairs the loss with `NormedLinear`, whose logits are cosines in [−1, 1], so that a margin of
0.5 and s = 30 mean the same thing throughout training; on an unbounded linear layer the logits grow and
the margins fade. Every network (supernet, discrete network, BBN heads, IMB-NAS's supernet and subnets, the
baselines) builds its classifier here, and the choice follows the loss (`uses_normalised_classifier`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ltnas.config import LongTailConfig


class NormedLinear(nn.Module):
    """z_c = ⟨x / ‖x‖, w_c / ‖w_c‖⟩ ∈ [−1, 1] for each class c: no bias, weight of shape (in, classes).

    As LDAM-DRW's code: the weight starts uniform(−1, 1), each class column renormed to norm ≤ 1e−5 and then
    multiplied by 1e5 (every column of norm 1 at most, directions uniform on the cube).
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        with torch.no_grad():
            self.weight.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=0)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, normalised"


def make_classifier(in_features: int, num_classes: int, normalised: bool = False) -> nn.Module:
    """`NormedLinear` when `normalised`, else `nn.Linear` (with bias)."""
    return NormedLinear(in_features, num_classes) if normalised else nn.Linear(in_features, num_classes)


def uses_normalised_classifier(longtail: LongTailConfig) -> bool:
    """The loss decides, as in LDAM-DRW: LDAM gets the normalised classifier, every other loss a linear one."""
    return longtail.loss == "ldam"


def is_normalised(classifier: nn.Module) -> bool:
    return isinstance(classifier, NormedLinear)
