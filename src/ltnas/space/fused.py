"""Every DARTS edge leaving one node, computed together: the same function as running each edge's
`MixedEdge.mix` in turn, in a handful of larger operations instead of dozens of tiny ones.

On a supernet the size of the quickstart's (C=8, 8×8 inputs) each convolution costs far more in
per-call overhead than in arithmetic, and a node feeds up to four edges of eight operations each. So
for the e edges leaving node h (all with the same stride and primitives):

- the first depthwise convolutions of every sep/dil operation of every edge run as plain depthwise
  convolutions over relu(h) repeated once per (operation, edge), one call per filter form (a dilated
  3×3 as the 5×5 filter with zeros between its taps, which gives the same sums and lets it share the
  sep 5×5 call);
- the pointwise 1×1 after them run as one grouped 1×1 (a group per operation and edge), and the
  BatchNorms after those as one BatchNorm over all their channels (affine-free BatchNorm normalises each
  channel on its own, so concatenating channels changes nothing); likewise the second (ReLU, depthwise,
  pointwise, BN) block of the separable convolutions, the 3×3 filters zero-padded to 5×5;
- a pooling's BatchNorm sees the same pooled input on every edge leaving h, so in training mode it gives
  the same output on each: it is computed once and each edge's running statistics move as its own
  BatchNorm would move them;
- the stride-2 skip (FactorizedReduce) of every edge is one 1×1 convolution on the two pixel grids it
  reads, side by side;
- the weighted sum Σ_o w_ko · o_k(h) is one broadcast multiply-add per operation over all edges; its
  backward stacks gradients into NCHW memory, so the layers that feed it get theirs back in channels_last
  (`gradient_in_layout`).

Parameters and buffers stay in the edges' own modules (checkpoints, optimisers and the original-DARTS
comparison see the same tensors); the weights are concatenated on each call, so gradients flow back to
them through the concatenation. Running statistics are updated with each BatchNorm's momentum, as its
own forward would. Used in training mode with gradient-carrying weights (the search step) on a GPU, and
on small activations on a CPU (`worth_fusing`); evaluation, sampled (GDAS) and constant-weight calls, edges of other
mixings (PC-DARTS) and large activations keep the per-edge path. tests/test_fused.py holds the two
paths to the same logits, gradients and statistics in float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ltnas.space.convolutions import depthwise_conv, factorized_grids, gradient_in_layout, is_nhwc, pointwise_conv

CONV_KINDS = ("sep_conv", "dil_conv")

# On a CPU, fused where a node's activations are small: there per-call overhead dominates and the fused form
# wins (quickstart search, C=8 on 8×8 digits: 1.45–1.65× the per-edge step, benchmarks/RESULTS.md, issue 12). At
# the DARTS size (C=16 on 32×32, batch 16 or 64) the per-edge form's depthwise and 1×1 convolutions hit the CPU
# library's fastest kernels while the fused, repeated ones do not: the fused step measured 0.59× there.
FUSE_MAX_NUMEL = 1 << 15
# On a CUDA GPU the step is launch-bound at every size measured, so fewer, larger kernels win there too: fused,
# the DARTS-size step ran 1.39× and the quickstart's 1.42× the per-edge step on an H100 (benchmarks/RESULTS.md,
# "GPU figures of the speed issue"), at 1.22× the per-edge step's peak memory (still below the original DARTS's).
FUSE_ALWAYS_ON = ("cuda",)


def worth_fusing(x: torch.Tensor) -> bool:
    """Whether the edges leaving a node of x's size and device run faster fused: always on a CUDA GPU,
    elsewhere when x has at most `FUSE_MAX_NUMEL` numbers."""
    return x.device.type in FUSE_ALWAYS_ON or x.numel() <= FUSE_MAX_NUMEL


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
            skip = (gradient_in_layout(inputs.x).unsqueeze(1) if first.stride == 1
                    else _factorized_reduce(inputs, [e.ops[i] for e in edges]))
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
    then the separable ones' second blocks together. Returns (op index, (N, e, C, H', W')).

    Depthwise convolutions run as plain depthwise convolutions (one filter per channel, no dilation),
    the form CPU libraries have fast kernels for: relu(h) repeated once per operation and edge, a
    dilated k×k filter spanning at most 5×5 as that filter with zeros between its taps (the same sums),
    a larger one through `depthwise_conv` (undilated phases on the CPU), and the filters of one size in
    one call."""
    e, channels, primitives = len(edges), edges[0].channels, edges[0].primitives
    first_blocks = {i: [_first_block(edge.ops[i]) for edge in edges] for i in convs}
    # separable first (their second blocks then read one slice), then by filter form
    convs = sorted(convs, key=lambda i: (not primitives[i].startswith("sep"), _form(first_blocks[i][0][1])))
    relu = inputs.relu()
    depthwise, start = [], 0
    while start < len(convs):  # one call per run of equal filter forms
        form = _form(first_blocks[convs[start]][0][1])
        stop = start
        while stop < len(convs) and _form(first_blocks[convs[stop]][0][1]) == form:
            stop += 1
        blocks = [b for i in convs[start:stop] for b in first_blocks[i]]
        weight = torch.cat([_dense_filter(b[1], form[0]) if form[1] == 1 else b[1].weight for b in blocks])
        size, dilation = form
        depthwise.append(depthwise_conv(_repeat(relu, len(blocks)), weight, blocks[0][1].stride[0],
                                        dilation * (size - 1) // 2, dilation))
        start = stop
    ordered = [b for i in convs for b in first_blocks[i]]
    stage1 = _pointwise_bn(depthwise[0] if len(depthwise) == 1 else torch.cat(depthwise, 1), ordered)
    outputs = dict(zip(convs, stage1.unflatten(1, (len(convs), e, channels)).unbind(1)))
    separable = [i for i in convs if primitives[i].startswith("sep")]
    if separable:
        blocks = [edge.ops[i][1] for i in separable for edge in edges]
        size = max(_span(b[1]) for b in blocks)
        weight = torch.cat([_dense_filter(b[1], size) for b in blocks])
        relu2 = torch.relu(stage1[:, : len(blocks) * channels])  # the separable ones come first
        y = depthwise_conv(relu2, weight, 1, size // 2)
        stage2 = _pointwise_bn(y, blocks).unflatten(1, (len(separable), e, channels)).unbind(1)
        outputs.update(zip(separable, stage2))
    return list(outputs.items())


def _form(conv: nn.Conv2d) -> tuple[int, int]:
    """(filter size, dilation) the convolution runs with: a dilated filter that spans at most 5×5 as that
    dense filter (CPU libraries have fast undilated depthwise kernels up to about that size), a larger
    one as it is."""
    span = _span(conv)
    return (span, 1) if span <= 5 else (conv.kernel_size[0], conv.dilation[0])


def _span(conv: nn.Conv2d) -> int:
    """The size of the dense filter a (possibly dilated) square k×k filter spans: d(k−1)+1."""
    return conv.dilation[0] * (conv.kernel_size[0] - 1) + 1


def _dense_filter(conv: nn.Conv2d, size: int) -> torch.Tensor:
    """conv's filters as undilated size×size filters: the taps at their dilated places, zeros elsewhere,
    centred (the convolution then pads by size // 2, as the DARTS operations pad by d(k−1)/2)."""
    span, d = _span(conv), conv.dilation[0]
    if conv.padding[0] != (span - 1) // 2 or conv.kernel_size[0] != conv.kernel_size[1] or d != conv.dilation[1]:
        raise ValueError("fused depthwise convolutions must be square, 'same'-padded filters")
    if span == size and d == 1:
        return conv.weight
    dense = conv.weight.new_zeros(conv.weight.shape[0], 1, size, size)
    offset = (size - span) // 2
    dense[:, :, offset: offset + span: d, offset: offset + span: d] = conv.weight
    return dense


def _repeat(x: torch.Tensor, times: int) -> torch.Tensor:
    """x's channels `times` over, (N, times·C, H, W), in x's memory layout."""
    if times == 1:
        return x
    if is_nhwc(x):
        n, c, h, w = x.shape
        nhwc = x.permute(0, 2, 3, 1).unsqueeze(3).expand(n, h, w, times, c).reshape(n, h, w, times * c)
        return nhwc.permute(0, 3, 1, 2)
    return x.repeat(1, times, 1, 1)


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
    out = gradient_in_layout(F.batch_norm(x, mean, var, None, None, True, first.momentum, first.eps))
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
    # The batch's mean and unbiased variance, as the BatchNorm computes them (momentum 1 makes its running
    # statistics exactly those; a separate var_mean took 4–10× the whole BatchNorm's time on the CPU).
    mean = first.running_mean.new_zeros(first.num_features)
    var = first.running_var.new_zeros(first.num_features)
    out = F.batch_norm(pooled, mean, var, None, None, True, 1.0, first.eps)
    with torch.no_grad():
        momentum = first.momentum
        for stats, value in (([n.running_mean for n in norms], mean), ([n.running_var for n in norms], var)):
            torch._foreach_mul_(stats, 1 - momentum)
            torch._foreach_add_(stats, [value] * len(stats), alpha=momentum)
        torch._foreach_add_([n.num_batches_tracked for n in norms], 1)
    return gradient_in_layout(out)


def _factorized_reduce(inputs, ops: list[nn.Module]) -> torch.Tensor:
    """Every edge's FactorizedReduce on h as one 1×1 convolution over the two pixel grids it reads,
    relu(h) at (2i, 2j) and at (2i+1, 2j+1) side by side; edge k's first C/2 output channels see only
    the first grid (its conv_1), the other C/2 only the second (its conv_2). Returns (N, e, C, H/2, W/2)."""
    relu = inputs.relu()
    both = torch.cat(factorized_grids(relu), dim=1)
    if is_nhwc(relu):
        both = both.contiguous(memory_format=torch.channels_last)
    w1 = torch.stack([op.conv_1.weight.flatten(1) for op in ops])  # (e, C/2, C_in)
    w2 = torch.stack([op.conv_2.weight.flatten(1) for op in ops])
    zeros = w1.new_zeros(w1.shape)
    weight = torch.cat([torch.cat([w1, zeros], 2), torch.cat([zeros, w2], 2)], 1)  # (e, C, 2·C_in)
    y = pointwise_conv(both, weight.flatten(0, 1)[:, :, None, None])
    y = _batch_norm(y, [op.bn for op in ops])
    return y.unflatten(1, (len(ops), y.shape[1] // len(ops)))
