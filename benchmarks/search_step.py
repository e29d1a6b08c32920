"""One first-order search step (α step + weight step) of ltnas against the original DARTS code.

    python benchmarks/search_step.py --threads 2          # DARTS search size: C=16, 8 layers, batch 64, 32×32
    python benchmarks/search_step.py --device cuda --amp
    python benchmarks/search_step.py --smoke              # tiny sizes: correctness only, times nothing useful
    python benchmarks/search_step.py --strategies pcdarts,gdas --threads 2   # ltnas DARTS beside other methods
    python benchmarks/search_step.py --quickstart --revision f0fd91f --threads 1 --repeats 5
                                                          # this tree's step beside a git revision's

With --revision REV it times ltnas's search step of this working tree beside the same step of the git
revision REV (its `src/`, unpacked with `git archive` into a temporary folder): the same timing code (this
script) runs in alternating fresh processes, `--repeats` rounds of one process each, with PYTHONPATH pointing
at one tree or the other; it prints each round and the median ratio (no baseline, no check: the check is
the test suite's). --quickstart sets the quickstart's search size (configs/quickstart.yaml: C=8, 3 layers,
batch 32 + 32, 8×8 grey digits, 10 classes). The supernet holds all eight DARTS primitives unless
`--primitives shipped` (with --revision only): then each tree's supernet holds the primitives of that tree's own
shipped quickstart config, so the ratio is the step a user of `ltnas quickstart` feels in each version (the
code's speed and the config's choice of operations together), not the code's speed on the same work.

    python benchmarks/search_step.py --quickstart --primitives shipped --revision f0fd91f --threads 1 --repeats 5

For each relaxation (softmax = DARTS, sigmoid = FairDARTS with its zero-one loss) it

1. checks that ltnas's supernet and the faithful port of the original (`baseline_darts.py`), holding
   the same parameters, give the same logits and the same gradients for every weight and for α
   (largest difference relative to the largest value of each tensor ≤ 1e-4 in float64, and for
   the float32 logits; see `check` for float32 gradients);
2. times full search steps of each in its own fresh process, so that peak memory (CPU: peak
   resident set, VmHWM; CUDA: peak allocated) belongs to that implementation alone;
3. prints images/s (train + val images per step), peak memory and the ratio of ltnas to the baseline.

With --strategies it instead times ltnas's DARTS step and each named strategy's step (e.g. PC-DARTS,
GDAS) at the same size, each in its own fresh process, and prints their time and peak memory against
DARTS (no baseline and no check: the original code has no such methods).

Random tensors stand in for CIFAR (the step's cost does not depend on pixel values). --amp and
--nchw apply to ltnas only: the baseline is always NCHW fp32 eager, as the original.
Exit status 1 when the check fails.
"""

from __future__ import annotations

import argparse
import contextlib
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_darts import BaselineNetwork, BaselineSearch  # noqa: E402
import revision  # noqa: E402

from ltnas.config import PRIMITIVES, SearchConfig  # noqa: E402
from ltnas.runs import resolve_device  # noqa: E402
from ltnas.search import strategy_class  # noqa: E402
from ltnas.space import SearchNetwork  # noqa: E402

METHODS = {"darts": "softmax", "fairdarts": "sigmoid"}
TOLERANCE = 1e-4


