"""One retraining step of the DARTS_V2 evaluation network (C=36, 20 layers, auxiliary head, batch 96).

    python benchmarks/retrain_step.py --threads 2
    python benchmarks/retrain_step.py --device cuda --amp --channels-last
    python benchmarks/retrain_step.py --smoke          # tiny sizes: checks the script runs, times nothing useful

The step is the retrain recipe's (`ltnas.train.retrain`): forward with the auxiliary head and
drop-path 0.2, loss + 0.4 × auxiliary loss, backward, gradient clipping at 5, SGD with momentum. The
reference in the same run is that step in plain NCHW fp32 eager, the original DARTS formulation (the
discrete network is the original NetworkCIFAR); with --amp or --channels-last the tuned step is timed
beside it. Random tensors stand in for CIFAR. Peak memory: CUDA peak allocated; on CPU the maximum
resident set of the process (both variants run in this process, so only the CUDA figure is per variant).
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

from ltnas.runs import resolve_device
from ltnas.space import DiscreteNetwork, count_parameters, load_genotype
from ltnas.train.precision import autocast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--genotype", default="DARTS_V2")
    parser.add_argument("--channels", type=int, default=36)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after warm-up)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (train.amp)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last weights and inputs")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one step: for the test suite")
    args = parser.parse_args()
    if args.smoke:
        args.channels, args.layers, args.batch, args.size, args.steps, args.warmup = 4, 3, 4, 8, 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {device}{gpu}, torch {torch.__version__}")
    variants = [("fp32 NCHW (original)", False, False)]
    if args.amp or args.channels_last:
        variants.append((f"{'bf16 autocast' if args.amp else 'fp32'}{', channels_last' if args.channels_last else ''}",
                         args.amp, args.channels_last))
    reference = None
    for name, amp, channels_last in variants:
        seconds, peak, params = time_steps(args, device, amp, channels_last)
        print(f"{args.genotype} retrain step, C={args.channels}, {args.layers} layers ({params / 1e6:.2f}M "
              f"parameters), batch {args.batch}, {args.size}x{args.size}, {name}: {seconds:.3f} s/step, "
              f"{args.batch / seconds:.1f} images/s, peak memory {peak:.0f} MB")
        reference = reference or seconds
    if len(variants) > 1:
        print(f"tuned / original: {reference / seconds:.2f}x images/s")


def time_steps(args, device: torch.device, amp: bool, channels_last: bool) -> tuple[float, float, int]:
    torch.manual_seed(0)
    model = DiscreteNetwork(load_genotype(args.genotype), args.channels, 10, args.layers, auxiliary=True,
                            image_size=args.size).to(device)
    model.drop_path_prob = 0.2
    model.train()
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, amp):
            logits, aux_logits = model(x)
            loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux_logits, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        step()
    synchronize(device)
    began = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize(device)
    seconds = (time.perf_counter() - began) / args.steps
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, peak, count_parameters(model)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
