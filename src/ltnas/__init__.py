"""ltnas: neural architecture search for long-tailed image data.

    import ltnas
    results = ltnas.run("quickstart", out="runs/mine", overrides=["search.epochs=5"], seed=0, device="cpu")

The pieces are importable on their own: `ltnas.data` (long-tailed datasets, batches on the
device), `ltnas.space` (supernet, genotypes, discrete networks), `ltnas.search` (strategies),
`ltnas.longtail` (losses, re-weighting), `ltnas.train` (the shared loop), `ltnas.metrics`,
`ltnas.report`.
"""

from __future__ import annotations

from pathlib import Path

from ltnas.config import RunConfig, load_config, resolve_config_path
from ltnas.errors import LtnasError

__version__ = "0.1.0"
__all__ = ["LtnasError", "RunConfig", "load_config", "load_model", "run", "__version__"]


def run(config: RunConfig | str | Path | None = None, out: str | Path | None = None,
        overrides: list[str] | None = None, *, seed: int | None = None, device: str | None = None,
        progress: bool | None = None, log: str | None = None) -> dict:
    """Search → retrain → evaluate → report in a new run folder; returns the evaluation (eval.json).

    `config` is a RunConfig, a YAML path, the name of a shipped config (`"quickstart"`, see
    `ltnas configs`; `"configs/quickstart.yaml"` also finds the shipped one outside a checkout), or
    None for the defaults; `overrides` are `key=value`. `seed`, `device` and `progress` replace the
    config's; `log="tensorboard"` also logs to RUN/tensorboard (see `ltnas.watch`). Accuracies in the
    result are fractions in [0, 1], as in eval.json.
    """
    from ltnas import pipeline, watch
    from ltnas.runs import RunFolder

    watch.check_logger(log)
    if not isinstance(config, RunConfig):
        config = load_config(None if config is None else resolve_config_path(config), overrides)
    elif overrides:
        raise LtnasError("overrides apply to a config file; change the RunConfig object directly instead")
    else:
        config = config.model_copy(deep=True)
    for key, value in (("seed", seed), ("device", device), ("progress", progress)):
        if value is not None:
            setattr(config, key, value)
    run_folder = RunFolder.create(out, config)
    with watch.logging_to(run_folder.path, log):
        return pipeline.run_all(config, run_folder)


def load_model(run_dir: str | Path, device: str = "cpu"):
    """(model in eval mode, preprocessing, class names) of a run's trained network; see ltnas.model_io."""
    from ltnas.model_io import load_model as load

    return load(run_dir, device)