# The quickstart's search (configs/quickstart.yaml, search): C=8, 3 cells, batch 32 (+ 32), 8×8×1 digits.
QUICKSTART = {"channels": 8, "layers": 3, "batch": 32, "size": 8, "in_channels": 1}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--method", default="both", help=f"{', '.join(METHODS)} or both (children: any strategy)")
    parser.add_argument("--strategies", help="comma-separated ltnas strategies to time against ltnas's DARTS "
                        "at the same size (e.g. pcdarts,gdas); skips the baseline")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--in-channels", type=int, default=3, help="image channels (digits: 1)")
    parser.add_argument("--quickstart", action="store_true", help="the quickstart's size: C=8, 3 layers, batch 32, "
                        "8x8, 1 channel (the defaults of --channels --layers --batch --size --in-channels: one given "
                        "as well wins, e.g. --batch 2 for the step's fixed cost)")
    parser.add_argument("--revision", help="time this tree's ltnas step beside git revision REV's (e.g. f0fd91f)")
    parser.add_argument("--primitives", choices=["all", "shipped"], default="all",
                        help="the supernet's operations: all eight DARTS primitives, or (with --revision) each "
                             "tree's own shipped quickstart config's")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of fresh processes per implementation")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after warm-up)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--amp", action="store_true", help="ltnas: bf16 autocast (search.amp)")
    parser.add_argument("--nchw", action="store_true", help="ltnas: NCHW activations (search.channels_last=false)")
    parser.add_argument("--fuse", choices=["auto", "always", "never"], default="auto",
                        help="ltnas: compute the edges leaving a node together (space/fused.py): auto = where a "
                             "node's activations are small (FUSE_MAX_NUMEL), always, never")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one step: for the test suite")
    parser.add_argument("--impl", choices=["ours", "baseline"], help=argparse.SUPPRESS)  # a timing child
    if parser.parse_known_args(argv)[0].quickstart:
        parser.set_defaults(**QUICKSTART)
    args = parser.parse_args(argv)
    if args.primitives == "shipped" and not args.revision:
        parser.error("--primitives shipped needs --revision REV: the original DARTS code holds all eight primitives")
    if args.smoke:
        args.channels, args.layers, args.batch, args.size, args.steps, args.warmup = 2, 3, 4, 8, 1, 1
        if args.strategies:
            args.channels = 4  # PC-DARTS splits the channels into 4 parts
    return args


def set_fusing(mode: str) -> None:
    """Where ltnas's supernet fuses a node's edges: its own rule (auto: always on CUDA, small nodes on a CPU),
    everywhere, or nowhere. (auto touches nothing, so a --revision child can import trees older than the fusing.)"""
    if mode == "auto":
        return
    from ltnas.space import fused

    if mode == "always":
        fused.FUSE_MAX_NUMEL = 1 << 62
    elif mode == "never":
        fused.FUSE_MAX_NUMEL, fused.FUSE_ALWAYS_ON = -1, ()


def main() -> int:
    args = parse_args()
    set_fusing(args.fuse)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.impl:  # a child: time one implementation, report as JSON
        print(json.dumps(time_steps(args, args.impl, args.method, device)))
        return 0
    if args.strategies:
        return compare_strategies(args, device)
    if args.revision:
        return compare_revision(args, device)

    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {device}{gpu}, torch {torch.__version__}")
    print(f"first-order search step: C={args.channels}, {args.layers} layers, batch {args.batch} train + "
          f"{args.batch} val, {args.size}x{args.size}, 10 classes, all {len(PRIMITIVES)} primitives; ltnas "
          f"{'bf16 autocast' if args.amp else 'fp32'}{', NCHW' if args.nchw else ', channels_last'}, "
          f"edges fused: {args.fuse}")
    ok = True
    for method in (METHODS if args.method == "both" else [args.method]):
        passed, detail = check(args, method, device)
        ok &= passed
        print(f"{method}: ltnas vs baseline, largest relative differences: {detail}: "
              f"{'OK' if passed else 'FAIL'} (tolerance {TOLERANCE:.0e})")
        rounds = []
        for _ in range(args.repeats):  # alternating fresh processes: a busy machine slows both alike
            results = {impl: run_child(args, impl, method) for impl in ("baseline", "ours")}
            rounds.append(results)
            for impl, r in results.items():
                print(f"  {impl:8s} {r['seconds']:8.3f} s/step  {r['images_per_s']:8.1f} images/s  "
                      f"peak memory {r['peak_mb']:8.0f} MB ({r['memory']})")
        speed = statistics.median(r["baseline"]["seconds"] / r["ours"]["seconds"] for r in rounds)
        memory = max(r["ours"]["peak_mb"] for r in rounds) / max(r["baseline"]["peak_mb"] for r in rounds)
        print(f"  ltnas / baseline: {speed:.2f}x images/s (median of {len(rounds)} rounds), "
              f"{memory:.2f}x peak memory")
    return 0 if ok else 1


