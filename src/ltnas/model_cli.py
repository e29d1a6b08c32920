"""The commands that use a trained model: `ltnas predict` and `ltnas export` (parsers and entry points;
the work is in predict.py and export.py, imported only when a command runs)."""

from __future__ import annotations

import sys

from ltnas.errors import LtnasError
from ltnas.export_formats import DEFAULT_TOLERANCE, FORMATS


def add_predict_parser(commands) -> None:
    predict = commands.add_parser("predict", help="classify images with a run's trained model")
    predict.add_argument("run_dir")
    predict.add_argument("images", nargs="+", metavar="IMAGE|FOLDER", help="image files or folders of images")
    predict.add_argument("--top-k", type=int, default=1, help="also list the k most probable classes (default 1)")
    predict.add_argument("--out", help="write the predictions to this CSV file")
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    predict.add_argument("--batch-size", type=int, default=64)


def predict_command(args) -> int:
    from ltnas.model_io import load_model
    from ltnas.predict import collect_images, format_row, predict_images, write_csv
    from ltnas.runs import resolve_device

    if args.batch_size < 1:
        raise LtnasError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.top_k < 1:
        raise LtnasError(f"--top-k must be at least 1, got {args.top_k}")
    files = collect_images(args.images)
    rows = predict_images(load_model(args.run_dir, resolve_device(args.device)), files, args.top_k, args.batch_size)
    if args.out:
        write_csv(rows, args.out)
        print(f"{len(rows)} predictions written to {args.out}", file=sys.stderr)
    else:
        for row in rows:
            print(format_row(row))
    return 0


def add_export_parser(commands) -> None:
    export = commands.add_parser("export", help="export a run's trained network to ONNX or TorchScript, checked "
                                 "against PyTorch")
    export.add_argument("run_dir")
    export.add_argument("--format", required=True, choices=tuple(FORMATS))
    export.add_argument("--out", help="file to write (default: RUN_DIR/export/model.onnx or model.torchscript.pt)")
    export.add_argument("--images", nargs="+", metavar="IMAGE|FOLDER",
                        help="images to check the export on (default: the run's first test images)")
    export.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help=f"largest allowed |logit difference| (default {DEFAULT_TOLERANCE:g})")


def export_command(args) -> int:
    from ltnas.export import export_model

    result = export_model(args.run_dir, args.format, args.out, args.images, args.tolerance)
    print(f"{result.format}: {result.path} (max |logit difference| to PyTorch {result.max_abs_diff:.2e} on "
          f"{result.checked_images} images, tolerance {result.tolerance:g})")
    return 0
