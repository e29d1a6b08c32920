"""ltnas: neural architecture search for long-tailed image data.

    import ltnas
    results = ltnas.run("configs/quickstart.yaml", out="runs/mine", overrides=["search.epochs=5"])

The pieces are importable on their own: `ltnas.data` (long-tailed datasets, batches on the
device), `ltnas.space` (supernet, genotypes, discrete networks), `ltnas.search` (strategies),
`ltnas.longtail` (losses, re-weighting), `ltnas.train` (the shared loop), `ltnas.metrics`,
`ltnas.report`.
"""

from __future__ import annotations

from pathlib import Path

from ltnas.config import RunConfig, load_config
from ltnas.errors import LtnasError

__version__ = "0.1.0"
__all__ = ["LtnasError", "RunConfig", "load_config", "load_model", "run", "__version__"]


def run(config: RunConfig | str | Path | None = None, out: str | Path | None = None,
        overrides: list[str] | None = None) -> dict:
    """Search → retrain → evaluate → report in a new run folder; returns the evaluation (eval.json).

    `config` is a RunConfig, a YAML path, or None for the defaults; `overrides` are `key=value`.
    """
    from ltnas import pipeline
    from ltnas.runs import RunFolder

    if not isinstance(config, RunConfig):
        config = load_config(config, overrides)
    elif overrides:
        raise LtnasError("overrides apply to a config file; change the RunConfig object directly instead")
    return pipeline.run_all(config, RunFolder.create(out, config))


def load_model(run_dir: str | Path, device: str = "cpu"):
    """(model in eval mode, preprocessing, class names) of a run's trained network; see ltnas.model_io."""
    from ltnas.model_io import load_model as load

    return load(run_dir, device)
