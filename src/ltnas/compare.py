"""Comparisons: several variants of one config (methods, long-tail plug-ins, ...) × seeds, one table.

A comparison is either built from a run config and a list of methods
(`ltnas compare CONFIG --methods darts,fairdarts,ssf,cnn,resnet32,darts_v2`: search methods, baseline
networks trained with the same recipe, published genotypes retrained without search) or read from a
*comparison file*:

    compare:
      title: "SSF-NAS (Yan, 2024): CIFAR10-LT"
      base: ssf_cifar10_lt            # shipped config name, or a path relative to this file
      seeds: [0]
      variants:                       # name → overrides of the base (as with --set)
        DARTS: [search.method=darts]
        SSF-NAS: [search.method=ssf]
      published:                      # optional: the paper's numbers, in percent, beside ours
        source: "SSF-NAS (Yan, 2024), abstract"
        metric: balanced_test.overall # dotted path into eval.json
        values: {DARTS: 78.26, SSF-NAS: 82.64}

Every variant × seed is an ordinary run folder, DIR/<variant>/seed_<s>/, all created (and so all
validated) before the first one starts. Resuming a comparison finishes the unfinished runs and
skips the finished ones, so a comparison survives a kill like a single run does.
"""

from __future__ import annotations

import _thread
import json
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from ltnas import lock
from ltnas.atomic import atomic_write_text
from ltnas.config import PublishedResults, RunConfig, Section, load_config, resolve_config_path
from ltnas.errors import LtnasError
from ltnas.methods import METHODS, NETWORKS
from ltnas.runs import RunFolder, Terminated, default_run_path, saved_yaml, stopping_on_sigterm

SPEC_FILE = "comparison.yaml"
FAILED_FILE = "failed.json"  # in a member's run folder: why its last attempt failed
# What `ltnas compare --resume DIR --set KEY=VALUE` may change: more epochs for the members that
# have not finished (their checkpoints continue; a finished member keeps what it ran).
EXTENDABLE = ("search.epochs", "train.epochs")
# Seconds between the parallel loop's `on_wait` calls while no member starts or ends: the members' progress bars are
# off (they would interleave), so without it a terminal shows nothing for minutes.
STATUS_EVERY = 30.0


class ComparisonSpec(Section):
    title: str | None = None
    base: str = Field(description="run config: a shipped name or a path (relative to the comparison file)")
    seeds: list[int] = Field(default_factory=lambda: [0])
    variants: dict[str, list[str]] = Field(description="variant name → overrides of the base config")
    published: PublishedResults | None = None

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, value: list[int]) -> list[int]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"seeds must be a non-empty list without repeats, got {value}")
        return value

    @field_validator("variants")
    @classmethod
    def _some_variants(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value:
            raise ValueError("a comparison needs at least one variant")
        slugs = [slug(name) for name in value]
        if len(set(slugs)) != len(slugs):
            raise ValueError(f"variant names {list(value)} collide as folder names; make them differ in letters")
        return value


@dataclass
class Member:
    """One variant × seed: its run folder and config."""

    variant: str
    seed: int
    run: RunFolder
    config: RunConfig

    @property
    def finished(self) -> bool:
        return (self.run.path / "eval.json").is_file()

    @property
    def failure(self) -> str | None:
        """Why this member's last attempt failed (RUN/failed.json), or None."""
        path = self.run.path / FAILED_FILE
        if self.finished or not path.is_file():
            return None
        return str(json.loads(path.read_text()).get("error") or "failed")

    def progress(self) -> str:
        """Where a running member stands, read from its run folder: "<stage> epoch k/N" for the stage whose
        metrics.jsonl was written last (k: its whole lines, one per finished epoch; N: that config section's
        `epochs`, where it has one), or "starting". Reads bytes only: the parent of the workers never imports torch."""
        try:
            logs = list(self.run.path.glob("*/metrics.jsonl"))
            if not logs:
                return "starting"
            latest = max(logs, key=lambda path: path.stat().st_mtime_ns)
            epochs_done = latest.read_bytes().count(b"\n")  # a row being appended has no newline yet
        except OSError:  # a file the worker replaces this instant
            return "running"
        stage = latest.parent.name
        epochs = getattr(getattr(self.config, stage, None), "epochs", None)
        return f"{stage} epoch {epochs_done}/{epochs}" if isinstance(epochs, int) else f"{stage} epoch {epochs_done}"


def slug(name: str) -> str:
    """A variant name as a folder name: 'DARTS + re-sampling' → 'darts-re-sampling'."""
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-") or "variant"


def is_comparison_file(path: Path) -> bool:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):  # load_config then says what is wrong
        return False
    return isinstance(raw, dict) and "compare" in raw