def compare_revision(args, device: torch.device) -> int:
    """This tree's ltnas step beside git revision `args.revision`'s, in alternating fresh processes."""
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    method = "darts" if args.method == "both" else args.method
    with revision.trees(args.revision) as sources:
        print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
              f"device {device}{gpu}, torch {torch.__version__}")
        print(f"{method} first-order search step: C={args.channels}, {args.layers} layers, batch {args.batch} train + "
              f"{args.batch} val, {args.size}x{args.size}x{args.in_channels}, 10 classes, "
              f"{describe_primitives(args)}; {args.warmup} warm-up + {args.steps} timed steps per process")
        rounds = revision.alternate(sources, args.repeats, lambda src: run_child(args, "ours", method, pythonpath=src))
    revision.summarise(rounds, 2 * args.batch)
    return 0


def describe_primitives(args) -> str:
    if args.primitives == "all":
        return f"all {len(PRIMITIVES)} primitives"
    return "each tree's shipped quickstart primitives"


def primitives(args) -> list[str]:
    """The supernet's operations: all eight, or those of the imported ltnas's own shipped quickstart config (its
    nested `search.cell.primitives`, or the flat `search.primitives` of trees from before that layout)."""
    if getattr(args, "primitives", "all") == "all":
        return list(PRIMITIVES)
    import ltnas
    from ltnas.config import load_config

    search = load_config(Path(ltnas.__file__).parent / "configs" / "quickstart.yaml").search
    return list(search.cell.primitives if hasattr(search, "cell") else search.primitives)


def compare_strategies(args, device: torch.device) -> int:
    """ltnas's DARTS step and each strategy's, same size, each timed in its own process."""
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {device}{gpu}, torch {torch.__version__}")
    print(f"first-order search step, ltnas only: C={args.channels}, {args.layers} layers, batch {args.batch} train + "
          f"{args.batch} val, {args.size}x{args.size}, 10 classes, all {len(PRIMITIVES)} primitives")
    methods = ["darts", *(m.strip() for m in args.strategies.split(",") if m.strip() and m.strip() != "darts")]
    results = {method: run_child(args, "ours", method) for method in methods}
    darts = results["darts"]
    for method, r in results.items():
        print(f"  {method:8s} {r['seconds']:8.3f} s/step  {r['images_per_s']:8.1f} images/s  peak memory "
              f"{r['peak_mb']:8.0f} MB ({r['memory']})  vs darts: {darts['seconds'] / r['seconds']:.2f}x speed, "
              f"{r['peak_mb'] / darts['peak_mb']:.2f}x peak memory")
    return 0


def build_strategy(args, method: str, device: torch.device, seed: int = 0):
    """An ltnas strategy on a fresh supernet of the benchmark's size, α away from its near-uniform start."""
    config = SearchConfig(method=method, batch_size=args.batch, sgd={"lr": 0.025}, arch_lr=3e-4, epochs=1, amp=args.amp,
                          cell={"primitives": list(PRIMITIVES), "init_channels": args.channels, "layers": args.layers},
                          **({"pcdarts": {"arch_start_epoch": 0}} if method == "pcdarts" else {}))
    strategy_cls = strategy_class(method)
    torch.manual_seed(seed)
    network = SearchNetwork(args.channels, 10, args.layers, in_channels=in_channels(args), channels_last=not args.nchw,
                            **strategy_cls.network_options(config)).to(device)
    with torch.no_grad():
        for alpha in network.arch_parameters():
            alpha.normal_()
    strategy = strategy_cls(network, config, F.cross_entropy)
    strategy.set_epoch(0)
    return strategy


