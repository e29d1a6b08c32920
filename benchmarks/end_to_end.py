"""Wall time of a whole FairDARTS search on data the size of CIFAR-10-LT (exp profile, ratio 100).

    python benchmarks/end_to_end.py --device cuda --set search.amp=true        # 50 epochs, 12,406 images
    python benchmarks/end_to_end.py --cifar-root data --device cuda             # the real CIFAR-10-LT
    python benchmarks/end_to_end.py --smoke                                     # tiny: checks it runs

It runs ltnas's own search stage (`pipeline.search`: FairDARTS with the authors' defaults, 50
epochs, train/val split 50/50, batches and augmentation on the device, a checkpoint per epoch) into
a temporary run folder. Without --cifar-root the images are ltnas's synthetic source at 32×32 with
CIFAR-10-LT's class counts (5,000 down to 50; 12,406 images): the step cost does not depend on
pixel values. Prints the seconds of every stage and the total.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from ltnas import pipeline
from ltnas.config import apply_override, validate_config
from ltnas.runs import RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cifar-root", help="folder with cifar-10-batches-py (default: random tensors)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. search.amp=true (repeatable)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one epoch: for the test suite")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.cifar_root:
        data = {"source": "cifar10", "root": args.cifar_root, "profile": "exp", "ratio": 100}
    else:
        data = {"source": "synthetic", "num_classes": 10, "channels": 3, "image_size": 32, "n_max": 5000,
                "test_per_class": 10, "profile": "exp", "ratio": 100}
    raw = {"name": "end_to_end", "device": args.device, "progress": False, "data": data,
           "search": {"method": "fairdarts", "epochs": 50}}
    if args.smoke:
        if not args.cifar_root:
            data.update(n_max=20, image_size=8, ratio=10)  # ratio 100 would leave tail classes empty
        raw["search"].update(epochs=1, init_channels=2, layers=3, batch_size=8)
    for item in args.overrides:
        apply_override(raw, item)
    config = validate_config(raw, source="--set")

    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        run = RunFolder.create(Path(folder) / "run", config)
        ctx = pipeline.Context.prepare(config, run)
        prepared = time.perf_counter()
        genotype = pipeline.search(ctx)
        searched = time.perf_counter()
    images = len(ctx.dataset.train.labels)
    gpu = f" ({torch.cuda.get_device_name(ctx.device)})" if ctx.device.type == "cuda" else ""
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {ctx.device}{gpu}, torch {torch.__version__}")
    print(f"FairDARTS search, {config.search.epochs} epochs, {images} training images "
          f"({'CIFAR-10' if args.cifar_root else 'random tensors'}), C={config.search.cell.init_channels}, "
          f"{config.search.cell.layers} layers, batch {config.search.batch_size}, amp {config.search.amp}")
    print(f"data {prepared - began:.1f} s, search {searched - prepared:.1f} s, total {searched - began:.1f} s "
          f"({(searched - began) / 60:.1f} min)")
    print(f"genotype: {genotype.describe().splitlines()[0]}")


if __name__ == "__main__":
    main()