def read_comparison_file(path: Path, resolve_config) -> ComparisonSpec:
    """Parse a comparison file; `resolve_config(name)` turns a shipped config name into its path."""
    raw = yaml.safe_load(path.read_text())["compare"]
    spec = _validated(raw, str(path))
    base = Path(spec.base)
    if not base.is_absolute() and (path.parent / base).is_file():
        base = path.parent / base
    return spec.model_copy(update={"base": str(base if base.is_file() else resolve_config(spec.base))})


def method_variant(method: str) -> tuple[str, list[str]]:
    """One `--methods` entry as (variant name, overrides): a search method (`search.method`), a network of
    the network registry (`train.network`: a baseline), or a published genotype retrained without search
    (`train.genotype`, any letter case: darts_v2 → DARTS_V2). Variants are named as the method table names
    them (ltnas.methods)."""
    if method in METHODS:
        return METHODS[method].title, [f"search.method={method}"]
    if method in NETWORKS and not NETWORKS[method].needs_genotype:
        return NETWORKS[method].title, [f"train.network={method}"]
    from ltnas.space import published_genotypes

    genotypes = {name.lower(): name for name in published_genotypes()}
    if method.lower() in genotypes:
        name = genotypes[method.lower()]
        return name, [f"train.genotype={name}"]
    baselines = [name for name, entry in NETWORKS.items() if not entry.needs_genotype]
    raise LtnasError(f"unknown method '{method}' in --methods; choose search methods ({', '.join(METHODS)}), "
                     f"baseline networks ({', '.join(baselines)}) or published genotypes "
                     f"({', '.join(genotypes.values())})")


def spec_from_methods(config_path: Path, methods: list[str], seeds: list[int]) -> ComparisonSpec:
    """`ltnas compare CONFIG --methods a,b`: one variant per search method, baseline network or published
    genotype (`method_variant`); the paper's numbers come from the config's own `published` section,
    keyed by method. `config_path` may name a shipped config."""
    config_path = resolve_config_path(config_path)
    config = load_config(config_path)
    variants = {method: method_variant(method) for method in methods}
    names = {method: name for method, (name, _) in variants.items()}
    published = config.published
    if published is not None:
        published = published.for_variants(names)
    raw = {"title": config.name, "base": str(config_path), "seeds": seeds,
           "variants": dict(variants.values()),
           "published": published.model_dump() if published and (published.values or published.metrics) else None}
    return _validated(raw, "--methods")


def _validated(raw: Any, source: str) -> ComparisonSpec:
    try:
        return ComparisonSpec.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise LtnasError(f"invalid comparison in {source} at '{where}': {message}") from None


