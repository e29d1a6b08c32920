"""FairDARTS (Chu et al., 2020): independent sigmoid weights plus a zero-one loss on them.

Softmax makes the operations of an edge compete, which lets skip connections crowd out the
rest ("unfair advantage"); with a sigmoid each operation is switched on or off on its own merit.
The zero-one loss then drives every σ(α) towards 0 or 1 so that thresholding (σ ≥ 0.85) at the
end changes the network little. Everything else is the DARTS step.
"""

from __future__ import annotations

import torch

from ltnas.search.darts import Batch, DartsSearch, _grad
from ltnas.search.losses import zero_one_loss


class FairDartsSearch(DartsSearch):
    relaxation = "sigmoid"

    def arch_step(self, train: Batch, val: Batch) -> None:
        if self.config.order == "second":
            grads = self.second_order_arch_grads(train, val)
        else:
            x_val, y_val = val
            grads = _grad(self.arch_criterion(self.network(x_val), y_val), self.alphas)
        # The zero-one term depends on α alone, so its gradient simply adds to either order's.
        grads = [g + z for g, z in zip(grads, self.zero_one_grads())]
        for alpha, grad in zip(self.alphas, grads):
            alpha.grad = grad
        self.a_optimizer.step()

    def zero_one_term(self) -> torch.Tensor:
        """w01 · L01 over the relaxed weights of both cell types."""
        weights = self.network.relaxed_weights()
        return self.config.zero_one_weight * zero_one_loss(list(weights.values()), self.config.zero_one_kind)

    def zero_one_grads(self) -> tuple[torch.Tensor, ...]:
        return _grad(self.zero_one_term(), self.alphas)
