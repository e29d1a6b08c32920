"""torch's multi-tensor (`foreach`) SGD update against its default on the CPU, which loops over the tensors.

    python benchmarks/optimizer_step.py --threads 1      # the quickstart network's and DARTS_V2's weights
    python benchmarks/optimizer_step.py --smoke          # a tiny network, few steps: checks the script runs

Both optimizers (the training stages' SGD: momentum 0.9, weight decay 3e-4) update their own copy of a network's
weights with the same gradients, step for step alternating, on the CPU; it prints the median seconds per `step()`
of each, their ratio, and whether the two copies of the weights are bitwise equal after all steps. (torch takes
the foreach update by default on GPUs only. Measured on the CPU: 1.14× for the quickstart network's 219 small
tensors, 0.89× for DARTS_V2's 3.35M weights — so the stages keep torch's default; benchmarks/RESULTS.md.)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from ltnas.space import DiscreteNetwork, load_genotype

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
                                image_size=size)
        ours = [p.detach().clone().requires_grad_() for p in model.parameters()]
        theirs = [p.detach().clone().requires_grad_() for p in model.parameters()]
        optimizers = {"foreach": (torch.optim.SGD(ours, 0.025, momentum=0.9, weight_decay=3e-4, foreach=True), ours),
                      "default": (torch.optim.SGD(theirs, 0.025, momentum=0.9, weight_decay=3e-4), theirs)}
        times: dict[str, list[float]] = {label: [] for label in optimizers}
        for _ in range(steps):
            gradients = [torch.randn_like(p) for p in ours]
            for label, (optimizer, params) in optimizers.items():
                for p, g in zip(params, gradients):
                    p.grad = g.clone()
                began = time.perf_counter()
                optimizer.step()
                times[label].append(time.perf_counter() - began)
        ms = {label: 1e3 * statistics.median(seconds) for label, seconds in times.items()}
        equal = all(torch.equal(a, b) for a, b in zip(ours, theirs))
        print(f"{name}: {len(ours)} tensors, {sum(p.numel() for p in ours) / 1e6:.2f}M weights; "
              f"default {ms['default']:.2f} ms/step, foreach {ms['foreach']:.2f} ms/step, "
              f"{ms['default'] / ms['foreach']:.2f}x; weights bitwise equal after {steps} steps: {equal}")


if __name__ == "__main__":
    main()
