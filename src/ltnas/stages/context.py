"""What every stage of a run shares: the run folder, the data, the device, the seeds, the timing,
the one writer of eval.json and the one way batches are built.

Seeds. One `seed` drives a run; each stage draws from `seed + SEEDS[stage] + stream`, so the stages'
random streams stay apart and each stage starts from the same state whether the stages before it
ran in this process or in an earlier, killed one. Stream 0 seeds the global generators
(`seed_everything`); streams 1, 2, ... are the stage's batch generators (STREAMS names the shared
search stage's). Changing a number here changes every run's results: they are part of the format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ltnas import distributed, metrics
from ltnas.memory import peak_memory, reset_peak_memory
from ltnas.config import RunConfig
from ltnas.data import DeviceBatches, ImageSet, LongTailDataset, batches_of, build_dataset
from ltnas.runs import RunFolder, resolve_device
from ltnas.train.checkpoint import seed_everything
from ltnas.train.loop import JsonlLog, ProgressReporter, fit

# Offsets of each stage's seeds from the run's seed.
SEEDS: dict[str, int] = {"search": 0, "train": 1000, "supernet": 2000, "adapt": 3000, "evolve": 4000, "rank": 5000}
# Streams of the shared search stage: its training part, its validation part, Barlow Twins' views.
STREAMS: dict[str, int] = {"train": 1, "val": 2, "views": 3}


def stage_seed(seed: int, stage: str, stream: int = 0) -> int:
    """The seed of `stream` of `stage` in a run seeded with `seed`."""
    return seed + SEEDS[stage] + stream


def stage_seconds(folder: Path) -> float | None:
    """Wall time of a stage: the sum of its epochs' `seconds` in folder/metrics.jsonl (None: not run)."""
    rows = JsonlLog(Path(folder) / "metrics.jsonl").rows()
    return metrics.stage_seconds(rows) if rows else None


@dataclass
class Context:
    config: RunConfig
    run: RunFolder
    dataset: LongTailDataset
    device: torch.device
    progress: ProgressReporter

    @classmethod
    def prepare(cls, config: RunConfig, run: RunFolder) -> "Context":
        device = distributed.init_from_environment(resolve_device(config.device))
        dataset = build_dataset(config.data, seed=config.seed)
        if run.read_json("data.json") is None and distributed.is_main():
            run.write_json("data.json", dataset.summary())
        reset_peak_memory(device)  # eval.json's peak_memory counts from here
        return cls(config, run, dataset, device, ProgressReporter(config.progress and distributed.is_main()))

    def seed(self, stage: str, stream: int = 0) -> int:
        return stage_seed(self.config.seed, stage, stream)

    def seed_everything(self, stage: str) -> None:
        """Seed Python, NumPy and torch for `stage` (its stream 0)."""
        seed_everything(self.seed(stage))

    def generator(self, stage: str, stream: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.seed(stage, stream))

    def batches(self, images: ImageSet, batch_size: int, stage: str, stream: int, **options) -> DeviceBatches:
        """Training batches of `images` drawn with `stage`'s `stream`; `options` as DeviceBatches'
        (sampler, augment, shard)."""
        return batches_of(images, self.dataset, batch_size, self.device, self.seed(stage, stream), **options)

    def eval_batches(self, images: ImageSet) -> DeviceBatches:
        """`images` in order, every one once, at the evaluation batch size."""
        return batches_of(images, self.dataset, self.config.eval.batch_size, self.device)

    def shot_thresholds(self) -> tuple[int, int]:
        """(many, few) shot thresholds of this run's data: `eval.many_shot` / `eval.few_shot`, or by
        the training set's size; the same for per-epoch validation metrics and the final evaluation."""
        return metrics.shot_thresholds(self.dataset.train_counts, self.config.eval.many_shot, self.config.eval.few_shot)

    def fit(self, task, epochs: int, folder: Path) -> list[dict]:
        """Run (or resume) an epoch task with this run's progress display (ltnas.train.loop.fit)."""
        return fit(task, epochs, folder, self.progress)

    def stage_seconds(self, stage: str) -> float | None:
        return stage_seconds(self.run.path / stage)

    def write_eval(self, results: dict) -> dict:
        """RUN/eval.json — the only writer of it. Every method's results share its schema: genotype,
        params, device, balanced_test / longtail_test metrics, seconds (search, train, eval), and beside
        the wall time the run's peak memory (ltnas/memory.py)."""
        results["peak_memory"] = peak_memory(self.device)
        self.run.write_json("eval.json", results)
        return results
