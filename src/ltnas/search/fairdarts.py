"""FairDARTS (Chu et al., 2020): independent sigmoid weights plus a zero-one loss on them.

Softmax makes the operations of an edge compete, which lets skip connections crowd out the
rest ("unfair advantage"); with a sigmoid each operation is switched on or off on its own merit.
The zero-one loss then drives every σ(α) towards 0 or 1 so that thresholding (σ ≥ 0.85) at the
end changes the network little. Everything else is the DARTS step.
"""

from __future__ import annotations

import torch

from ltnas.search.darts import Batch, DartsSearch, gradients
from ltnas.search.losses import zero_one_loss


class FairDartsSearch(DartsSearch):
    relaxation = "sigmoid"

    def arch_gradients(self, train: Batch, val: Batch) -> list[torch.Tensor]:
        # The zero-one term depends on α alone, so its gradient simply adds to either order's.
        return [g + z for g, z in zip(super().arch_gradients(train, val), self.zero_one_grads())]

    def zero_one_term(self) -> torch.Tensor:
        """w01 · L01 over the relaxed weights of both cell types."""
        weights = self.network.relaxed_weights()
        settings = self.config.fairdarts
        return settings.zero_one_weight * zero_one_loss(list(weights.values()), settings.zero_one_kind)

    def zero_one_grads(self) -> tuple[torch.Tensor, ...]:
        return gradients(self.zero_one_term(), self.alphas)
