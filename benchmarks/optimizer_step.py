"""The retraining's update — gradient clipping and SGD — three ways on the CPU: torch's default, which loops over
the tensors; torch's multi-tensor (`foreach`) one; and over one buffer holding every parameter (ltnas.train.flat).

    python benchmarks/optimizer_step.py --threads 1      # the quickstart network's and DARTS_V2's weights
    python benchmarks/optimizer_step.py --smoke          # a tiny network, few steps: checks the script runs

Each variant updates its own copy of a network's weights (channels_last, as the retraining keeps them) with the
same gradients, step for step alternating: `clip_grad_norm_` at 5 (the gradients' norm exceeds it, so every step
scales them) and SGD (momentum 0.9, weight decay 3e-4). It prints the median milliseconds per update of each, their
ratios to the default, and how far each copy's weights are from the default's after all steps: foreach is bitwise
the same; the buffer's clipping norm is one sum over all numbers instead of a norm of per-tensor norms, so its
weights differ by rounding. (torch takes the foreach update by default on GPUs only. Measured on the CPU:
benchmarks/RESULTS.md, "One buffer for the parameters".)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from ltnas.space import DiscreteNetwork, load_genotype
from ltnas.train.flat import FlatParameters

# (name, channels, layers, image size, image channels): the networks whose weights are updated
NETWORKS = [("quickstart network (DARTS_V2 cell, C=36, 6 cells)", 36, 6, 8, 1),
            ("DARTS_V2, C=36, 20 cells", 36, 20, 32, 3)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per optimizer")
    parser.add_argument("--device", default="cpu", choices=["cpu"],
                        help="the CPU only: on GPUs torch's default SGD takes the multi-tensor update already")
    parser.add_argument("--smoke", action="store_true", help="a tiny network, 5 steps")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    networks = [("tiny (C=4, 2 cells)", 4, 2, 8, 1)] if args.smoke else NETWORKS
    steps = 5 if args.smoke else args.steps
    print(f"machine: {platform.machine()}, {args.threads} torch threads, cpu, torch {torch.__version__}")
    for name, channels, layers, size, in_channels in networks:
        torch.manual_seed(0)
        model = DiscreteNetwork(load_genotype("DARTS_V2"), channels, 10, layers, in_channels=in_channels,
                                image_size=size).to(memory_format=torch.channels_last)
        copies = {label: [p.detach().clone().requires_grad_() for p in model.parameters()]
                  for label in ("default", "foreach", "flat")}
        flat = FlatParameters(copies["flat"])
        updates = {"default": (copies["default"], {}), "foreach": (copies["foreach"], {"foreach": True}),
                   "flat": ([flat.flat], {})}
        optimizers = {label: torch.optim.SGD(params, 0.025, momentum=0.9, weight_decay=3e-4, **options)
                      for label, (params, options) in updates.items()}
        times: dict[str, list[float]] = {label: [] for label in updates}
        for _ in range(steps):
            gradients = [torch.randn_like(p) for p in copies["default"]]
            for label, (params, options) in updates.items():
                with torch.no_grad():
                    for p, g in zip(copies[label], gradients):
                        if label == "flat":
                            p.grad.copy_(g)
                        else:
                            p.grad = g.clone()
                began = time.perf_counter()
                nn.utils.clip_grad_norm_(params, 5.0, **options)
                optimizers[label].step()
                times[label].append(time.perf_counter() - began)
        ms = {label: 1e3 * statistics.median(seconds) for label, seconds in times.items()}
        default = copies["default"]
        differences = {label: max(float((a - b).detach().abs().max()) for a, b in zip(copies[label], default))
                       for label in ("foreach", "flat")}
        print(f"{name}: {len(default)} tensors, {sum(p.numel() for p in default) / 1e6:.2f}M weights; clip + SGD: "
              f"default {ms['default']:.2f} ms, foreach {ms['foreach']:.2f} ms ({ms['default'] / ms['foreach']:.2f}x), "
              f"flat {ms['flat']:.2f} ms ({ms['default'] / ms['flat']:.2f}x); largest weight difference from the "
              f"default after {steps} steps: foreach {differences['foreach']:.1e}, flat {differences['flat']:.1e}")


if __name__ == "__main__":
    main()
