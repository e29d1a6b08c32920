"""The GPU path, measured in one go: correctness and speed of ltnas on CUDA (run by gpu_check.sh).

    bash benchmarks/gpu_check.sh OUTDIR              # on the GPU machine: ~4-5 minutes on one H100
    bash benchmarks/gpu_check.sh OUTDIR --dry-run    # tiny sizes on the CPU: checks the script itself

Sections, each in its own process with its own time limit (a failure or a timeout is recorded and
the next section runs); OUTDIR/summary.json and OUTDIR/summary.md are rewritten after every section,
so a run cut short still leaves what it measured:

  env          device name, torch, CUDA, cuDNN, GPU count
  correctness  supernet (FairDARTS) and DARTS_V2 network: CPU vs CUDA fp32 (TF32 off), logits and all
               gradients against a float64 CPU reference; ltnas vs the original DARTS in float64 on
               the device; bf16 autocast search and retrain steps stay finite
  search_step  DARTS size (C=16, 8 cells, batch 64 + 64, 32×32), one process: the original DARTS
               (benchmarks/baseline_darts.py, NCHW fp32), ltnas fp32, ltnas bf16 + channels_last
               (+ torch.compile with --compile): images/s and peak allocated GPU memory
  retrain_step DARTS_V2, C=36, 20 cells, batch 96: fp32 NCHW vs bf16 + channels_last
  syncs        host-device synchronisations per search step and per evaluation batch
               (torch.cuda.set_sync_debug_mode)
  torchrun     `torchrun --standalone --nproc_per_node 1 -m ltnas search ...` (and all GPUs if > 1)
               finishes and writes one run folder
  end_to_end   `python3 -m ltnas search` FairDARTS, 2 epochs, 12,406 synthetic 32×32 images (exp,
               ratio 100, n_max 5000, 10 classes), bf16; the 50-epoch time projected from epoch 2

Like the original DARTS train_search.py, the timed sections run with cudnn.benchmark on (every
variant alike). Run folders go to a scratch folder (--work), not OUTDIR: only a few files come back
from the device machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTIONS = ("env", "correctness", "search_step", "retrain_step", "end_to_end", "syncs", "torchrun")
# Seconds each section may take (expected on one H100: about half of each); --budget caps the sum.
LIMITS = {"env": 45, "correctness": 75, "search_step": 100, "retrain_step": 60, "end_to_end": 150, "syncs": 40,
          "torchrun": 90}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for summary.json, summary.md (and the log)")
    parser.add_argument("--work", help="scratch folder for run folders (default: a temporary folder)")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: checks the script runs")
    parser.add_argument("--device", help="default: cuda, or cpu with --dry-run")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset, in order")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for everything (sections are cut to fit)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the sections in this process, without time limits (the test suite's quick mode)")
    parser.add_argument("--compile", action="store_true", help="search_step: also time torch.compile (slow start)")
    parser.add_argument("--section", help=argparse.SUPPRESS)  # a child: run this one section
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.dry_run else "cuda")
    unknown = [s for s in args.sections.split(",") if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


# ------------------------------------------------------------------------------------------------
# The driver: one child process per section, results merged into OUTDIR after each.
# ------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    args = parse_args(argv)
    if args.section:
        return run_section_here(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="ltnas_gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget
    summary = {"mode": "dry-run (CPU, tiny sizes)" if args.dry_run else "full", "device": args.device,
               "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "budget": args.budget, "work": str(work),
               "sections": {}}
    for name in args.sections.split(","):
        left = deadline - time.monotonic()
        if left < 15:
            summary["sections"][name] = {"status": "skipped", "reason": "out of budget"}
            write_summary(out, summary)
            continue
        limit = min(LIMITS[name], left - 5)
        print(f"=== {name} (limit {limit:.0f} s) ===", flush=True)
        run = run_inline if args.in_process else run_child
        summary["sections"][name] = run(args, name, work, limit)
        print(f"=== {name}: {summary['sections'][name]['status']} in "
              f"{summary['sections'][name].get('seconds', 0):.1f} s ===", flush=True)
        summary["total_seconds"] = args.budget - (deadline - time.monotonic())
        write_summary(out, summary)
    print(render_markdown(summary), flush=True)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(s["status"] == "ok" for s in summary["sections"].values()) else 1


def run_child(args, name: str, work: Path, limit: float) -> dict:
    result_file = work / f"{name}.json"
    result_file.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--out", args.out, "--work", str(work),
               "--device", args.device, "--section", name, "--result", str(result_file),
               "--budget", str(limit)]
    command += ["--dry-run"] * args.dry_run + ["--compile"] * args.compile
    began = time.monotonic()
    # The child's output goes straight to ours (the log): nothing is lost if it is killed. Its own
    # session, so that a timeout ends whatever it started too (the CLI, torchrun's workers).
    process = subprocess.Popen(command, stdout=sys.stdout, stderr=sys.stderr, start_new_session=True)
    try:
        process.wait(timeout=limit)
        status = "ok" if process.returncode == 0 else f"failed (exit {process.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        status = f"timeout after {limit:.0f} s"
    return finish(status, result_file, began)


def run_inline(args, name: str, work: Path, limit: float) -> dict:
    """The section in this process (no time limit): what the test suite runs, in seconds not minutes."""
    result_file = work / f"{name}.json"
    result_file.unlink(missing_ok=True)
    began = time.monotonic()
    child = argparse.Namespace(**{**vars(args), "section": name, "result": str(result_file), "work": str(work),
                                  "budget": limit})
    try:
        code = run_section_here(child)
        status = "ok" if code == 0 else "failed (exit 1)"
    except Exception as exc:  # recorded by run_section_here
        status = f"failed ({type(exc).__name__})"
    return finish(status, result_file, began)


def finish(status: str, result_file: Path, began: float) -> dict:
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    if status == "ok" and not result.get("passed", True):
        status = "check failed"
    return {"status": status, "seconds": time.monotonic() - began, **result}


def write_summary(out: Path, summary: dict) -> None:
    for path, text in ((out / "summary.json", json.dumps(summary, indent=2)),
                       (out / "summary.md", render_markdown(summary))):
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_text(text + "\n")
        os.replace(partial, path)


def fmt(value, spec: str = ".1f") -> str:
    return "–" if value is None else format(value, spec)


def render_markdown(summary: dict) -> str:
    sections = summary["sections"]
    env = sections.get("env", {})
    lines = [f"### GPU check ({summary['mode']}), {summary['started']}", "",
             f"device: {env.get('device_name', summary['device'])}; torch {env.get('torch', '?')}, "
             f"CUDA {env.get('cuda', '?')}, cuDNN {env.get('cudnn', '?')}, {env.get('gpus', '?')} GPU(s); "
             f"Python {env.get('python', '?')}", "",
             f"total {fmt(summary.get('total_seconds'))} s of a {summary.get('budget', 0):.0f} s budget", "",
             "| section | status | seconds |", "|---|---|---|"]
    lines += [f"| {name} | {s['status']} | {fmt(s.get('seconds'))} |" for name, s in sections.items()]
    correctness = sections.get("correctness", {})
    if correctness.get("checks"):
        lines += ["", "Correctness (relative error ‖a − b‖ / ‖b‖ over all values; worst single tensor in brackets):",
                  "", "| check | value | limit | pass |", "|---|---|---|---|"]
        lines += [f"| {c['name']} | {c['value']} | {c['limit']} | {'yes' if c['passed'] else 'NO'} |"
                  for c in correctness["checks"]]
    for key, title in (("search_step", "Search step (one α step + one weight step"),
                       ("retrain_step", "Retrain step (DARTS_V2 with auxiliary head, drop-path 0.2")):
        rows = sections.get(key, {}).get("rows")
        if rows:
            shape = sections[key].get("shape", "")
            lines += ["", f"{title}; {shape}):", "",
                      "| variant | ms/step | images/s | peak memory MB (GPU: max allocated; CPU: process peak) "
                      "| vs reference |", "|---|---|---|---|---|"]
            lines += [f"| {r['variant']} | {fmt(r.get('ms'))} | {fmt(r.get('images_per_s'), '.0f')} | "
                      f"{fmt(r.get('peak_mb'), '.0f')} | {fmt(r.get('speedup'), '.2f')}x |" for r in rows]
    syncs = sections.get("syncs", {})
    if syncs.get("counts"):
        lines += ["", "Host-device synchronisations: " +
                  "; ".join(f"{k}: {v}" for k, v in syncs["counts"].items())]
    torchrun = sections.get("torchrun", {})
    if torchrun.get("runs"):
        lines += ["", "torchrun: " + "; ".join(
            f"{r['processes']} process(es): {r['status']} in {fmt(r.get('seconds'))} s, run folders {r['run_folders']}"
            + (f" ({r['note']})" if r.get("note") else "") for r in torchrun["runs"])]
        if torchrun.get("nccl"):
            lines += [f"nccl: {torchrun['nccl']}"]
    e2e = sections.get("end_to_end", {})
    if e2e.get("epochs"):
        lines += ["", f"End to end: `ltnas search`, {e2e.get('what', '')}: epoch seconds "
                  f"{', '.join(fmt(e['seconds']) for e in e2e['epochs'])}; wall {fmt(e2e.get('wall'))} s "
                  f"(start-up, data and per-epoch writes included); projected 50 epochs "
                  f"{fmt(e2e.get('projected_50_min'))} min ({e2e.get('projection', '')})"]
    failures = [f"- {name}: {s['error']}" for name, s in sections.items() if s.get("error")]
    if failures:
        lines += ["", "Errors:", *failures]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# A child: one section, its result written to --result (also when it fails part-way).
# ------------------------------------------------------------------------------------------------

def run_section_here(args) -> int:
    import torch

    result: dict = {}
    save = lambda: Path(args.result).write_text(json.dumps(result, indent=2))  # noqa: E731
    if not args.dry_run and args.device.startswith("cuda") and not torch.cuda.is_available():
        result.update(passed=False, error="torch sees no CUDA device")
        save()
        return 1
    if args.section != "env":
        torch.backends.cudnn.benchmark = True
    try:
        globals()[f"section_{args.section}"](args, result, save)
    except Exception as exc:  # recorded; the driver goes on with the next section
        result["error"] = f"{type(exc).__name__}: {exc}"
        save()
        raise
    save()
    return 0 if result.get("passed", True) else 1


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def section_env(args, result: dict, save) -> None:
    import torch

    result.update(torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version(),
                  cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                  gpus=torch.cuda.device_count() if torch.cuda.is_available() else 0,
                  device_name=(torch.cuda.get_device_name(0) if args.device.startswith("cuda")
                               else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"))
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        result["nvidia_smi"] = smi.stdout.strip()
    print(json.dumps(result, indent=2))


def relative_error(a, b) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def outputs_and_gradients(model, x, y, params):
    """Logits and the gradients of cross-entropy (+ 0.4 × auxiliary) w.r.t. `params`, in fp32/64."""
    import torch
    import torch.nn.functional as F

    out = model(x)
    logits, aux = out if isinstance(out, tuple) else (out, None)
    loss = F.cross_entropy(logits, y) + (0.4 * F.cross_entropy(aux, y) if aux is not None else 0)
    grads = torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)
    return [logits.detach().cpu(), *(g.detach().cpu() for g in grads)]


def compare_devices(make_model, x, y, device, check, name: str) -> None:
    """The same model (same state) on CPU float64, CPU float32 and `device` float32."""
    import torch

    results = {}
    for label, dev, dtype in (("ref64", "cpu", torch.float64), ("cpu32", "cpu", torch.float32),
                              ("dev32", device, torch.float32)):
        model = make_model().to(device=dev, dtype=dtype).train()
        params = list(model.parameters()) + (model.arch_parameters() if hasattr(model, "arch_parameters") else [])
        results[label] = outputs_and_gradients(model, x.to(dev, dtype), y.to(dev), params)
    ref, cpu32, dev32 = results["ref64"], results["cpu32"], results["dev32"]

    def errors(values):
        logits = relative_error(values[0], ref[0])
        flat = relative_error(torch.cat([g.flatten() for g in values[1:]]), torch.cat([g.flatten() for g in ref[1:]]))
        worst = max(relative_error(g, r) for g, r in zip(values[1:], ref[1:]) if r.norm() > 0)
        return logits, flat, worst

    (cl, cg, cw), (dl, dg, dw) = errors(cpu32), errors(dev32)
    dev_vs_cpu = relative_error(torch.cat([g.flatten() for g in dev32]), torch.cat([g.flatten() for g in cpu32]))
    check(f"{name}: logits, {device} fp32 vs CPU fp64", dl, 1e-4, f"{dl:.1e} (CPU fp32: {cl:.1e})")
    # Float32 gradients of these networks are ill-conditioned (BatchNorm's backward cancels): on the
    # CPU they land ~1e-3 from the float64 answer (all together; ~1e-2 for the worst tensor). The
    # device passes when it is as accurate as float32 on the CPU, within a factor 10 (another
    # summation order); a wrong kernel would be off by O(1).
    limit = 10 * cg + 1e-5
    check(f"{name}: all gradients, {device} fp32 vs CPU fp64 (limit 10 × CPU fp32's)", dg, limit,
          f"{dg:.1e} [{dw:.1e}] (CPU fp32: {cg:.1e} [{cw:.1e}]; {device} vs CPU fp32: {dev_vs_cpu:.1e})")


def section_correctness(args, result: dict, save) -> None:
    import torch
    import torch.nn.functional as F

    from ltnas.config import PRIMITIVES, SearchConfig
    from ltnas.runs import use_channels_last
    from ltnas.search import strategy_class
    from ltnas.space import DiscreteNetwork, SearchNetwork, load_genotype
    from ltnas.train.precision import autocast

    sys.path.insert(0, str(HERE))
    import search_step

    device = torch.device(args.device)
    # The float32 comparison is of float32 arithmetic: no TF32 in convolutions or matrix products.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    checks = result.setdefault("checks", [])

    def check(name, value, limit, shown):
        passed = value == value and value <= limit  # NaN fails
        checks.append({"name": name, "value": shown, "limit": f"{limit:.0e}", "passed": passed})
        print(f"{'OK  ' if passed else 'FAIL'} {name}: {shown} (limit {limit:.0e})", flush=True)
        save()

    small = args.dry_run
    # Smaller than the DARTS size (the CPU float64 reference takes seconds, not minutes); the same code.
    C, layers, n, size = (4, 3, 4, 8) if small else (8, 5, 8, 32)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, size, size, generator=generator)
    y = torch.randint(0, 10, (n,), generator=generator)

    torch.manual_seed(0)
    # The supernet in the layout the pipeline gives it on this device (NCHW on CUDA: see gpu_layout.py).
    layout = {"channels_last": use_channels_last(None, device, "search.channels_last")}
    supernet = SearchNetwork(C, 10, layers, relaxation="sigmoid", **layout)
    with torch.no_grad():
        for alpha in supernet.arch_parameters():
            alpha.normal_()
    state = {k: v.clone() for k, v in supernet.state_dict().items()}

    def make_supernet():
        model = SearchNetwork(C, 10, layers, relaxation="sigmoid", **layout)
        model.load_state_dict(state)
        return model

    compare_devices(make_supernet, x, y, device, check, f"FairDARTS supernet C={C}, {layers} cells")

    torch.manual_seed(0)
    Cd, layers_d = (4, 3) if small else (16, 8)
    discrete = DiscreteNetwork(load_genotype("DARTS_V2"), Cd, 10, layers_d, auxiliary=True, image_size=size)
    dstate = {k: v.clone() for k, v in discrete.state_dict().items()}

    def make_discrete():
        model = DiscreteNetwork(load_genotype("DARTS_V2"), Cd, 10, layers_d, auxiliary=True, image_size=size)
        model.load_state_dict(dstate)
        model.drop_path_prob = 0.0  # drop-path draws random masks: not comparable across devices
        return model

    compare_devices(make_discrete, x, y, device, check, f"DARTS_V2 C={Cd}, {layers_d} cells, auxiliary")

    # ltnas against the original DARTS, both on the device, in float64 (search_step.check).
    ns = argparse.Namespace(channels=2 * C if not small else C, layers=layers + 3 if not small else layers,
                            batch=16 if not small else n, size=size,  # DARTS size: C=16, 8 cells
                            nchw=device.type != "cpu")  # the default layout on this device
    for method in ("darts", "fairdarts"):
        passed, detail = search_step.check(ns, method, device)
        checks.append({"name": f"ltnas vs original DARTS ({method}), C={ns.channels}, {ns.layers} cells, on {device}",
                       "value": "; ".join(detail.split("; ")[:2]),
                       "limit": f"{search_step.TOLERANCE:.0e}", "passed": passed})
        print(f"{'OK  ' if passed else 'FAIL'} ltnas vs original ({method}) on {device}: {detail}", flush=True)
        save()

    # bf16 autocast at the DARTS sizes: a few search steps and retrain steps stay finite.
    torch.backends.cudnn.allow_tf32 = True
    B = 8 if small else 64
    batches = [tuple(t.to(device) for t in (torch.randn(B, 3, size, size, generator=generator),
                                              torch.randint(0, 10, (B,), generator=generator))) for _ in range(2)]
    torch.manual_seed(0)
    network = SearchNetwork(ns.channels, 10, ns.layers, relaxation="sigmoid").to(device)
    config = SearchConfig(method="fairdarts", cell={"primitives": list(PRIMITIVES)}, batch_size=B, epochs=1, amp=True)
    strategy = strategy_class("fairdarts")(network, config, F.cross_entropy)
    losses = [strategy.step(*batches)["loss"] for _ in range(3)]
    finite = all(torch.isfinite(p).all().item() for p in [*network.parameters(), *network.arch_parameters()])
    ok = finite and all(v == v and abs(v) != float("inf") for v in losses)
    check(f"bf16 autocast FairDARTS search steps (C={ns.channels}, {ns.layers} cells, batch {B} + {B}): losses and "
          "parameters finite", 0.0 if ok else float("nan"), 0,
          f"losses {', '.join(f'{v:.3f}' for v in losses)}; parameters finite: {finite}")

    Cr, layers_r = (Cd, layers_d) if small else (36, 20)
    model = DiscreteNetwork(load_genotype("DARTS_V2"), Cr, 10, layers_r, auxiliary=True, image_size=size)
    model = model.to(device).to(memory_format=torch.channels_last)
    model.drop_path_prob = 0.2
    optimizer = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
    losses = []
    for _ in range(3):
        xb, yb = batches[0]
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, True):
            logits, aux = model(xb.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits, yb) + 0.4 * F.cross_entropy(aux, yb)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        losses.append(loss.item())
    finite = all(torch.isfinite(p).all().item() for p in model.parameters())
    ok = finite and all(v == v and abs(v) != float("inf") for v in losses)
    check(f"bf16 autocast + channels_last DARTS_V2 retrain steps (C={Cr}, {layers_r} cells, batch {B}): losses and "
          "parameters finite",
          0.0 if ok else float("nan"), 0, f"losses {', '.join(f'{v:.3f}' for v in losses)}; parameters finite: {finite}")
    result["passed"] = all(c["passed"] for c in checks)


def section_search_step(args, result: dict, save) -> None:
    import torch

    sys.path.insert(0, str(HERE))
    import search_step

    device = torch.device(args.device)
    small = args.dry_run
    ns = argparse.Namespace(channels=2 if small else 16, layers=3 if small else 8, batch=4 if small else 64,
                            size=8 if small else 32, steps=1 if small else 10, warmup=0 if small else 3,
                            amp=False, nchw=False)
    result["shape"] = (f"C={ns.channels}, {ns.layers} cells, batch {ns.batch} + {ns.batch}, {ns.size}×{ns.size}, "
                       f"all 8 primitives, first order, {ns.warmup} warm-up + {ns.steps} timed steps, cudnn.benchmark")
    rows = result.setdefault("rows", [])
    # Most wanted first: a timeout keeps the rows already measured.
    # ltnas's default layout on this device (runs.use_channels_last): NHWC on the CPU, NCHW elsewhere.
    nchw = device.type != "cpu"
    default_layout = "NCHW" if nchw else "channels_last"
    variants = [("original DARTS (baseline_darts.py), fp32 NCHW", "baseline", "darts", {}),
                (f"ltnas DARTS fp32 {default_layout} (default)", "ours", "darts", {"nchw": nchw}),
                ("ltnas DARTS bf16 + channels_last", "ours", "darts", {"amp": True}),
                ("original FairDARTS (baseline_darts.py), fp32 NCHW", "baseline", "fairdarts", {}),
                (f"ltnas FairDARTS fp32 {default_layout} (default)", "ours", "fairdarts", {"nchw": nchw}),
                ("ltnas FairDARTS bf16 + channels_last", "ours", "fairdarts", {"amp": True}),
                ("ltnas DARTS fp32 channels_last", "ours", "darts", {"nchw": False})]
    if args.compile:
        variants.append(("ltnas FairDARTS bf16 + channels_last + torch.compile", "ours", "fairdarts",
                         {"amp": True, "compile": True}))
    reference = {}
    for name, impl, method, options in variants:
        began = time.monotonic()
        try:
            timed = time_search_step(search_step, argparse.Namespace(**{**vars(ns), **options}), impl, method, device)
        except Exception as exc:  # one variant failing (e.g. out of memory, compile) leaves the others
            rows.append({"variant": name, "error": f"{type(exc).__name__}: {exc}"})
            print(f"{name}: {type(exc).__name__}: {exc}", flush=True)
            save()
            continue
        if impl == "baseline":
            reference[method] = timed["images_per_s"]
        rows.append({"variant": name, "ms": 1000 * timed["seconds"], "images_per_s": timed["images_per_s"],
                     "peak_mb": timed["peak_mb"], "speedup": timed["images_per_s"] / reference[method]
                     if method in reference else None, "wall_s": time.monotonic() - began})
        print(f"{name}: {rows[-1]['ms']:.1f} ms/step, {timed['images_per_s']:.0f} images/s, "
              f"peak {timed['peak_mb']:.0f} MB ({timed['memory']})", flush=True)
        save()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result["passed"] = not any("error" in r for r in rows)


def time_search_step(search_step, ns, impl: str, method: str, device) -> dict:
    """search_step.time_steps, with an optional torch.compile of the supernet."""
    if not getattr(ns, "compile", False):
        return search_step.time_steps(ns, impl, method, device)
    original = search_step.build

    def build_compiled(*a, **k):
        network, baseline = original(*a, **k)
        network.compile()
        return network, baseline

    search_step.build = build_compiled
    try:
        return search_step.time_steps(ns, impl, method, device)
    finally:
        search_step.build = original


def section_retrain_step(args, result: dict, save) -> None:
    import torch

    sys.path.insert(0, str(HERE))
    import retrain_step

    device = torch.device(args.device)
    small = args.dry_run
    ns = argparse.Namespace(genotype="DARTS_V2", channels=4 if small else 36, layers=3 if small else 20,
                            batch=4 if small else 96, size=8 if small else 32, steps=1 if small else 10,
                            warmup=1 if small else 3)
    result["shape"] = (f"C={ns.channels}, {ns.layers} cells, batch {ns.batch}, {ns.size}×{ns.size}, "
                       f"{ns.warmup} warm-up + {ns.steps} timed steps, cudnn.benchmark")
    rows = result.setdefault("rows", [])
    reference = None
    for name, amp, channels_last in (("fp32 NCHW (original)", False, False), ("fp32 channels_last", False, True),
                                     ("bf16 + channels_last", True, True)):
        seconds, peak, params = retrain_step.time_steps(ns, device, amp, channels_last)
        reference = reference or seconds
        rows.append({"variant": name, "ms": 1000 * seconds, "images_per_s": ns.batch / seconds, "peak_mb": peak,
                     "speedup": reference / seconds})
        result["parameters_m"] = params / 1e6
        print(f"{name}: {1000 * seconds:.1f} ms/step, {ns.batch / seconds:.0f} images/s, peak {peak:.0f} MB",
              flush=True)
        save()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def section_syncs(args, result: dict, save) -> None:
    """Count the host-device synchronisations torch reports (set_sync_debug_mode) in one search step
    and one evaluation-mode forward of the supernet. CUDA only."""
    import warnings

    import torch
    import torch.nn.functional as F

    from ltnas.config import PRIMITIVES, SearchConfig
    from ltnas.runs import use_channels_last
    from ltnas.search import strategy_class
    from ltnas.space import SearchNetwork

    device = torch.device(args.device)
    if device.type != "cuda":
        result["counts"] = {"note": "CUDA only (no synchronisations to count on the CPU)"}
        return
    # Small and in the default layout and precision: the count does not depend on the size, and the
    # first H100 run's bf16 + channels_last count at the DARTS size ran out of its time share twice.
    C, layers, B = 8, 5, 16
    torch.manual_seed(0)
    network = SearchNetwork(C, 10, layers, relaxation="sigmoid",
                            channels_last=use_channels_last(None, device, "search.channels_last")).to(device)
    config = SearchConfig(method="fairdarts", cell={"primitives": list(PRIMITIVES)}, batch_size=B, epochs=1)
    strategy = strategy_class("fairdarts")(network, config, F.cross_entropy)
    batch = (torch.randn(B, 3, 32, 32, device=device), torch.randint(0, 10, (B,), device=device))
    print("syncs: warm-up step", flush=True)
    strategy.step(batch, batch)  # warm-up: first calls may synchronise once (allocations, handles)
    sync(device)
    print("syncs: counting", flush=True)

    def count(fn) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                fn()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    counts = {"FairDARTS search step (fp32)": count(lambda: strategy.step(batch, batch))}

    def evaluate():
        network.eval()
        with torch.no_grad():
            network(batch[0])
        network.train()

    counts["supernet forward in evaluation (no_grad)"] = count(evaluate)
    result["counts"] = counts
    print(json.dumps(counts), flush=True)


def e2e_config(args, epochs: int, tiny: bool) -> dict:
    """end_to_end.py's FairDARTS search config (CIFAR-10-LT-sized synthetic data) for the CLI."""
    data = {"source": "synthetic", "num_classes": 10, "channels": 3, "image_size": 32, "n_max": 5000,
            "test_per_class": 10, "profile": "exp", "ratio": 100}
    raw = {"name": "gpu_check", "device": args.device, "progress": False, "data": data,
           "search": {"method": "fairdarts", "epochs": epochs}}  # fp32, default layout: fastest measured
    if tiny:
        data.update(n_max=20, image_size=8, ratio=10)  # ratio 100 would leave tail classes empty
        raw["search"].update(cell={"init_channels": 2, "layers": 3}, batch_size=8)
    return raw