class Comparison:
    """A comparison folder: DIR/comparison.yaml (the spec as run) and one run folder per member."""

    def __init__(self, path: Path, spec: ComparisonSpec, members: list[Member]):
        self.path = path
        self.spec = spec
        self.members = members
        self.workers: dict[int, dict[str, int]] = {}  # member index → worker PID and torch threads (parallel runs)

    @classmethod
    def create(cls, spec: ComparisonSpec, out: str | Path | None, overrides: list[str] | None = None,
               seeds: list[int] | None = None) -> "Comparison":
        """Validate every member's config, then create the folder and every member's run folder.

        `overrides` apply to every variant (before the variant's own); `seeds` replace the spec's.
        """
        if seeds:
            spec = spec.model_copy(update={"seeds": seeds})
        configs = {
            (variant, seed): load_config(spec.base, [*(overrides or []), *changes, f"seed={seed}"])
            for variant, changes in spec.variants.items() for seed in spec.seeds
        }
        path = Path(out) if out else default_run_path(f"compare-{slug(spec.title or 'comparison')}")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise LtnasError(f"comparison folder {path} already exists; continue it with --resume {path}, "
                             "or choose another --out")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LtnasError(f"cannot write to output folder {path} ({exc.strerror}); choose a writable --out") from None
        lock.claim(path, "comparison folder")  # held, like each member's folder, while this process runs them
        if any(p.name != lock.LOCK_NAME for p in path.iterdir()):
            lock.release(path)
            raise LtnasError(f"comparison folder {path} already exists; continue it with --resume {path}, "
                             "or choose another --out")
        saved = {"compare": {**spec.model_dump(mode="json"), "overrides": list(overrides or [])}}
        atomic_write_text(yaml.safe_dump(saved, sort_keys=False), path / SPEC_FILE)
        members = [
            Member(variant, seed, RunFolder.create(path / slug(variant) / f"seed_{seed}", config), config)
            for (variant, seed), config in configs.items()
        ]
        return cls(path, spec, members)

    @classmethod
    def open(cls, path: str | Path, device: str | None = None, progress: bool | None = None) -> "Comparison":
        path = Path(path)
        if not (path / SPEC_FILE).is_file():
            raise LtnasError(f"{path} holds no comparison ({SPEC_FILE} missing); start one with `ltnas compare`")
        lock.claim(path, "comparison folder")
        raw = yaml.safe_load((path / SPEC_FILE).read_text())["compare"]
        raw.pop("overrides", None)
        spec = _validated(raw, str(path / SPEC_FILE))
        members = []
        for variant in spec.variants:
            for seed in spec.seeds:
                run = RunFolder.open(path / slug(variant) / f"seed_{seed}").claim()
                config = run.config()
                if device:
                    config.device = device
                if progress is not None:
                    config.progress = progress
                members.append(Member(variant, seed, run, config))
        return cls(path, spec, members)

    def extend(self, overrides: list[str]) -> list[str]:
        """Apply `--set` on resume: only more epochs (EXTENDABLE keys, never fewer), only to members
        that have not finished; their saved configs are rewritten so the folders say what ran.
        Returns the variants × seeds extended."""
        from ltnas.config import apply_override, validate_config

        if not overrides:
            return []
        for item in overrides:
            key = item.partition("=")[0].strip()
            if key not in EXTENDABLE:
                raise LtnasError(f"--set {key} would change what the comparison already ran; with --resume only "
                                 f"{' and '.join(EXTENDABLE)} may grow (start a new comparison for other changes)")
        extended = []
        for member in self.members:
            if member.finished:
                continue
            saved = member.run.config()  # as saved: without this session's --device / --no-progress
            raw = saved.model_dump(mode="json")
            for item in overrides:
                apply_override(raw, item)
            config = validate_config(raw, source="--set")
            for key in (item.partition("=")[0].strip() for item in overrides):
                section, field = key.split(".")
                old, new = getattr(getattr(member.config, section), field), getattr(getattr(config, section), field)
                if new < old:
                    raise LtnasError(f"--set {key}={new} is fewer than the {old} {member.variant} (seed "
                                     f"{member.seed}) was started with; with --resume epochs may only grow")
            extended.append((member, config))
        for member, config in extended:  # after every check, so a refused --set changes nothing
            atomic_write_text(saved_yaml(config), member.run.config_file)
            member.config = config.model_copy(update={"device": member.config.device,
                                                      "progress": member.config.progress})
        extended = [member for member, _ in extended]
        return [f"{member.variant} seed {member.seed}" for member in extended]

    def run(self, on_member=None, log: str | None = None, jobs: int = 1, threads: int | None = None,
            on_end=None, on_wait=None) -> dict:
        """Run every unfinished member (a killed one resumes; a failed one is tried again), then write
        the comparison report. A member that fails is recorded in its RUN/failed.json with the reason
        and the others still run; the result lists it under "failed".

        `jobs` > 1 runs that many members at a time, each in its own process with `threads` torch
        intra-op threads (ltnas.threads says why); `jobs` = 1 runs them one after another in this
        process. `on_member(index, member)` is called as a member starts (or is found finished),
        `on_end(index, member, seconds)` as one that ran ends, and with `jobs` > 1 `on_wait([(index, member), ...])`
        with the running members every STATUS_EVERY seconds in which none ends."""
        from ltnas.report.comparison import write_comparison

        if jobs > 1 and sum(not member.finished for member in self.members) > 1:
            self._run_parallel(on_member, on_end, log, jobs, threads, on_wait)
        else:
            for index, member in enumerate(self.members):
                if on_member is not None:
                    on_member(index, member)
                if member.finished:
                    continue
                began = time.perf_counter()
                _attempt(member.config, member.run, log)
                if on_end is not None:
                    on_end(index, member, time.perf_counter() - began)
        failed = {(m.variant, m.seed): m.failure for m in self.members if not m.finished}
        return write_comparison(self.path, self.spec, [(m.variant, m.seed, m.run.path) for m in self.members
                                                       if m.finished], failed=failed)

    def _run_parallel(self, on_member, on_end, log: str | None, jobs: int, threads: int | None,
                      on_wait=None) -> None:
        """Members `jobs` at a time in worker processes (`_Workers`), each worker taking one member after
        another, the longest members first (`start_order`). This process lets go of a member's lock as it
        hands the member over and keeps the comparison folder's; the worker holds the member's folder while
        it works. `self.workers[index]` records the PID and torch threads of the worker that ran each member.
        A worker that dies fails its member; a new worker takes the members still waiting."""
        waiting = [(index, self.members[index]) for index in start_order([m.config for m in self.members])]
        began: dict[int, float] = {}
        workers = _Workers(log, threads)
        try:
            while waiting or workers.busy:
                while waiting and len(workers.busy) < jobs:
                    index, member = waiting.pop(0)
                    if on_member is not None:
                        on_member(index, member)
                    if member.finished:
                        continue
                    member.config = member.config.model_copy(update={"progress": False})  # bars would interleave
                    lock.release(member.run.path)
                    workers.hand(index, member.run.path, member.config)
                    began[index] = time.perf_counter()
                if not waiting and len(workers.busy) < jobs:
                    _prepare_report()  # a core idles from here on
                events = workers.events(STATUS_EVERY if on_wait is not None else None) if workers.busy else []
                if not events and workers.busy and on_wait is not None:  # STATUS_EVERY s without a member ending
                    on_wait([(index, self.members[index]) for index in workers.running()])
                for event, index, *detail in events:
                    member = self.members[index]
                    if event == "started":
                        self.workers[index] = {"pid": detail[0], "threads": detail[1]}
                        continue
                    if event == "died" and not member.finished and member.failure is None:
                        _record_failure(member.run.path, f"its worker process ended with exit code {detail[0]}",
                                        "WorkerDied")
                    if on_end is not None:
                        on_end(index, member, time.perf_counter() - began[index])
        except KeyboardInterrupt as exc:  # Ctrl-C reached the workers too; SIGTERM (Terminated) only this process
            workers.close(busy_timeout=20, stop_busy=isinstance(exc, Terminated))
            raise
        finally:
            workers.close()


