"""The convolution routes of `ltnas.space.convolutions` against the library's plain convolutions, layer by layer.

    python benchmarks/conv_routes.py --threads 1            # this CPU
    python benchmarks/conv_routes.py --device cuda          # a GPU: is the route worth taking there too?
    python benchmarks/conv_routes.py --smoke                # tiny sizes, one call: checks the script runs

For the DARTS operations' layers at the sizes of the quickstart (C=8 supernet and C=36 cell network on 8×8
digits), the DARTS search (C=16, batch 64, 32×32) and the DARTS_V2 retraining (C=36, batch 96, 32×32), it times
forward + backward (both gradients) of the plain layer (`F.conv2d`, channels_last) and of the route the layer
takes on the devices of `FAST_DEVICES` — a 1×1 as a matrix product, a dilated depthwise by `dilated_depthwise`'s
route for its size and stride (undilated phases, or the input gradient as a convolution) — called directly,
whatever the device. Each time is the median of `--rounds` rounds of `--calls` calls, the two variants
alternating. It also prints the largest
difference of the two in float64 (the same sums: rounding only).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from ltnas.runs import resolve_device
from ltnas.space.convolutions import dilated_depthwise, pointwise_as_matmul

# (name, batch, channels, size): the places the layers run at
SIZES = [("quickstart supernet", 32, 8, 8), ("quickstart cells", 16, 36, 8), ("quickstart cells, reduced", 16, 72, 4),
         ("DARTS search", 64, 16, 32), ("DARTS search, reduced", 64, 32, 16),
         ("DARTS search, reduced twice", 64, 64, 8), ("DARTS_V2 retrain", 96, 36, 32)]
LAYERS = [("1x1", 1, 1, 1), ("dil 3x3, stride 1", 3, 2, 1), ("dil 5x5, stride 1", 5, 2, 1),
          ("dil 3x3, stride 2", 3, 2, 2), ("dil 5x5, stride 2", 5, 2, 2)]


def plain(x, weight, kernel, dilation, stride):
    if kernel == 1:
        return F.conv2d(x, weight)
    return F.conv2d(x, weight, None, stride, dilation * (kernel - 1) // 2, dilation, x.shape[1])


def route(x, weight, kernel, dilation, stride):
    if kernel == 1:
        return pointwise_as_matmul(x, weight)
    return dilated_depthwise(x, weight, dilation, stride)


def tensors(batch, channels, size, kernel, device, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size, size, generator=generator, dtype=dtype)
    weight = torch.randn(channels, 1 if kernel > 1 else channels, kernel, kernel, generator=generator, dtype=dtype)
    x = x.to(device).contiguous(memory_format=torch.channels_last).requires_grad_()
    return x, weight.to(device).requires_grad_()


def seconds(function, x, weight, layer, calls, device) -> float:
    grad = torch.ones_like(function(x, weight, *layer))
    for _ in range(2):
        function(x, weight, *layer).backward(grad)
    synchronize(device)
    began = time.perf_counter()
    for _ in range(calls):
        function(x, weight, *layer).backward(grad)
    synchronize(device)
    return (time.perf_counter() - began) / calls


def difference(batch, channels, size, layer, device) -> float:
    """Largest absolute difference of output and both gradients, float64, relative to the largest value."""
    results = []
    for function in (plain, route):
        x, weight = tensors(min(batch, 4), channels, size, layer[0], device, torch.float64)
        y = function(x, weight, *layer)
        y.backward(torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=device).view_as(y))
        results.append((y.detach(), x.grad, weight.grad))
    return max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(*results))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one call: for the test suite")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sizes = [("smoke", 2, 4, 6)] if args.smoke else SIZES
    if args.smoke:
        args.calls, args.rounds = 1, 1
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {device}{gpu}, torch {torch.__version__}; fp32, channels_last; forward + backward, median of "
          f"{args.rounds} rounds of {args.calls} calls")
    print("| where | N, C, H=W | layer | plain ms | route ms | plain / route | float64 difference |")
    print("|---|---|---|---|---|---|---|")
    for where, batch, channels, size in sizes:
        for name, kernel, dilation, stride in LAYERS:
            layer = (kernel, dilation, stride)
            x, weight = tensors(batch, channels, size, kernel, device)
            rounds = {plain: [], route: []}
            for _ in range(args.rounds):
                for function in (plain, route):
                    rounds[function].append(seconds(function, x, weight, layer, args.calls, device))
            old, new = (1000 * statistics.median(rounds[f]) for f in (plain, route))
            print(f"| {where} | {batch}, {channels}, {size} | {name} | {old:.3f} | {new:.3f} | {old / new:.2f}x | "
                  f"{difference(batch, channels, size, layer, device):.1e} |", flush=True)


if __name__ == "__main__":
    main()