def ltnas_env() -> dict:
    """The environment for `python3 -m ltnas`: this checkout's src/ first on PYTHONPATH."""
    env = dict(os.environ)
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_command(command: list[str], timeout: float) -> int | str:
    """Exit status of `command` (run with ltnas on the path), or "timeout" after ending it (SIGTERM
    first: torchrun then ends its workers). It stays in this section's process group, which the
    driver kills as a whole if the section itself runs out of time."""
    print(" ".join(command), flush=True)
    process = subprocess.Popen(command, env=ltnas_env())
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return "timeout"


def write_yaml(path: Path, raw: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def section_torchrun(args, result: dict, save) -> None:
    import torch

    work = Path(args.work) / "torchrun"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = write_yaml(work / "config.yaml", e2e_config(args, epochs=1, tiny=True))
    gpus = torch.cuda.device_count() if args.device.startswith("cuda") else 0
    runs = result.setdefault("runs", [])
    for processes in sorted({1, gpus} - {0}):
        out = work / f"run_{processes}"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                   "-m", "ltnas", "search", str(config), "--device", args.device, "--out", str(out), "--no-progress"]
        began = time.monotonic()
        code = run_command(command, timeout=max(args.budget / 2 - 5, 10))
        folders = [p for p in work.iterdir() if p.is_dir() and p.name.startswith("run_")]
        done = (out / "search" / "genotype.json").exists() and (out / "config.yaml").exists()
        runs.append({"processes": processes, "status": "ok" if code == 0 and done else
                     f"failed (exit {code}, genotype written: {done})",
                     "seconds": time.monotonic() - began, "run_folders": len(folders),
                     "note": "WORLD_SIZE=1: ltnas joins no process group" if processes == 1 else
                     f"{'nccl' if args.device.startswith('cuda') else 'gloo'} over {processes} processes"})
        shutil.rmtree(out, ignore_errors=True)  # one run folder per run, counted above
        save()
    if args.device.startswith("cuda"):
        result["nccl"] = nccl_all_reduce()
    result["passed"] = all(r["status"] == "ok" and r["run_folders"] == 1 for r in runs)