class _Workers:
    """Spawned worker processes (`_worker_process`) that run members one after another: a process's start
    and imports cost ~10 CPU seconds, a small member's run not much more (the quickstart took 4 min 15 s with
    two reused workers against 5 min 03 s with a process per member, benchmarks/RESULTS.md). Each worker has
    a pipe of its own, so every message and every death is tied to the member it was running."""

    def __init__(self, log: str | None, threads: int | None):
        import multiprocessing

        self.context = multiprocessing.get_context("spawn")  # no fork of a process whose OpenMP pool has started
        self.log, self.threads = log, threads
        self.idle: list[tuple[Any, Any]] = []  # (process, connection) of workers waiting for a member
        self.busy: dict[Any, tuple[Any, int]] = {}  # connection → (process, member index)

    def hand(self, index: int, path: Path, config: RunConfig) -> None:
        """Give member `index` to an idle worker, or to a new one."""
        while True:
            if not self.idle:
                self._spawn()
            process, connection = self.idle.pop()
            try:
                connection.send((index, str(path), config))
            except OSError:  # an idle worker that died: another takes the member
                process.join()
                continue
            self.busy[connection] = (process, index)
            return

    def running(self) -> list[int]:
        """The indices of the members the busy workers run."""
        return sorted(index for _, index in self.busy.values())

    def events(self, timeout: float | None = None) -> list[tuple]:
        """Wait until a busy worker says something or dies (at most `timeout` seconds: then no events); return
        ("started", index, pid, threads), ("done", index) and ("died", index, exit code) events (a done or dead
        worker is no longer busy)."""
        from multiprocessing.connection import wait

        ready = wait([*self.busy, *(process.sentinel for process, _ in self.busy.values())], timeout)
        events = []
        for connection in [c for c in self.busy if c in ready]:
            try:
                message = connection.recv()
            except EOFError:  # the worker died: its sentinel says so below
                continue
            process, index = self.busy[connection]
            events.append((message[0], index, *message[1:]))
            if message[0] == "done":
                del self.busy[connection]
                self.idle.append((process, connection))
        for connection, (process, index) in list(self.busy.items()):
            if not process.is_alive():
                process.join()
                del self.busy[connection]
                events.append(("died", index, process.exitcode))
        return events

    def close(self, busy_timeout: float | None = None, stop_busy: bool = False) -> None:
        """Stop the idle workers; with `busy_timeout`, let the busy ones end (Ctrl-C reached them too; with
        `stop_busy` send them SIGTERM first, on which a worker stops its member as on Ctrl-C) for that long,
        then kill them."""
        for process, connection in self.idle:
            try:
                connection.send(None)  # no more members
            except OSError:
                pass
        stopping = [process for process, _ in self.idle]
        if busy_timeout is not None:
            busy = [process for process, _ in self.busy.values()]
            for process in busy if stop_busy else []:
                process.terminate()
            stopping += busy
            self.busy.clear()
        self.idle.clear()
        for process in stopping:
            process.join(timeout=busy_timeout or 20)
            if process.exitcode is None:
                process.kill()
                process.join()

    def _spawn(self) -> None:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_worker_process, args=(theirs, self.log, self.threads, os.getpid()),
                                       daemon=True)
        process.start()
        theirs.close()
        self.idle.append((process, ours))


