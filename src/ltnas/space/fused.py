"""Every DARTS edge leaving one node, computed together: the same function as running each edge's
`MixedEdge.mix` in turn, in a handful of large operations instead of dozens of tiny ones.

On a supernet the size of the quickstart's (C=8, 8×8 inputs) each convolution costs far more in
per-call overhead than in arithmetic, and a node feeds up to four edges of eight operations each. So
for the e edges leaving node h (all with the same stride and primitives):

- every first depthwise convolution of one kind (sep 3×3, sep 5×5, dil 3×3, dil 5×5) runs as one
  depthwise convolution with e outputs per channel: out_{c·e+k} = dw_k(relu(h)_c), the weights of the
  e edges stacked;
- every pointwise 1×1 after them runs as one grouped 1×1 (a group per operation and edge), and every
  BatchNorm after those as one BatchNorm over all their channels (affine-free BatchNorm normalises each
  channel on its own, so concatenating channels changes nothing), and likewise for the second
  (ReLU, depthwise, pointwise, BN) block of the separable convolutions;
- a pooling's BatchNorm sees the same pooled input on every edge leaving h, so in training mode it gives
  the same output on each: it is computed once and each edge's running statistics move as its own
  BatchNorm would move them;
- the stride-2 skip (FactorizedReduce) of every edge is one 1×1 convolution on the two pixel grids it
  reads, side by side;
- the weighted sum Σ_o w_ko · o_k(h) is one broadcast multiply-add per operation over all edges.

Parameters and buffers stay in the edges' own modules (checkpoints, optimisers and the original-DARTS
comparison see the same tensors); the weights are concatenated on each call, so gradients flow back to
them through the concatenation. Running statistics are updated with each BatchNorm's momentum, as its
own forward would. Used in training mode with gradient-carrying weights (the search step); evaluation,
sampled (GDAS) and constant-weight calls, and edges of other mixings, keep the per-edge path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONV_KINDS = ("sep_conv", "dil_conv")


def fusable(edges: list[nn.Module]) -> bool:
    """Edges that `mix_edges` can run together: DARTS' own `MixedEdge` (not a subclass that changes the
    mixing), all with one stride and one list of primitives."""
    from ltnas.space.mixing import MixedEdge

    first = edges[0]
    return all(type(edge) is MixedEdge and edge.stride == first.stride and edge.primitives == first.primitives
               and edge.channels == first.channels for edge in edges)


def mix_edges(inputs, edges: list[nn.Module], weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(Σ_o w_ko · o_k(h) for each edge k), with h = `inputs.x` and w_k = `weights[k]` (edges × ops)."""
    first = edges[0]
    terms: list[tuple[int, torch.Tensor]] = []  # (operation index, (N, e or 1, C, H', W') output)
    convs = [i for i, name in enumerate(first.primitives) if name.startswith(CONV_KINDS)]
    if convs:
        terms += _conv_ops(inputs, edges, convs)
    for i, name in enumerate(first.primitives):
        if "pool" in name:
            terms.append((i, _pool_op(inputs, [edge.ops[i] for edge in edges]).unsqueeze(1)))
        elif name == "skip_connect":
            skip = inputs.x.unsqueeze(1) if first.stride == 1 else _factorized_reduce(inputs, [e.ops[i] for e in edges])
            terms.append((i, skip))
    if not terms:  # only `none`: zeros of the output shape on every edge
        x = inputs.x if first.stride == 1 else inputs.x[:, :, :: first.stride, :: first.stride]
        return tuple(x.mul(0.0) for _ in edges)
    out = None
    for i, z in terms:
        term = weights[:, i].view(1, -1, 1, 1, 1) * z
        out = term if out is None else out + term
    return out.unbind(1)


# --- convolutions ------------------------------------------------------------------------------

def _conv_ops(inputs, edges, convs: list[int]) -> list[tuple[int, torch.Tensor]]:
    """Every sep/dil convolution of every edge: their first (depthwise, pointwise, BN) blocks together,
    then the separable ones' second blocks together. Returns (op index, (N, e, C, H', W'))."""
    e, channels = len(edges), edges[0].channels
    convs = sorted(convs, key=lambda i: not edges[0].primitives[i].startswith("sep"))  # separable first
    first_blocks = [[_first_block(edge.ops[i]) for edge in edges] for i in convs]
    relu = inputs.relu()
    depthwise = []
    for blocks in first_blocks:  # one depthwise convolution per kind, e outputs per channel
        conv = blocks[0][1]
        weight = torch.stack([b[1].weight for b in blocks], 1).flatten(0, 1)  # (C·e, 1, k, k): row c·e + k
        y = F.conv2d(relu, weight, None, conv.stride, conv.padding, conv.dilation, groups=channels)
        depthwise.append(y.unflatten(1, (channels, e)).transpose(1, 2))  # (N, e, C, H', W')
    stage1 = _pointwise_bn(_join(depthwise, relu), [b for blocks in first_blocks for b in blocks])
    stage1 = stage1.unflatten(1, (len(convs), e, channels))
    separable = [j for j, i in enumerate(convs) if edges[0].primitives[i].startswith("sep")]
    outputs = [stage1[:, j] for j in range(len(convs))]
    if separable:
        second = [[edge.ops[convs[j]][1] for edge in edges] for j in separable]
        relu2 = torch.relu(stage1[:, : len(separable)])  # the separable ones come first
        depthwise = []
        for j, blocks in enumerate(second):
            conv = blocks[0][1]
            weight = torch.cat([b[1].weight for b in blocks])  # (e·C, 1, k, k)
            y = F.conv2d(_flat(relu2[:, j]), weight, None, conv.stride, conv.padding, conv.dilation,
                         groups=e * channels)
            depthwise.append(y.unflatten(1, (e, channels)))
        stage2 = _pointwise_bn(_join(depthwise, relu), [b for blocks in second for b in blocks])
        stage2 = stage2.unflatten(1, (len(separable), e, channels))
        for j in separable:
            outputs[j] = stage2[:, j]
    return [(i, out) for i, out in zip(convs, outputs)]


