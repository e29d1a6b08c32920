"""`ltnas` command line: quickstart, search, train, eval, run, report, predict, export, genotypes, supernet,
evolve, adapt, rank.

Problems the user can fix are reported as one line on stderr with exit code 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ltnas import __version__
from ltnas.config import load_config, resolve_config_path, shipped_configs  # noqa: F401 (re-exported)
from ltnas.errors import LtnasError

JOBS_HELP = ("members run at a time, each in its own process (default on a CPU: one per core, at most one per "
             "member, 1 torch thread each when every core has one; 1 on a GPU; LTNAS_JOBS also sets it)")

EPILOG = "Configs: a YAML path or the name of a shipped config (see `ltnas configs`)."


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise LtnasError(f"{message}; see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ltnas", description="Neural architecture search for long-tailed image data.",
                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"ltnas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def run_options(sub: argparse.ArgumentParser, config: bool = True) -> None:
        if config:
            # Optional only for --resume (and `evolve --supernet`): a new run needs one.
            sub.add_argument("config", nargs="?", metavar="CONFIG",
                             help="YAML config file or shipped config name, e.g. quickstart (see `ltnas configs`); "
                                  "required unless --resume RUN_DIR is given")
        sub.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config value, e.g. --set search.epochs=10 (repeatable)")
        sub.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the config's, auto)")
        sub.add_argument("--seed", type=int, help="seed for data subsets, initialisation and batches")
        sub.add_argument("--out", help="run folder to create (default: runs/NAME-TIMESTAMP)")
        sub.add_argument("--resume", metavar="RUN_DIR",
                         help="continue the run in RUN_DIR after a kill (uses that run's saved config)")
        sub.add_argument("--no-progress", action="store_true",
                         help="no progress bars (and no per-epoch lines when stderr is not a terminal)")
        sub.add_argument("--threads", type=int, metavar="N",
                         help="torch intra-op threads per process on a CPU (default: the cores that are not busy, "
                              "by the load average, shared among the members run at a time; OMP_NUM_THREADS "
                              "also sets it)")
        sub.add_argument("--log", choices=("tensorboard",),
                         help="also log metrics, architecture-weight histograms and the per-class figure to "
                              "RUN/tensorboard (needs pip install \"ltnas[tensorboard]\")")

    quickstart = commands.add_parser(
        "quickstart", help="compare DARTS, FairDARTS and SSF-NAS with baselines (a small CNN, ResNet-32, DARTS_V2) "
        "on the embedded long-tailed digits (CPU, minutes)")
    run_options(quickstart, config=False)
    quickstart.add_argument("--jobs", type=int, metavar="N", help=JOBS_HELP)
    compare = commands.add_parser(
        "compare", help="run several methods (or a comparison file's variants) × seeds into one table")
    run_options(compare)
    compare.add_argument("--methods", help="comma-separated search methods, baseline networks and published "
                         "genotypes, e.g. darts,fairdarts,ssf,cnn,resnet32,darts_v2")
    compare.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2 (default: the file's, or the config's)")
    compare.add_argument("--jobs", type=int, metavar="N", help=JOBS_HELP)
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
    supernet = commands.add_parser("supernet", help="IMB-NAS: train a one-shot supernet (a reusable artefact)")
    supernet_train = supernet.add_subparsers(dest="action", required=True, parser_class=_Parser).add_parser(
        "train", help="train a supernet on source_data (or data); writes RUN/supernet/supernet.pt")
    run_options(supernet_train)
    evolve = commands.add_parser("evolve", help="IMB-NAS: evolutionary search over a supernet's subnets")
    run_options(evolve)
    evolve.add_argument("--supernet", help="supernet file to search (default: train one on the config's data)")
    adapt = commands.add_parser("adapt", help="IMB-NAS: adapt a source supernet to the target data, search, "
                                "retrain, evaluate")
    run_options(adapt)
    adapt.add_argument("--procedure", choices=("P0", "P1", "P2", "P3"), help="adaptation procedure (default: the "
                       "config's adapt.procedure)")
    adapt.add_argument("--supernet", help="source supernet file (default: adapt.supernet, else the cache)")
    rank = commands.add_parser("rank", help="IMB-NAS: rank the same architectures under several label distributions "
                               "(rank.distributions) and report Kendall's τ and Spearman's ρ between them")
    run_options(rank)
    rank.add_argument("--candidates", help="rank the final population of this evolution (RUN/evolve/candidates.jsonl) "
                      "instead of rank.paths random paths")
    from ltnas.model_cli import add_export_parser, add_predict_parser

    add_predict_parser(commands)
    add_export_parser(commands)
    commands.add_parser("genotypes", help="list the published genotypes shipped with ltnas")
    commands.add_parser("configs", help="list the shipped configs")
    show = commands.add_parser("config", help="show a resolved config").add_subparsers(
        dest="action", required=True, parser_class=_Parser).add_parser(
        "show", help="print every value a config uses, with each key's description and where its value comes from")
    show.add_argument("target", metavar="NAME|PATH|RUN_DIR", help="shipped config name, YAML file or run folder")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config value first, as `ltnas run` does (repeatable)")
    return parser


def _config_for(args: argparse.Namespace, default_config: str | None = None):
    """The run folder and config of a new run, or of the run being resumed."""
    from ltnas.runs import RunFolder

    if args.resume:
        given = [flag for flag, value in (("CONFIG", getattr(args, "config", None)), ("--set", args.overrides),
                                          ("--seed", args.seed is not None), ("--out", args.out),
                                          ("--genotype", getattr(args, "genotype", None)),
                                          ("--procedure", getattr(args, "procedure", None)),
                                          ("--supernet", getattr(args, "supernet", None)),
                                          ("--candidates", getattr(args, "candidates", None))) if value]
        if given:
            raise LtnasError(f"a resumed run keeps its saved config and folder; drop {', '.join(given)} with --resume")
        run = RunFolder.open(args.resume).claim()
        config = run.config()
        if args.device:  # where and how visibly it runs may change between sessions; nothing else may
            config.device = args.device
        if args.no_progress:
            config.progress = False
        return run, config

    config_name = getattr(args, "config", None) or default_config
    # `ltnas evolve --supernet PATH` needs no config: the supernet file records its data
    from_defaults = config_name is None and args.command == "evolve" and getattr(args, "supernet", None)
    if config_name is None and not from_defaults:
        also = " or `ltnas evolve --supernet PATH`" if args.command == "evolve" else ""
        raise LtnasError(f"no config given; run `ltnas {args.command} CONFIG`{also} (a YAML file or a shipped name "
                         "such as quickstart; see `ltnas configs`)")
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"device={args.device}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.no_progress:
        overrides.append("progress=false")
    if getattr(args, "genotype", None):
        overrides.append(f"train.genotype={args.genotype}")
    if getattr(args, "procedure", None):
        overrides.append(f"adapt.procedure={args.procedure}")
    if getattr(args, "supernet", None):
        overrides.append(f"adapt.supernet={Path(args.supernet).resolve()}")
    if getattr(args, "candidates", None):
        overrides.append(f"rank.candidates={Path(args.candidates).resolve()}")
    from ltnas.compare import is_comparison_file

    path = None if from_defaults else resolve_config_path(config_name)
    if path is not None and is_comparison_file(path):
        raise LtnasError(f"{path} is a comparison file (several runs); run it with `ltnas compare {config_name}`")
    config = load_config(path, overrides)
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
    from ltnas import lock
    from ltnas.errors import os_error
    from ltnas.runs import stopping_on_sigterm

    code = None
    try:
        with stopping_on_sigterm():  # SIGTERM stops a run as Ctrl-C does
            code = _main(argv)
        return code
    except BrokenPipeError:  # `ltnas configs | head`: the reader left; stop quietly, as Unix tools do
        _silence_stdout()
        return 141
    except LtnasError as exc:
        print(f"ltnas: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a full disk or a read-only folder outside a run's stages (report, plots)
        error = os_error(exc)
        if error is None:
            raise
        print(f"ltnas: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM; runs.Interrupted says how to continue the run it stopped
        print(f"ltnas: {exc or 'interrupted'}", file=sys.stderr)
        return 130
    finally:
        lock.release_all()
        _leave_process_group(synchronise=code == 0)


def _leave_process_group(synchronise: bool) -> None:
    """End a torchrun process's process group. Only a command that imported `ltnas.distributed` can have
    made one; the others (--help, configs, bad arguments) never import torch at all."""
    distributed = sys.modules.get("ltnas.distributed")
    if distributed is not None:
        distributed.shutdown(synchronise=synchronise)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit does not raise a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (e.g. captured in a test)
        pass


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from ltnas import plot_settings, threads

    threads.check(getattr(args, "jobs", None), getattr(args, "threads", None))  # before any folder is made
    plot_settings.draft()  # a bad LTNAS_PLOTS stops here, not when the report is drawn at a run's end
    if args.command == "genotypes":
        from ltnas.space import published_genotypes

        for name, genotype in published_genotypes().items():
            print(f"{name}\n  " + genotype.describe().replace("\n", "\n  "))
        return 0
    if args.command == "config":
        from ltnas.config_show import resolved, show

        print(show(*resolved(args.target, args.overrides)), end="")
        return 0
    if args.command == "configs":
        from ltnas.compare import is_comparison_file

        for name, path in sorted(shipped_configs().items()):
            kind = "comparison (ltnas compare)" if is_comparison_file(path) else "run"
            print(f"{name:32s} {kind:27s} {path}")
        return 0

    if args.command in ("predict", "export"):
        from ltnas.model_cli import export_command, predict_command

        return predict_command(args) if args.command == "predict" else export_command(args)
    if args.command in ("report", "eval"):
        return _existing_run_command(args)
    if args.command in ("compare", "quickstart"):
        return _compare_command(args)

    from ltnas import watch

    watch.check_logger(args.log)
    run, config = _config_for(args, default_config="quickstart" if args.command == "quickstart" else None)
    from ltnas import distributed, threads

    threads.apply(threads.choose(1, config.device, threads=args.threads).threads)
    if distributed.is_main():  # first, so that a long run can be watched (and resumed) from the start
        print(f"run folder: {run.path}", flush=True)
    from ltnas.runs import resume_advice

    command = "ltnas supernet train" if args.command == "supernet" else f"ltnas {args.command}"
    with resume_advice(run.path, command, discard=None if args.resume else run):
        with watch.logging_to(run.path, args.log):
            return _run_command(args.command, run, config)


def _compare_command(args: argparse.Namespace) -> int:
    """`compare` and `quickstart` (ltnas.methods.QUICKSTART on the quickstart config): a new or resumed comparison."""
    from ltnas.compare import Comparison, is_comparison_file, read_comparison_file, spec_from_methods
    from ltnas.methods import quickstart_methods
    from ltnas.report.comparison import print_comparison

    from ltnas import watch

    quickstart = args.command == "quickstart"
    watch.check_logger(args.log)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise LtnasError(f"ltnas {args.command} runs its members on this machine's cores (--jobs); under torchrun "
                         "start each run with `ltnas run`")
    if args.resume:
        given = [flag for flag, value in (("CONFIG", getattr(args, "config", None)),
                                          ("--seed", args.seed is not None), ("--out", args.out),
                                          ("--methods", getattr(args, "methods", None)),
                                          ("--seeds", getattr(args, "seeds", None))) if value]
        if given:
            raise LtnasError(f"a resumed comparison keeps its saved configs and folder; drop {', '.join(given)} "
                             "with --resume")
        comparison = Comparison.open(args.resume, device=args.device, progress=False if args.no_progress else None)
        extended = comparison.extend(args.overrides)  # only more epochs (refused otherwise)
        for member in extended:
            print(f"{member}: continues with {', '.join(args.overrides)}", file=sys.stderr)
        if args.overrides and not extended:
            print(f"ltnas: note: every member has finished, so {', '.join(args.overrides)} changes nothing "
                  "(finished members keep what they ran)", file=sys.stderr)
    else:
        seeds = _seed_list(args)
        path = resolve_config_path("quickstart" if quickstart else _required_config(args))
        methods = quickstart_methods() if quickstart else _method_list(args)
        if is_comparison_file(path):
            if methods:
                raise LtnasError(f"{path} is a comparison file: it lists its own variants; drop --methods")
            spec = read_comparison_file(path, resolve_config_path)
        elif not methods:
            raise LtnasError(f"{path} is a run config; name the methods to compare, e.g. --methods darts,fairdarts,ssf")
        else:
            spec = spec_from_methods(path, methods, seeds or [load_config(path).seed])
        overrides = list(args.overrides)
        if args.device:
            overrides.append(f"device={args.device}")
        if args.no_progress:
            overrides.append("progress=false")
        comparison = Comparison.create(spec, args.out, overrides, seeds)

    from ltnas import threads
    from ltnas.report.summary import format_seconds

    unfinished = sum(not member.finished for member in comparison.members)
    plan = threads.choose(unfinished, comparison.members[0].config.device, jobs=args.jobs, threads=args.threads)
    if plan.jobs == 1:
        threads.apply(plan.threads)

    def label(index: int, member) -> str:
        return f"[{index + 1}/{len(comparison.members)}] {member.variant}, seed {member.seed}"

    def announce(index: int, member) -> None:
        state = "done" if member.finished else ("trying again" if member.failure else "running")
        print(f"{label(index, member)}: {state} ({member.run.path})", file=sys.stderr, flush=True)

    def ended(index: int, member, seconds: float) -> None:
        if plan.jobs == 1:  # one at a time: the next line says the next one started
            return
        state = f"finished in {format_seconds(seconds)}" if member.finished else f"failed ({member.failure})"
        print(f"{label(index, member)}: {state}", file=sys.stderr, flush=True)

    def still_running(running) -> None:  # every compare.STATUS_EVERY s without a member ending: where they stand
        print("still running: " + "; ".join(f"{label(index, member)}: {member.progress()}" for index, member in running),
              file=sys.stderr, flush=True)

    print(f"comparison folder: {comparison.path}", flush=True)
    if unfinished:
        print(f"{plan.describe()} (set with --jobs / --threads)", file=sys.stderr, flush=True)
    from ltnas.runs import resume_advice

    with resume_advice(comparison.path, f"ltnas {args.command}"):
        result = comparison.run(on_member=announce, log=args.log, jobs=plan.jobs, threads=plan.threads,
                                on_end=ended, on_wait=still_running)
    print_comparison(result, comparison.path)
    failed = result["failed"]
    if failed:  # every other member ran and is in the table; the command still reports the failure
        print(f"ltnas: error: {len(failed)} of {len(comparison.members)} comparison members did not finish "
              f"(see above and comparison.md); fix the cause and try them again with `ltnas compare --resume "
              f"{comparison.path}` (--set search.epochs=N / train.epochs=N may extend them)", file=sys.stderr)
        return 1
    return 0


def _required_config(args: argparse.Namespace) -> str:
    if not args.config:
        raise LtnasError("no config given; run `ltnas compare CONFIG --methods darts,fairdarts,ssf` or pass a "
                         "comparison file (see `ltnas configs`)")
    return args.config


def _method_list(args: argparse.Namespace) -> list[str]:
    # Unknown names are caught by ltnas.compare.method_variant (search method, baseline or published genotype).
    methods = [m.strip() for m in (args.methods or "").split(",") if m.strip()]
    if len(set(methods)) != len(methods):
        raise LtnasError("--methods lists a method twice; list each once")
    return methods


def _seed_list(args: argparse.Namespace) -> list[int] | None:
    text = getattr(args, "seeds", None)
    if text is None:
        return [args.seed] if args.seed is not None else None
    if args.seed is not None:
        raise LtnasError("give --seeds or --seed, not both")
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise LtnasError(f"--seeds {text!r} is not a comma-separated list of integers; write e.g. --seeds 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise LtnasError(f"--seeds {text!r} needs at least one seed and no repeats")
    return seeds


def _existing_run_command(args: argparse.Namespace) -> int:
    """`report` and `eval`: work on a run folder that is already there."""
    from ltnas import pipeline
    from ltnas.report import print_summary, write_report
    from ltnas.runs import RunFolder

    run = RunFolder.open(args.run_dir)
    if args.command == "report":
        print(write_report(run.path))
        return 0
    if not run.has_started():  # nothing to evaluate: leave the folder as it is
        raise LtnasError(f"{run.path} has nothing to evaluate yet (it holds only its config); run it with "
                         f"`ltnas run --resume {run.path}`")
    run.claim()
    config = run.config()
    if args.device:
        config.device = args.device
    results = pipeline.evaluate_and_report(pipeline.Context.prepare(config, run))
    print_summary(results, run.path)
    return 0


def _correlation(value: float | None) -> str:
    return "n/a (a scoring is all tied)" if value is None else f"{value:+.3f}"


def _run_command(command: str, run, config) -> int:
    """`search`, `train`, `run`, `quickstart`: a new or resumed run in `run`."""
    from ltnas import distributed, pipeline
    from ltnas.report import print_summary

    if command == "search":
        from ltnas.methods import method

        genotype = pipeline.search_only(config, run)
        if not distributed.is_main():
            return 0
        print(genotype.describe())
        empty = [cell for cell in ("normal", "reduce") if hasattr(genotype, cell) and not getattr(genotype, cell)]
        if empty:  # retraining it would fail; say so now, while the fix is cheap
            print(f"ltnas: warning: the {' and '.join(empty)} cell kept no operation (every σ below "
                  f"search.threshold={config.search.threshold}); search longer or lower the threshold",
                  file=sys.stderr)
        print(f"genotype: {run.path / method(config.search.method).genotype_file}\nrun folder: {run.path}")
        return 0
    if command in ("supernet", "evolve"):
        from ltnas.stages import imbnas as adapt

        if command == "supernet":
            print(f"supernet: {adapt.supernet_only(config, run)}\nrun folder: {run.path}")
        else:
            print(adapt.evolve_only(config, run).describe())
            print(f"genotype: {run.path / 'evolve' / 'genotype.json'}\nrun folder: {run.path}")
        return 0
    if command == "rank":
        from ltnas.stages.rank import rank_architectures

        result = rank_architectures(config, run)
        for pair in result["pairs"]:
            print(f"{pair['a']} vs {pair['b']}: Kendall τ {_correlation(pair['kendall_tau'])}, "
                  f"Spearman ρ {_correlation(pair['spearman_rho'])}")
        print(f"report: {run.path / 'rank' / 'rank.md'}\nrun folder: {run.path}")
        return 0
    if command == "adapt":
        from ltnas.stages.imbnas import run_imbnas

        results = run_imbnas(config, run)
    elif command == "train":
        results = pipeline.train_only(config, run)
    else:  # run, quickstart
        results = pipeline.run_all(config, run)
    if distributed.is_main():
        print_summary(results, run.path)
    return 0