def _prepare_report() -> None:
    """Import the comparison report's modules (matplotlib among them: ~2 CPU s) while a core idles at the end of a
    parallel comparison, the last members running, rather than after the last member ends."""
    import ltnas.report.comparison  # noqa: F401


def start_order(configs: list[RunConfig]) -> list[int]:
    """The order in which parallel workers take members: the longest first, as in longest-processing-time
    scheduling, so that no worker is left running a long member alone at the end while the others idle.
    Without running them, a member's length is judged by what it runs: a search and a retrain, then the
    retrain of a cell network (a given genotype), then a hand-designed baseline, cheaper per epoch than
    DARTS's cell networks (at the quickstart's size ResNet-32 and the CNN have 4.3M and 0.6M multiply-adds,
    DARTS_V2's network 9.1M); the spec's order within each. On 2 cores the quickstart took 5 min 03 s this
    way against 5 min 18 s in the spec's order (benchmarks/RESULTS.md, "End to end")."""
    def rank(config: RunConfig) -> int:
        if config.train.baseline:
            return 2
        return 1 if config.train.genotype else 0

    return sorted(range(len(configs)), key=lambda index: rank(configs[index]))


def _attempt(config: RunConfig, run: RunFolder, log: str | None) -> None:
    """One try at a member's run; a failure is written to RUN/failed.json instead of raised (Ctrl-C
    and exits are raised)."""
    from ltnas import pipeline, watch

    (run.path / FAILED_FILE).unlink(missing_ok=True)  # a new attempt, not the old error
    try:
        with watch.logging_to(run.path, log):
            pipeline.run_all(config, run)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 — any failure of one member is recorded, the rest run
        reason = str(exc) if isinstance(exc, LtnasError) else f"{exc.__class__.__name__}: {exc}"
        _record_failure(run.path, reason, exc.__class__.__name__)


def _record_failure(path: Path, reason: str, kind: str) -> None:
    atomic_write_text(json.dumps({"error": reason, "type": kind}, indent=1) + "\n", path / FAILED_FILE)


def _worker_process(connection, log: str | None, threads: int | None, parent: int) -> None:
    """A worker process's whole life: set its torch threads, then run the members it is sent — (index,
    run folder, config), None to stop — one after another, holding each member's folder while it works,
    and say ("started", pid, threads) and ("done",) for each. SIGTERM, or the end of the `parent` process,
    stops it as Ctrl-C would."""
    import torch

    from ltnas import threads as thread_policy

    thread_policy.apply(threads)
    threading.Thread(target=_interrupt_when_orphaned, args=(parent,), daemon=True).start()
    try:
        with stopping_on_sigterm():
            while (job := connection.recv()) is not None:
                index, path, config = job
                connection.send(("started", os.getpid(), torch.get_num_threads()))
                try:
                    run = RunFolder.open(path).claim()
                except LtnasError as exc:  # e.g. another process took the folder in the moment it was handed over
                    _record_failure(Path(path), str(exc), exc.__class__.__name__)
                else:
                    _attempt(config, run, log)
                finally:
                    lock.release_all()
                connection.send(("done",))
    except KeyboardInterrupt:  # the parent says how to continue; the last finished epoch is kept
        raise SystemExit(130) from None
    except (EOFError, BrokenPipeError, ConnectionResetError):  # the parent is gone
        pass


def _interrupt_when_orphaned(parent: int, every: float = 0.5) -> None:
    """Interrupt this process's main thread, as SIGTERM does (`runs.Terminated`), once the process `parent` has
    gone: a comparison killed outright (kill -9, the OOM killer) cannot stop its workers, and one left running would
    go on holding its member's folder, which the comparison's resume then finds in use. (SIGTERM, not SIGINT:
    a job started in the background of a script ignores SIGINT, and Python then never raises KeyboardInterrupt.)"""
    while os.getppid() == parent:
        time.sleep(every)
    _thread.interrupt_main(signal.SIGTERM)
