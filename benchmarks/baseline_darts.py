"""The original DARTS supernet, ported faithfully: the yardstick the benchmarks measure ltnas against.

This is `operations.py` + `model_search.py` of the DARTS code (Liu et al., 2019, quark0/darts) in
today's torch: every operation of every edge evaluated on its own, `none` included, NCHW, fp32,
eager, the relaxation applied per cell, and the original first-order step (the α step backpropagates
into the weights too, whose gradients are then thrown away). Benchmark code only, not part of ltnas.

`BaselineNetwork.copy_from(search_network)` loads the exact parameters, buffers and α of an ltnas
`SearchNetwork` of the same size, so both compute the same function and can be compared output
for output and gradient for gradient.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
              "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")

OPS = {
    "none": lambda C, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "skip_connect": lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine=affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine),
}


class ReLUConvBN(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class DilConv(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=C_in,
                      bias=False),
            nn.Conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_in, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=1, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x):
        return x


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.)
        return x[:, :, ::self.stride, ::self.stride].mul(0.)


class FactorizedReduce(nn.Module):
    def __init__(self, C_in, C_out, affine=True):
        super().__init__()
        assert C_out % 2 == 0
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


class MixedOp(nn.Module):
    def __init__(self, C, stride, primitives):
        super().__init__()
        self._ops = nn.ModuleList()
        for primitive in primitives:
            op = OPS[primitive](C, stride, False)
            if "pool" in primitive:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self._ops.append(op)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class Cell(nn.Module):
    def __init__(self, steps, multiplier, C_prev_prev, C_prev, C, reduction, reduction_prev, primitives):
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(C_prev_prev, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        self._steps = steps
        self._multiplier = multiplier
        self._ops = nn.ModuleList()
        for i in range(self._steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(MixedOp(C, stride, primitives))

    def forward(self, s0, s1, weights):
        s0 = self.preprocess0(s0)
        s1 = self.preprocess1(s1)
        states = [s0, s1]
        offset = 0
        for i in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier:], dim=1)


class BaselineNetwork(nn.Module):
    """DARTS' `model_search.Network`; `relaxation` is softmax (DARTS) or sigmoid (FairDARTS)."""

    def __init__(self, C, num_classes, layers, primitives=PRIMITIVES, relaxation="softmax", steps=4,
                 multiplier=4, stem_multiplier=3, in_channels=3):
        super().__init__()
        self._relax = {"softmax": lambda a: F.softmax(a, dim=-1), "sigmoid": torch.sigmoid}[relaxation]
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            if i in [layers // 3, 2 * layers // 3]:
                C_curr *= 2
                reduction = True
            else:
                reduction = False
            cell = Cell(steps, multiplier, C_prev_prev, C_prev, C_curr, reduction, reduction_prev, primitives)
            reduction_prev = reduction
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        k = sum(1 for i in range(steps) for _ in range(2 + i))
        # Plain tensors in the original (Variables), kept out of parameters() the same way.
        self.alphas_normal = 1e-3 * torch.randn(k, len(primitives))
        self.alphas_reduce = 1e-3 * torch.randn(k, len(primitives))
        self.alphas_normal.requires_grad_(True)
        self.alphas_reduce.requires_grad_(True)

    def arch_parameters(self):
        return [self.alphas_normal, self.alphas_reduce]

    def forward(self, input):
        s0 = s1 = self.stem(input)
        for cell in self.cells:
            alphas = self.alphas_reduce if cell.reduction else self.alphas_normal
            s0, s1 = s1, cell(s0, s1, self._relax(alphas))
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))

    @torch.no_grad()
    def copy_from(self, network: nn.Module) -> "BaselineNetwork":
        """Take the parameters, buffers and α of an ltnas SearchNetwork of the same size.

        Both networks create their tensors in the same order (stem, cells, edges, operations,
        classifier), so they pair up one by one; shapes are checked on the way.
        """
        theirs = [t for name, t in network.state_dict().items() if not name.startswith("alpha_")]
        ours = list(self.state_dict().values())
        if len(theirs) != len(ours):
            raise ValueError(f"networks differ: {len(theirs)} tensors against {len(ours)}")
        for mine, other in zip(ours, theirs):
            if mine.shape != other.shape:
                raise ValueError(f"networks differ: a tensor of shape {tuple(other.shape)} against {tuple(mine.shape)}")
            mine.copy_(other)
        self.alphas_normal.copy_(network.alpha_normal)
        self.alphas_reduce.copy_(network.alpha_reduce)
        return self


