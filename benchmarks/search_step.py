"""Images per second of one DARTS search step (α step + weight step) at the DARTS search size.

    python benchmarks/search_step.py                 # C=16, 8 layers, batch 64, 32×32, 10 classes
    python benchmarks/search_step.py --order second --device cuda
    python benchmarks/search_step.py --smoke         # tiny sizes: checks the script runs, times nothing useful

Random tensors stand in for CIFAR (the step's cost does not depend on pixel values). Prints the
machine, the settings, seconds per step and images per second (train + val images per step).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from ltnas.config import SearchConfig
from ltnas.runs import resolve_device
from ltnas.search import DartsSearch
from ltnas.space import SearchNetwork


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--order", choices=["first", "second"], default="first")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after warm-up)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one step: for the test suite")
    args = parser.parse_args()
    if args.smoke:
        args.channels, args.layers, args.batch, args.size, args.steps, args.warmup = 2, 3, 4, 8, 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)

    device = resolve_device(args.device)
    torch.manual_seed(0)
    network = SearchNetwork(args.channels, 10, args.layers).to(device)
    strategy = DartsSearch(network, SearchConfig(order=args.order, epochs=1), F.cross_entropy)

    def batch():
        return (torch.randn(args.batch, 3, args.size, args.size, device=device),
                torch.randint(0, 10, (args.batch,), device=device))

    train, val = batch(), batch()
    for _ in range(args.warmup):
        strategy.step(train, val)
    synchronize(device)
    began = time.perf_counter()
    for _ in range(args.steps):
        strategy.step(train, val)
    synchronize(device)
    seconds = (time.perf_counter() - began) / args.steps

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
          f"torch {torch.__version__}")
    print(f"DARTS {args.order}-order search step: C={args.channels}, {args.layers} layers, batch {args.batch}, "
          f"{args.size}x{args.size}")
    print(f"{seconds:.3f} s/step, {2 * args.batch / seconds:.1f} images/s (train + val images)")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
