"""The convolution routes of `ltnas.space.convolutions` against the library's plain convolutions, layer by layer.

    python benchmarks/conv_routes.py --threads 1            # this CPU
    python benchmarks/conv_routes.py --device cuda          # a GPU: is the route worth taking there too?
    python benchmarks/conv_routes.py --smoke                # tiny sizes, one call: checks the script runs
    python benchmarks/conv_routes.py --table products       # only the smallest maps' depthwise filters

For the DARTS operations' layers at the sizes of the quickstart (C=8 supernet and C=36 cell network on 8×8
digits), the DARTS search (C=16, batch 64, 32×32) and the DARTS_V2 retraining (C=36, batch 96, 32×32), it times
forward + backward (both gradients) of the plain layer (`F.conv2d`, channels_last) and of the route the layer
takes on the devices of `FAST_DEVICES` — a 1×1 as a matrix product, a dilated depthwise by `dilated_depthwise`'s
route for its size and stride (undilated phases, or the input gradient as a convolution) — called directly,
whatever the device. A second table times depthwise filters on the smallest maps (the quickstart's 2×2 and 4×4
cells) as `depthwise_conv` runs them without the products route against `depthwise_as_products`. Each time is the
median of `--rounds` rounds of `--calls` calls, the two variants alternating. It also prints the largest
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
from ltnas.space import convolutions
from ltnas.space.convolutions import depthwise_as_products, depthwise_conv, dilated_depthwise, pointwise_as_matmul

# (name, batch, channels, size): the places the layers run at
SIZES = [("quickstart supernet", 32, 8, 8), ("quickstart cells", 16, 36, 8), ("quickstart cells, reduced", 16, 72, 4),
         ("DARTS search", 64, 16, 32), ("DARTS search, reduced", 64, 32, 16),
         ("DARTS search, reduced twice", 64, 64, 8), ("DARTS_V2 retrain", 96, 36, 32)]
LAYERS = [("1x1", 1, 1, 1), ("dil 3x3, stride 1", 3, 2, 1), ("dil 5x5, stride 1", 5, 2, 1),
          ("dil 3x3, stride 2", 3, 2, 2), ("dil 5x5, stride 2", 5, 2, 2)]
# The smallest maps, where the products route may run: the quickstart's last cells (2×2) and those before (4×4)
SMALL_SIZES = [("quickstart supernet, last cell", 32, 32, 2), ("quickstart cells, last cell", 16, 144, 2),
               ("quickstart supernet, 4x4", 32, 16, 4), ("quickstart cells, 4x4", 16, 72, 4)]
SMALL_LAYERS = [("dw 3x3", 3, 1, 1), ("dil 3x3", 3, 2, 1), ("dw 5x5", 5, 1, 1), ("dw 3x3, stride 2", 3, 1, 2)]


def plain(x, weight, kernel, dilation, stride):
    if kernel == 1:
        return F.conv2d(x, weight)
    return F.conv2d(x, weight, None, stride, dilation * (kernel - 1) // 2, dilation, x.shape[1])


def route(x, weight, kernel, dilation, stride):
    if kernel == 1:
        return pointwise_as_matmul(x, weight)
    return dilated_depthwise(x, weight, dilation, stride)


def library(x, weight, kernel, dilation, stride):
    """The depthwise layer as `depthwise_conv` runs it in training without the products route."""
    saved, convolutions.PRODUCTS_MAX_PIXELS = convolutions.PRODUCTS_MAX_PIXELS, 0
    try:
        return depthwise_conv(x, weight, stride, dilation * (kernel - 1) // 2, dilation)
    finally:
        convolutions.PRODUCTS_MAX_PIXELS = saved


def products(x, weight, kernel, dilation, stride):
    return depthwise_as_products(x, weight, stride, dilation * (kernel - 1) // 2, dilation)


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


def difference(batch, channels, size, layer, device, pair=(plain, route)) -> float:
    """Largest absolute difference of output and both gradients, float64, relative to the largest value."""
    results = []
    for function in pair:
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
    parser.add_argument("--table", choices=["all", "routes", "products"], default="all",
                        help="routes: 1x1 and dilated layers; products: depthwise filters on the smallest maps")
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
    tables = [(sizes, LAYERS, (plain, route), "plain", "route"),
              ([("smoke, small map", 2, 4, 2)] if args.smoke else SMALL_SIZES, SMALL_LAYERS, (library, products),
               "layer", "products")]
    tables = {"all": tables, "routes": tables[:1], "products": tables[1:]}[args.table]
    for table_sizes, layers, (old_function, new_function), old_name, new_name in tables:
        print(f"\n| where | N, C, H=W | layer | {old_name} ms | {new_name} ms | {old_name} / {new_name} | float64 "
              "difference |")
        print("|---|---|---|---|---|---|---|")
        for where, batch, channels, size in table_sizes:
            for name, kernel, dilation, stride in layers:
                layer = (kernel, dilation, stride)
                x, weight = tensors(batch, channels, size, kernel, device)
                rounds = {old_function: [], new_function: []}
                for _ in range(args.rounds):
                    for function in (old_function, new_function):
                        rounds[function].append(seconds(function, x, weight, layer, args.calls, device))
                old, new = (1000 * statistics.median(rounds[f]) for f in (old_function, new_function))
                gap = difference(batch, channels, size, layer, device, (old_function, new_function))
                print(f"| {where} | {batch}, {channels}, {size} | {name} | {old:.3f} | {new:.3f} | {old / new:.2f}x | "
                      f"{gap:.1e} |", flush=True)


if __name__ == "__main__":
    main()