def build(args, method: str, device: torch.device, seed: int = 0, with_baseline: bool = True):
    """ltnas's network and the baseline, holding the same parameters and α; (network, None) without the baseline
    (the same network: the baseline is built after it and copies from it)."""
    torch.manual_seed(seed)
    network = SearchNetwork(args.channels, 10, args.layers, in_channels=in_channels(args), primitives=primitives(args),
                            relaxation=METHODS[method], channels_last=not args.nchw).to(device)
    with torch.no_grad():  # α away from its near-uniform start, so that every op weighs differently
        for alpha in network.arch_parameters():
            alpha.normal_()
    if not with_baseline:
        return network, None
    baseline = BaselineNetwork(args.channels, 10, args.layers, relaxation=METHODS[method],
                               in_channels=in_channels(args)).to(device)
    baseline.alphas_normal = baseline.alphas_normal.detach().to(device).requires_grad_(True)
    baseline.alphas_reduce = baseline.alphas_reduce.detach().to(device).requires_grad_(True)
    return network, baseline.copy_from(network)


def in_channels(args) -> int:
    """Image channels (callers such as gpu_check.py build their own namespace without it: 3, CIFAR's)."""
    return getattr(args, "in_channels", 3)


def batch(args, device: torch.device, generator: torch.Generator):
    x = torch.randn(args.batch, in_channels(args), args.size, args.size, generator=generator).to(device)
    y = torch.randint(0, 10, (args.batch,), generator=generator).to(device)
    return x, y


def check(args, method: str, device: torch.device) -> tuple[bool, str]:
    """Do ltnas and the baseline compute the same function and the same gradients?

    Passes when, in float64, the logits and every weight and α gradient agree to 1e-4 relative (they
    agree to ~1e-13: the same maths), and the float32 logits agree to 1e-4. Float32 gradients are
    printed against the float64 answer for both, not held to each other: at the DARTS size a few
    gradients come out of near-cancellations in BatchNorm's backward, where any reordering of float32
    sums (ltnas adds the gradients of a shared ReLU before masking; channels_last convolutions sum in
    another order) moves them by 1e-2 relative, and the original is just as far from the exact answer.
    The check uses a batch of at most 16: the maths does not depend on the batch size.
    """
    x, y = batch(args, device, torch.Generator().manual_seed(1))
    x, y = x[:16], y[:16]
    results = {}
    for dtype in (torch.float64, torch.float32):
        network, baseline = build(args, method, device)
        network.to(dtype), baseline.to(dtype)
        baseline.alphas_normal = baseline.alphas_normal.detach().to(dtype).requires_grad_(True)
        baseline.alphas_reduce = baseline.alphas_reduce.detach().to(dtype).requires_grad_(True)
        with without_tf32():
            results[dtype] = [outputs_and_gradients(model, x.to(dtype), y) for model in (network, baseline)]
    (ours64, base64), (ours32, base32) = results[torch.float64], results[torch.float32]
    exact = max(relative_difference(a, b) for a, b in zip(ours64, base64))
    logits = relative_difference(ours32[0], base32[0])

    def float32_errors(grads):
        worst = max(relative_difference(a.double(), b) for a, b in zip(grads[1:], base64[1:]))
        flat, reference = (torch.cat([g.double().flatten() for g in gs[1:]]) for gs in (grads, base64))
        return f"worst tensor {worst:.1e}, all together {((flat - reference).norm() / reference.norm()).item():.1e}"

    ok = exact <= TOLERANCE and logits <= TOLERANCE
    return ok, (f"float64 logits + gradients {exact:.1e}; float32 logits {logits:.1e}; float32 gradients against "
                f"float64: ltnas {float32_errors(ours32)}, baseline {float32_errors(base32)}")