class BaselineSearch:
    """The original search step: `Architect.step` on a validation batch (first order, or second order with
    `unrolled=True`: `Architect._backward_step_unrolled`), then SGD."""

    def __init__(self, network: BaselineNetwork, lr=0.025, momentum=0.9, weight_decay=3e-4, grad_clip=5.0,
                 arch_lr=3e-4, arch_betas=(0.5, 0.999), arch_weight_decay=1e-3, zero_one_weight=0.0,
                 unrolled=False):
        self.network = network
        self.grad_clip = grad_clip
        self.momentum, self.weight_decay, self.unrolled = momentum, weight_decay, unrolled
        self.zero_one_weight = zero_one_weight  # FairDARTS: w01 · −mean((σ(α) − ½)²) joins the α loss
        self.optimizer = torch.optim.SGD(network.parameters(), lr, momentum=momentum, weight_decay=weight_decay)
        self.arch_optimizer = torch.optim.Adam(network.arch_parameters(), lr=arch_lr, betas=arch_betas,
                                               weight_decay=arch_weight_decay)

    def arch_loss(self, x, y, model=None):
        model = model or self.network
        loss = F.cross_entropy(model(x), y)
        if self.zero_one_weight:
            sigma = torch.cat([torch.sigmoid(a).flatten() for a in model.arch_parameters()])
            loss = loss - self.zero_one_weight * ((sigma - 0.5) ** 2).mean()
        return loss

    def step(self, train, val):
        self.network.train()
        self.arch_optimizer.zero_grad()
        if self.unrolled:
            self._backward_step_unrolled(train, val, self.optimizer.param_groups[0]["lr"])
        else:
            self.arch_loss(*val).backward()
        self.arch_optimizer.step()
        x, y = train
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.network(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(self.network.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.item()

    # --- the original second-order step (architect.py), on a copy of the model ------------------------
    def _compute_unrolled_model(self, x, y, eta):
        model = self.network
        loss = F.cross_entropy(model(x), y)
        theta = torch.cat([p.detach().flatten() for p in model.parameters()])
        try:
            moment = torch.cat([self.optimizer.state[p]["momentum_buffer"].flatten()
                                for p in model.parameters()]) * self.momentum
        except KeyError:
            moment = torch.zeros_like(theta)
        dtheta = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))])
        dtheta = dtheta + self.weight_decay * theta
        return self._construct_model_from_theta(theta - eta * (moment + dtheta))

    @torch.no_grad()
    def _construct_model_from_theta(self, theta):
        """`model.new()` + `load_state_dict`: a fresh model holding θ, a copy of the buffers and of α."""
        new = copy.deepcopy(self.network)
        offset = 0
        for p in new.parameters():
            p.copy_(theta[offset: offset + p.numel()].view_as(p))
            offset += p.numel()
        new.alphas_normal, new.alphas_reduce = (a.detach().clone().requires_grad_(True)
                                                for a in self.network.arch_parameters())
        return new

    def _backward_step_unrolled(self, train, val, eta):
        unrolled_model = self._compute_unrolled_model(*train, eta)
        unrolled_loss = self.arch_loss(*val, model=unrolled_model)
        unrolled_loss.backward()
        dalpha = [a.grad for a in unrolled_model.arch_parameters()]
        vector = [p.grad.detach() for p in unrolled_model.parameters()]
        implicit = self._hessian_vector_product(vector, *train)
        for a, g, ig in zip(self.network.arch_parameters(), dalpha, implicit):
            a.grad = (g - eta * ig).detach()

    def _hessian_vector_product(self, vector, x, y, r=1e-2):
        model = self.network
        R = r / torch.cat([v.flatten() for v in vector]).norm()
        with torch.no_grad():
            for p, v in zip(model.parameters(), vector):
                p.add_(v, alpha=R.item())
        grads_p = torch.autograd.grad(F.cross_entropy(model(x), y), model.arch_parameters())
        with torch.no_grad():
            for p, v in zip(model.parameters(), vector):
                p.sub_(v, alpha=2 * R.item())
        grads_n = torch.autograd.grad(F.cross_entropy(model(x), y), model.arch_parameters())
        with torch.no_grad():
            for p, v in zip(model.parameters(), vector):
                p.add_(v, alpha=R.item())
        return [(gp - gn) / (2 * R) for gp, gn in zip(grads_p, grads_n)]
