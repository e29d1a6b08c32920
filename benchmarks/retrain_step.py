"""One retraining step of the DARTS_V2 evaluation network (C=36, 20 layers, auxiliary head, batch 96).

    python benchmarks/retrain_step.py --threads 2
    python benchmarks/retrain_step.py --device cuda --amp --channels-last
    python benchmarks/retrain_step.py --smoke          # tiny sizes: checks the script runs, times nothing useful
    python benchmarks/retrain_step.py --quickstart --channels-last --revision f0fd91f --repeats 5 --threads 1
                                                       # the quickstart network: this tree beside a git revision
    python benchmarks/retrain_step.py --quickstart --channels-last --threads 1 --batch 1
                                                       # its step's fixed cost (a size given beside --quickstart wins)

The step is the retrain recipe's: forward with the auxiliary head and drop-path 0.2, loss + 0.4 × auxiliary loss,
backward, gradient clipping at 5, SGD with momentum. The reference in the same run is that step written out here in
plain NCHW fp32 eager, the original DARTS formulation (the discrete network is the original NetworkCIFAR); with --amp
or --channels-last the tuned step is timed beside it, and the tuned step is the retrain stage's own
(`ltnas.train.retrain.RetrainTask.run_epoch` over random images: its optimiser, the batches' augmentation on the
device, the per-step loss read-out), so a change to the stage's loop shows in it. Random tensors stand in for CIFAR.
Peak memory: CUDA peak allocated; on CPU the maximum resident set of the process (both variants run in this process,
so only the CUDA figure is per variant).

--quickstart sets the quickstart's retraining (configs/quickstart.yaml: the cell network at C=36, 6 cells, batch
16, 8×8 grey digits, no auxiliary head, no drop-path; the stage's step with its logit-adjusted loss, weight decay
1e-3 and 1-pixel crops). With --revision REV the tuned step (and the evaluation
forward pass) of this working tree is timed beside git revision REV's, in alternating fresh processes
(benchmarks/revision.py): before and after a change, in one run. Every mode also times evaluation: the network
in eval mode without gradients, at --eval-batch images per call, as `ltnas evaluate` runs it.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import revision  # noqa: E402

from ltnas.runs import resolve_device  # noqa: E402
from ltnas.space import DiscreteNetwork, count_parameters, load_genotype  # noqa: E402
from ltnas.train.precision import autocast  # noqa: E402

# The quickstart's retraining (configs/quickstart.yaml, train): C=36, 6 cells, batch 16, 8×8×1 digits, no
# auxiliary head, no drop-path.
QUICKSTART = {"channels": 36, "layers": 6, "batch": 16, "size": 8, "in_channels": 1, "auxiliary": False,
              "drop_path": 0.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    parser.add_argument("--in-channels", type=int, default=3, help="image channels (digits: 1)")
    parser.add_argument("--quickstart", action="store_true", help="the quickstart's retraining: C=36, 6 cells, "
                        "batch 16, 8x8x1, no auxiliary head or drop-path (a size given as well wins: --batch 1 "
                        "times the step's fixed cost)")
    parser.add_argument("--eval-batch", type=int, default=256, help="images per evaluation call")
    parser.add_argument("--revision", help="time this tree's tuned step beside git revision REV's (e.g. f0fd91f)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of fresh processes per tree (--revision)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one step: for the test suite")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # a --revision timing child
    parser.set_defaults(auxiliary=True, drop_path=0.2)  # the DARTS retraining recipe
    if parser.parse_known_args(argv)[0].quickstart:
        parser.set_defaults(**QUICKSTART)  # defaults, so that a size given on the command line wins
    args = parser.parse_args(argv)
    if args.smoke:
        args.channels, args.layers, args.batch, args.size, args.steps, args.warmup = 4, 3, 4, 8, 1, 1
        args.eval_batch = 8
    return args


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.child:
        print(json.dumps(time_child(args, device)))
        return
    if args.revision:
        compare_revision(args, device)
        return

    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {device}{gpu}, torch {torch.__version__}")
    variants = [("fp32 NCHW (original)", False, False)]
    if args.amp or args.channels_last:
        variants.append((f"{'bf16 autocast' if args.amp else 'fp32'}{', channels_last' if args.channels_last else ''}",
                         args.amp, args.channels_last))
    reference = None
    for name, amp, channels_last in variants:
        timer = time_steps if reference is None else time_task_steps
        seconds, peak, params = timer(args, device, amp, channels_last)
        evaluation = time_evaluation(args, device, amp, channels_last)
        print(f"{args.genotype} retrain step, C={args.channels}, {args.layers} layers ({params / 1e6:.2f}M "
              f"parameters), batch {args.batch}, {args.size}x{args.size}x{args.in_channels}, {name}: {seconds:.3f} "
              f"s/step, {args.batch / seconds:.1f} images/s, peak memory {peak:.0f} MB; evaluation "
              f"{evaluation:.0f} images/s")
        reference = reference or seconds
    if len(variants) > 1:
        print(f"tuned / original: {reference / seconds:.2f}x images/s")


def build(args, device: torch.device, channels_last: bool, images: int) -> tuple[DiscreteNetwork, torch.Tensor]:
    """The network (seed 0) and a batch of `images` random images. (gpu_check.py passes a namespace with the
    DARTS recipe's fields only: 3 channels, auxiliary head, drop-path 0.2 are the defaults.)"""
    torch.manual_seed(0)
    in_channels = getattr(args, "in_channels", 3)
    model = DiscreteNetwork(load_genotype(args.genotype), args.channels, 10, args.layers,
                            auxiliary=getattr(args, "auxiliary", True), in_channels=in_channels,
                            image_size=args.size).to(device)
    model.drop_path_prob = getattr(args, "drop_path", 0.2)
    x = torch.randn(images, in_channels, args.size, args.size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, x


def time_steps(args, device: torch.device, amp: bool, channels_last: bool) -> tuple[float, float, int]:
    """(seconds per training step, peak memory in MB, parameters)."""
    model, x = build(args, device, channels_last, args.batch)
    model.train()
    y = torch.randint(0, 10, (args.batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, amp):
            output = model(x)
            logits, aux_logits = output if isinstance(output, tuple) else (output, None)
            loss = F.cross_entropy(logits, y)
            if aux_logits is not None:
                loss = loss + 0.4 * F.cross_entropy(aux_logits, y)
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
    return seconds, peak_memory_mb(device), count_parameters(model)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: the peak allocated since the last reset; CPU: the process's maximum resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_task_steps(args, device: torch.device, amp: bool, channels_last: bool) -> tuple[float, float, int]:
    """(seconds per training step, peak memory in MB, parameters) of the retrain stage's own step: a `RetrainTask`
    over random images (uint8, normalised and augmented on the device as in a run), one epoch of `args.warmup`
    steps, then one of `args.steps` timed at the full drop-path; no validation, no precise BatchNorm."""
    from ltnas.config import TrainConfig
    from ltnas.data import DeviceBatches, ImageSet
    from ltnas.longtail import build_criterion
    from ltnas.train.retrain import RetrainTask

    model, _ = build(args, device, channels_last, 1)
    quickstart = args.quickstart  # the quickstart's loss, weight decay and crops; else DARTS's recipe
    config = TrainConfig(epochs=2, batch_size=args.batch, amp=amp, auxiliary=args.auxiliary, drop_path=args.drop_path,
                         sgd={"lr": 0.025, "weight_decay": 1e-3 if quickstart else 3e-4},
                         longtail={"loss": "logit_adjusted" if quickstart else "ce"},
                         augment={"crop_padding": 1, "flip": False} if quickstart else {"cutout": 16})
    counts = [1] * 10
    criterion = build_criterion(config.longtail, counts, config.epochs, device)
    generator = torch.Generator().manual_seed(0)

    def batches(steps: int) -> DeviceBatches:
        n = args.batch * steps
        images = ImageSet(torch.randint(0, 256, (n, args.in_channels, args.size, args.size), dtype=torch.uint8,
                                        generator=generator), torch.arange(n) % 10)
        return DeviceBatches(images, args.batch, device=device, mean=[0.5] * args.in_channels,
                             std=[0.25] * args.in_channels, generator=generator, augment=config.augment)

    task = RetrainTask(model, config, criterion, batches(max(1, args.warmup)), None, counts, 10)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    task.run_epoch(0, lambda **_: None)
    task.train_batches = batches(args.steps)
    synchronize(device)
    began = time.perf_counter()
    task.run_epoch(config.epochs, lambda **_: None)  # drop-path at its maximum, as from the last epoch on
    synchronize(device)
    seconds = (time.perf_counter() - began) / args.steps
    return seconds, peak_memory_mb(device), count_parameters(model)


@torch.no_grad()
def time_evaluation(args, device: torch.device, amp: bool, channels_last: bool) -> float:
    """Images per second of the network in eval mode, without gradients, at `args.eval_batch` images a call."""
    model, x = build(args, device, channels_last, args.eval_batch)
    model.eval()
    calls = max(1, args.steps)
    for _ in range(max(1, args.warmup)):
        with autocast(device, amp):
            model(x)
    synchronize(device)
    began = time.perf_counter()
    for _ in range(calls):
        with autocast(device, amp):
            model(x)
    synchronize(device)
    return calls * args.eval_batch / (time.perf_counter() - began)


def time_child(args, device: torch.device) -> dict:
    """One --revision child: the stage's step (channels_last and/or bf16 as asked) and evaluation, as JSON."""
    import ltnas

    seconds, peak, _ = time_task_steps(args, device, args.amp, args.channels_last)
    return {"seconds": seconds, "peak_mb": peak, "memory": "peak resident set" if device.type == "cpu" else
            "CUDA peak allocated", "eval_images_per_s": time_evaluation(args, device, args.amp, args.channels_last),
            "ltnas": str(Path(ltnas.__file__).resolve().parent.parent)}


def compare_revision(args, device: torch.device) -> None:
    """This tree's training step and evaluation beside git revision `args.revision`'s (benchmarks/revision.py)."""
    argv = list(sys.argv[1:])
    del argv[argv.index("--revision"):argv.index("--revision") + 2]
    command = [sys.executable, __file__, *argv, "--child"]  # the child parses the same options
    with revision.trees(args.revision) as sources:
        print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
              f"device {device}, torch {torch.__version__}")
        print(f"{args.genotype} retrain step, C={args.channels}, {args.layers} layers, batch {args.batch}, "
              f"{args.size}x{args.size}x{args.in_channels}, auxiliary head {'on' if args.auxiliary else 'off'}, "
              f"drop-path {args.drop_path}, {'bf16' if args.amp else 'fp32'}"
              f"{', channels_last' if args.channels_last else ', NCHW'}; {args.warmup} warm-up + {args.steps} timed "
              f"steps per process; evaluation at {args.eval_batch} images per call")

        def run(src: Path) -> dict:
            out = subprocess.run(command, capture_output=True, text=True, check=True, env=revision.child_env(src))
            return json.loads(out.stdout.strip().splitlines()[-1])

        rounds = revision.alternate(sources, args.repeats, run)
    revision.summarise(rounds, args.batch)
    old, new = rounds[0]
    evaluation = {name: statistics.median(r[name]["eval_images_per_s"] for r in rounds) for name in (old, new)}
    print(f"  evaluation: {old} {evaluation[old]:.0f} images/s, {new} {evaluation[new]:.0f} images/s "
          f"({evaluation[new] / evaluation[old]:.2f}x)")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
