"""`ltnas` command line: quickstart, search, train, eval, run, report, genotypes.

Problems the user can fix are reported as one line on stderr with exit code 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from ltnas import __version__
from ltnas.config import load_config
from ltnas.errors import LtnasError

EPILOG = "Configs: a YAML path or the name of a shipped config (see `ltnas configs`)."


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise LtnasError(f"{message}; see `{self.prog} --help`")


def shipped_configs() -> dict[str, Path]:
    folder = resources.files("ltnas").joinpath("configs")
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def resolve_config_path(value: str) -> Path:
    path = Path(value)
    if path.is_file():
        return path
    shipped = shipped_configs()
    if value in shipped:
        return shipped[value]
    raise LtnasError(
        f"config {value} not found; pass a YAML file or one of the shipped configs: {', '.join(sorted(shipped))}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ltnas", description="Neural architecture search for long-tailed image data.",
                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"ltnas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def run_options(sub: argparse.ArgumentParser, config: bool = True) -> None:
        if config:
            sub.add_argument("config", nargs="?", help="YAML config file or shipped config name")
        sub.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config value, e.g. --set search.epochs=10 (repeatable)")
        sub.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the config's, auto)")
        sub.add_argument("--seed", type=int, help="seed for data subsets, initialisation and batches")
        sub.add_argument("--out", help="run folder to create (default: runs/NAME-TIMESTAMP)")
        sub.add_argument("--resume", metavar="RUN_DIR",
                         help="continue the run in RUN_DIR after a kill (uses that run's saved config)")
        sub.add_argument("--no-progress", action="store_true", help="no progress bars")

    run_options(commands.add_parser(
        "quickstart", help="search, retrain and evaluate on the embedded long-tailed digits (CPU, minutes)"),
        config=False)
    run_options(commands.add_parser("run", help="search → retrain → evaluate → report"))
    run_options(commands.add_parser("search", help="search a cell and derive its genotype"))
    train = commands.add_parser("train", help="retrain a genotype from scratch, then evaluate")
    run_options(train)
    train.add_argument("--genotype", help="published genotype name (see `ltnas genotypes`) or genotype file")
    evaluate = commands.add_parser("eval", help="evaluate a run's trained model and rewrite its report")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--device", help="evaluate on this device instead of the run's")
    report = commands.add_parser("report", help="rewrite report.md and the plots of a run folder")
    report.add_argument("run_dir")
    commands.add_parser("genotypes", help="list the published genotypes shipped with ltnas")
    commands.add_parser("configs", help="list the shipped configs")
    return parser


def _config_for(args: argparse.Namespace, default_config: str | None = None):
    """The run folder and config of a new run, or of the run being resumed."""
    from ltnas.runs import RunFolder

    if args.resume:
        given = [flag for flag, value in (("CONFIG", getattr(args, "config", None)), ("--set", args.overrides),
                                          ("--seed", args.seed is not None), ("--out", args.out),
                                          ("--genotype", getattr(args, "genotype", None))) if value]
        if given:
            raise LtnasError(f"a resumed run keeps its saved config and folder; drop {', '.join(given)} with --resume")
        run = RunFolder.open(args.resume)
        config = run.config()
        if args.device:  # where and how visibly it runs may change between sessions; nothing else may
            config.device = args.device
        if args.no_progress:
            config.progress = False
        return run, config

    config_name = getattr(args, "config", None) or default_config
    if config_name is None:
        raise LtnasError(f"no config given; run `ltnas {args.command} CONFIG` (a YAML file or a shipped name such "
                         "as quickstart; see `ltnas configs`)")
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"device={args.device}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.no_progress:
        overrides.append("progress=false")
    if getattr(args, "genotype", None):
        overrides.append(f"train.genotype={args.genotype}")
    config = load_config(resolve_config_path(config_name), overrides)
    if config.train.genotype:
        from ltnas.space import load_genotype

        load_genotype(config.train.genotype)  # fail before creating the run folder
    return _create_run_folder(args.out, config), config


def _create_run_folder(out: str | None, config):
    """A new run folder; under torchrun rank 0 creates it and the other ranks open the same one."""
    from ltnas import distributed
    from ltnas.runs import RunFolder, resolve_device

    distributed.init_from_environment(resolve_device(config.device))
    if not distributed.is_distributed():
        return RunFolder.create(out, config)
    run, path, problem = None, None, None
    if distributed.is_main():
        try:
            run = RunFolder.create(out, config)
            path = str(run.path)
        except LtnasError as exc:
            problem = str(exc)
    path, problem = distributed.broadcast_object((path, problem))
    if problem:
        raise LtnasError(problem)
    return run if run is not None else RunFolder.open(path)


def main(argv: list[str] | None = None) -> int:
    from ltnas import distributed

    try:
        return _main(argv)
    except LtnasError as exc:
        print(f"ltnas: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ltnas: interrupted; continue with --resume RUN_DIR (the last finished epoch is kept)",
              file=sys.stderr)
        return 130
    finally:
        distributed.shutdown()


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "genotypes":
        from ltnas.space import published_genotypes

        for name, genotype in published_genotypes().items():
            print(f"{name}\n  " + genotype.describe().replace("\n", "\n  "))
        return 0
    if args.command == "configs":
        for name, path in sorted(shipped_configs().items()):
            print(f"{name:32s} {path}")
        return 0

    if args.command in ("report", "eval"):
        return _existing_run_command(args)

    run, config = _config_for(args, default_config="quickstart" if args.command == "quickstart" else None)
    try:
        return _run_command(args.command, run, config)
    except LtnasError:
        if not args.resume:
            run.discard_if_unstarted()
        raise


def _existing_run_command(args: argparse.Namespace) -> int:
    """`report` and `eval`: work on a run folder that is already there."""
    from ltnas import pipeline
    from ltnas.report import print_summary, write_report
    from ltnas.runs import RunFolder

    run = RunFolder.open(args.run_dir)
    if args.command == "report":
        print(write_report(run.path))
        return 0
    config = run.config()
    if args.device:
        config.device = args.device
    results = pipeline.evaluate_and_report(pipeline.Context.prepare(config, run))
    print_summary(results, run.path)
    return 0


def _run_command(command: str, run, config) -> int:
    """`search`, `train`, `run`, `quickstart`: a new or resumed run in `run`."""
    from ltnas import distributed, pipeline
    from ltnas.report import print_summary

    if command == "search":
        genotype = pipeline.search_only(config, run)
        if not distributed.is_main():
            return 0
        print(genotype.describe())
        print(f"genotype: {run.search / 'genotype.json'}\nrun folder: {run.path}")
        return 0
    if command == "train":
        results = pipeline.train_only(config, run)
    else:  # run, quickstart
        results = pipeline.run_all(config, run)
    if distributed.is_main():
        print_summary(results, run.path)
    return 0
