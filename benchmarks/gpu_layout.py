"""Which memory layout is right and fast on a GPU? A follow-up to gpu_check.py's first H100 run.

That run found the FairDARTS supernet's float32 gradients on CUDA 40 % away from the float64 answer
(CPU float32: 0.1 %) while its logits agreed to 1e-6, and ltnas's search step no faster than the
original DARTS code. The supernet runs in channels_last by default, the original in NCHW. This script
separates the suspects, each against a CPU float64 reference, TF32 off:

1. one depthwise (grouped) convolution, the sep/dil convs' first layer: NCHW vs channels_last, cuDNN
   on and off;
2. the whole supernet: channels_last vs NCHW, cuDNN on and off;
3. the search step's time: original DARTS vs ltnas NCHW vs ltnas channels_last (fp32 and bf16).

    python benchmarks/gpu_layout.py [--device cuda] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gpu_check  # noqa: E402
import search_step  # noqa: E402
from ltnas.space import SearchNetwork  # noqa: E402


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return gpu_check.relative_error(a.cpu(), b.cpu())


def depthwise_errors(device: torch.device, channels: int, size: int, kernel: int, dilation: int) -> dict:
    """Input and weight gradients of one depthwise convolution, per layout, against CPU float64."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, channels, size, size, generator=generator)
    w = torch.randn(channels, 1, kernel, kernel, generator=generator)
    g = torch.randn(8, channels, size, size, generator=generator)
    padding = dilation * (kernel - 1) // 2

    def grads(dev, dtype, layout):
        xi = x.to(dev, dtype).contiguous(memory_format=layout).requires_grad_(True)
        wi = w.to(dev, dtype).contiguous(memory_format=layout).requires_grad_(True)
        out = F.conv2d(xi, wi, padding=padding, dilation=dilation, groups=channels)
        dx, dw = torch.autograd.grad(out, (xi, wi), g.to(dev, dtype))
        return out.detach(), dx, dw

    ref = grads("cpu", torch.float64, torch.contiguous_format)
    errors = {}
    for name, layout in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
        out, dx, dw = grads(device, torch.float32, layout)
        errors[name] = {"out": relative(out, ref[0]), "d_input": relative(dx, ref[1]), "d_weight": relative(dw, ref[2])}
    return errors


def supernet_rows(device: torch.device, smoke: bool) -> list[str]:
    C, layers, n, size = (4, 3, 4, 8) if smoke else (8, 5, 8, 32)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, size, size, generator=generator), torch.randint(0, 10, (n,), generator=generator)
    rows = []
    for channels_last in (True, False):
        torch.manual_seed(0)
        net = SearchNetwork(C, 10, layers, relaxation="sigmoid", channels_last=channels_last)
        with torch.no_grad():
            for alpha in net.arch_parameters():
                alpha.normal_()
        state = {k: v.clone() for k, v in net.state_dict().items()}

        def make(channels_last=channels_last, state=state):
            model = SearchNetwork(C, 10, layers, relaxation="sigmoid", channels_last=channels_last)
            model.load_state_dict(state)
            return model

        def check(name, value, limit, shown):
            rows.append(f"{'OK  ' if value <= limit else 'FAIL'} {name}: {shown} (limit {limit:.0e})")
            print(rows[-1], flush=True)

        for cudnn in (True, False):
            torch.backends.cudnn.enabled = cudnn
            label = f"supernet C={C}, {layers} cells, {'channels_last' if channels_last else 'NCHW'}, cuDNN {cudnn}"
            gpu_check.compare_devices(make, x, y, device, check, label)
        torch.backends.cudnn.enabled = True
    return rows


def timing_rows(device: torch.device, smoke: bool) -> list[str]:
    ns = argparse.Namespace(channels=2 if smoke else 16, layers=3 if smoke else 8, batch=4 if smoke else 64,
                            size=8 if smoke else 32, steps=1 if smoke else 8, warmup=0 if smoke else 2,
                            amp=False, nchw=False)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = True
    rows, reference = [], None
    for name, impl, options in (("original DARTS, fp32 NCHW", "baseline", {}),
                                ("ltnas DARTS fp32 NCHW", "ours", {"nchw": True}),
                                ("ltnas DARTS fp32 channels_last", "ours", {}),
                                ("ltnas DARTS bf16 NCHW", "ours", {"nchw": True, "amp": True})):
        timed = search_step.time_steps(argparse.Namespace(**{**vars(ns), **options}), impl, "darts", device)
        reference = reference or timed["images_per_s"]
        rows.append(f"| {name} | {1000 * timed['seconds']:.1f} | {timed['images_per_s']:.0f} | {timed['peak_mb']:.0f} "
                    f"| {timed['images_per_s'] / reference:.2f}x |")
        print(rows[-1], flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CPU check of the script)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {name}, torch {torch.__version__}")
    print("depthwise convolution, float32 on the device vs CPU float64 (relative error):")
    for kernel, dilation in ((3, 1), (5, 1), (3, 2), (5, 2)):
        for cudnn in (True, False):
            torch.backends.cudnn.enabled = cudnn
            errors = depthwise_errors(device, 8 if args.smoke else 16, 8 if args.smoke else 32, kernel, dilation)
            shown = "; ".join(f"{layout}: " + ", ".join(f"{k} {v:.1e}" for k, v in e.items())
                              for layout, e in errors.items())
            print(f"  k{kernel} d{dilation} cuDNN {cudnn}: {shown}", flush=True)
    torch.backends.cudnn.enabled = True
    supernet_rows(device, args.smoke)
    print("| search step (C=16, 8 cells, batch 64 + 64) | ms/step | images/s | peak MB | vs original |")
    print("|---|---|---|---|---|")
    timing_rows(device, args.smoke)


if __name__ == "__main__":
    main()