def nccl_all_reduce() -> str:
    """A world of one over nccl (what a one-GPU machine allows): init, all_reduce, destroy."""
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("GPU_CHECK_PORT", "29533"))
    try:
        dist.init_process_group("nccl", rank=0, world_size=1, device_id=torch.device("cuda", 0))
        value = torch.ones(4, device="cuda")
        dist.all_reduce(value)
        torch.cuda.synchronize()
        dist.destroy_process_group()
        return f"init_process_group('nccl', world_size=1) + all_reduce OK (nccl {torch.cuda.nccl.version()})"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def section_end_to_end(args, result: dict, save) -> None:
    work = Path(args.work) / "end_to_end"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    raw = e2e_config(args, epochs=2, tiny=args.dry_run)
    config = write_yaml(work / "config.yaml", raw)
    result["what"] = (f"FairDARTS, fp32, {raw['data']['source']} {raw['data']['image_size']}×"
                      f"{raw['data']['image_size']}, exp ratio 100, n_max {raw['data']['n_max']}, 10 classes, "
                      f"{raw['search']['epochs']} epochs, on {args.device}")
    run = work / "run"
    cli = ["search", str(config), "--device", args.device, "--out", str(run), "--no-progress"]
    began = time.monotonic()
    if args.in_process:  # the test suite's quick mode: the same CLI, without a second interpreter
        from ltnas.cli import main as ltnas_main

        result["exit"] = ltnas_main(cli)
    else:
        result["exit"] = run_command([sys.executable, "-m", "ltnas", *cli], timeout=max(args.budget - 10, 10))
    wall = time.monotonic() - began
    metrics = run / "search" / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
    result["epochs"] = [{"epoch": r["epoch"], "seconds": r["seconds"], "train_loss": r.get("train_loss"),
                         "val_acc": r.get("val_acc")} for r in rows]
    data_json = run / "data.json"
    if data_json.exists():
        counts = json.loads(data_json.read_text())
        result["data"] = {k: v for k, v in counts.items() if not isinstance(v, (list, dict))} or None
    result["wall"] = wall
    if (run / "config.yaml").exists():  # the resolved config: FairDARTS's own defaults filled in
        import yaml

        search = yaml.safe_load((run / "config.yaml").read_text())["search"]
        result["what"] += (f", C={search['cell']['init_channels']}, {search['cell']['layers']} cells, "
                           f"batch {search['batch_size']} "
                           f"+ {search['batch_size']}, channels_last {search.get('channels_last') or 'default (CPU only)'}")
    if len(rows) >= 2:  # start-up and epoch 1 (warm-up included) as measured, then 48 × epoch 2
        result["projected_50_min"] = (wall + 48 * rows[1]["seconds"]) / 60
        result["projection"] = "wall of the 2 epochs + 48 × epoch 2"
    elif len(rows) == 1:
        result["projected_50_min"] = (wall + 49 * rows[0]["seconds"]) / 60
        result["projection"] = "timed out in epoch 2: wall + 49 × epoch 1"
    result["passed"] = result["exit"] == 0 and len(rows) == 2
    save()


if __name__ == "__main__":
    raise SystemExit(main())