def _first_block(op: nn.Module) -> nn.Module:
    """The (ReLU, depthwise, pointwise, BN) block an operation starts with: a DilConv, or a SepConv's first."""
    return op[0] if isinstance(op[0], nn.Sequential) else op


def _pointwise_bn(x: torch.Tensor, blocks: list[nn.Module]) -> torch.Tensor:
    """Each block's 1×1 on its own C channels of x (one grouped convolution), then each block's
    BatchNorm (one over all channels)."""
    weight = torch.cat([b[2].weight for b in blocks])  # (G·C, C, 1, 1)
    return _batch_norm(F.conv2d(x, weight, groups=len(blocks)), [b[3] for b in blocks])


def _batch_norm(x: torch.Tensor, norms: list[nn.BatchNorm2d]) -> torch.Tensor:
    """Each BatchNorm on its own consecutive channels of x, in training mode, as one call: the
    concatenated running statistics move as each would, then go back to their modules."""
    first = norms[0]
    if first.affine or first.momentum is None or any(n.momentum != first.momentum or n.eps != first.eps for n in norms):
        raise ValueError("fused BatchNorms must be affine-free with one fixed momentum and eps")
    mean = torch.cat([n.running_mean for n in norms])
    var = torch.cat([n.running_var for n in norms])
    out = F.batch_norm(x, mean, var, None, None, True, first.momentum, first.eps)
    with torch.no_grad():
        sizes = [n.num_features for n in norms]
        torch._foreach_copy_([n.running_mean for n in norms], list(mean.split(sizes)))
        torch._foreach_copy_([n.running_var for n in norms], list(var.split(sizes)))
        torch._foreach_add_([n.num_batches_tracked for n in norms], 1)
    return out


# --- pooling and skip ------------------------------------------------------------------------------

def _pool_op(inputs, ops: list[nn.Sequential]) -> torch.Tensor:
    """BN(pool(h)), the same on every edge leaving h in training mode; each edge's running
    statistics move with the batch's mean and unbiased variance, as its own BatchNorm's would."""
    pooled = inputs.pooled(ops[0][0])
    norms = [op[1] for op in ops]
    first = norms[0]
    if first.affine or first.momentum is None or any(n.momentum != first.momentum or n.eps != first.eps for n in norms):
        raise ValueError("fused BatchNorms must be affine-free with one fixed momentum and eps")
    with torch.no_grad():
        var, mean = torch.var_mean(pooled, dim=(0, 2, 3))
        momentum = first.momentum
        for stats, value in (([n.running_mean for n in norms], mean), ([n.running_var for n in norms], var)):
            torch._foreach_mul_(stats, 1 - momentum)
            torch._foreach_add_(stats, [value.to(stats[0].dtype)] * len(stats), alpha=momentum)
        torch._foreach_add_([n.num_batches_tracked for n in norms], 1)
    return F.batch_norm(pooled, None, None, None, None, True, 0.0, first.eps)


def _factorized_reduce(inputs, ops: list[nn.Module]) -> torch.Tensor:
    """Every edge's FactorizedReduce on h as one 1×1 convolution over the two pixel grids it reads,
    relu(h) at (2i, 2j) and at (2i+1, 2j+1) side by side; edge k's first C/2 output channels see only
    the first grid (its conv_1), the other C/2 only the second (its conv_2). Returns (N, e, C, H/2, W/2)."""
    relu = inputs.relu()
    grid1 = relu[:, :, ::2, ::2]
    grid2 = F.pad(relu, (0, 1, 0, 1))[:, :, 1::2, 1::2]  # the original's x[:, :, 1:, 1:] (odd sizes: padded)
    both = torch.cat([grid1, grid2], dim=1)
    if relu.is_contiguous(memory_format=torch.channels_last) and not relu.is_contiguous():
        both = both.contiguous(memory_format=torch.channels_last)
    w1 = torch.stack([op.conv_1.weight.flatten(1) for op in ops])  # (e, C/2, C_in)
    w2 = torch.stack([op.conv_2.weight.flatten(1) for op in ops])
    zeros = w1.new_zeros(w1.shape)
    weight = torch.cat([torch.cat([w1, zeros], 2), torch.cat([zeros, w2], 2)], 1)  # (e, C, 2·C_in)
    y = F.conv2d(both, weight.flatten(0, 1)[:, :, None, None].contiguous())
    y = _batch_norm(y, [op.bn for op in ops])
    return y.unflatten(1, (len(ops), y.shape[1] // len(ops)))


# --- layout ------------------------------------------------------------------------------------

def _join(parts: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """(N, g, C, H, W) views → one (N, Σg·C, H, W) tensor, channels_last when `like` is."""
    if like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous():
        nhwc = torch.cat([p.permute(0, 3, 4, 1, 2) for p in parts], dim=3)  # (N, H, W, Σg, C), dense
        return nhwc.flatten(3).permute(0, 3, 1, 2)
    return torch.cat(parts, 1).flatten(1, 2)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(N, g, C, H, W) → (N, g·C, H, W) without copying when the layout allows."""
    return x.flatten(1, 2)