@contextlib.contextmanager
def without_tf32():
    """Full float32 arithmetic in CUDA's convolutions and matrix products. With TF32 (cuDNN's default) their
    inputs are rounded to a 10-bit mantissa, so two correct implementations that reach different kernels (the
    fused edges' grouped convolutions against the original's one per edge) differ by ~1e-3."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def outputs_and_gradients(model, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    model.train()
    logits = model(x)
    F.cross_entropy(logits, y).backward()
    return [logits.detach(), *(p.grad for p in model.parameters()), *(a.grad for a in model.arch_parameters())]


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference relative to the largest value of the reference `b` (at least 1e-6: a gradient
    that is exactly 0 in theory, such as one feeding only a BatchNorm's mean, is rounding noise)."""
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-6)


def run_child(args, impl: str, method: str, pythonpath: Path | None = None) -> dict:
    """One implementation timed in a fresh process; `pythonpath`: the `src` folder whose ltnas it imports."""
    argv = [a for a in sys.argv[1:] if a not in ("--smoke", "--quickstart")]
    command = [sys.executable, __file__, *argv, "--impl", impl, "--method", method, "--channels", str(args.channels),
               "--layers", str(args.layers), "--batch", str(args.batch), "--size", str(args.size), "--in-channels",
               str(args.in_channels), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    env = revision.child_env(pythonpath) if pythonpath is not None else None
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def time_steps(args, impl: str, method: str, device: torch.device) -> dict:
    generator = torch.Generator().manual_seed(1)
    train, val = batch(args, device, generator), batch(args, device, generator)
    if method not in METHODS:  # another ltnas strategy (--strategies): no baseline
        strategy = build_strategy(args, method, device)
        return timed(args, strategy, train, val, device)
    network, baseline = build(args, method, device, with_baseline=impl == "baseline")  # ours: not built for nothing
    if impl == "baseline":
        del network
        strategy = BaselineSearch(baseline, zero_one_weight=10.0 if method == "fairdarts" else 0.0)
    else:
        del baseline
        config = search_config(method, args.batch, args.amp, primitives(args))
        strategy = strategy_class(method)(network, config, F.cross_entropy)
    return timed(args, strategy, train, val, device)


def search_config(method: str, batch_size: int, amp: bool, operations: list[str] = PRIMITIVES) -> SearchConfig:
    """The step's search section, `operations` (default all eight primitives), lr 0.025, arch_lr 3e-4: in the
    nested layout (`search.sgd.lr`, `search.cell.primitives`), or in the flat one of trees from before it (a
    --revision child timing such a tree, e.g. f0fd91f)."""
    if "sgd" not in SearchConfig.model_fields:
        return SearchConfig(method=method, primitives=list(operations), batch_size=batch_size, lr=0.025,
                            arch_lr=3e-4, epochs=1, amp=amp)
    return SearchConfig(method=method, cell={"primitives": list(operations)}, batch_size=batch_size,
                        sgd={"lr": 0.025}, arch_lr=3e-4, epochs=1, amp=amp)


def timed(args, strategy, train, val, device: torch.device) -> dict:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        strategy.step(train, val)
    synchronize(device)
    began = time.perf_counter()
    for _ in range(args.steps):
        strategy.step(train, val)
    synchronize(device)
    seconds = (time.perf_counter() - began) / args.steps
    if device.type == "cuda":
        peak, memory = torch.cuda.max_memory_allocated(device) / 2**20, "CUDA peak allocated"
    else:
        peak, memory = peak_resident_mb(), "peak resident set"
    import ltnas

    return {"seconds": seconds, "images_per_s": 2 * args.batch / seconds, "peak_mb": peak, "memory": memory,
            "ltnas": str(Path(ltnas.__file__).resolve().parent.parent)}


def peak_resident_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM starts afresh at exec; getrusage's maximum
    does not (a child would report its parent's peak), so it is only the fallback elsewhere."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    raise SystemExit(main())
