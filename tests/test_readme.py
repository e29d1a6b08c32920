"""Every Python snippet of README.md runs as printed, from a folder that is not a checkout.

The snippets are executed unchanged, each in a fresh namespace, with the working directory set to
an empty temporary folder (so `configs/...` paths must work without a checkout). Only the scale is
shrunk: `load_config` is wrapped so that every config the snippets load gets one-epoch, tiny
networks appended to its overrides — the same code path, seconds instead of minutes. The YAML
comparison-file snippet is read as a comparison file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import ltnas
import ltnas.compare
from ltnas.cli import main, resolve_config_path
from ltnas.compare import read_comparison_file

README = Path(__file__).resolve().parents[1] / "README.md"
SHRINK = ["search.epochs=1", "train.epochs=1", "search.cell.layers=2", "search.cell.init_channels=4",
          "train.cell.layers=2", "train.cell.init_channels=4", "train.auxiliary=false", "search.batch_size=64",
          "train.batch_size=64", "search.ssl.projector=[16,16]", "search.threshold=0.01", "device=cpu", "progress=false"]


def snippets(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def section_snippets(title: str) -> list[str]:
    section = README.read_text(encoding="utf-8").split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


# "Use the trained model" needs a finished run and images of its classes: tests/test_model_use.py runs
# those snippets, as printed, in a folder that holds both.
PYTHON = [code for code in snippets("python") if code not in section_snippets("Use the trained model")]


@pytest.fixture
def outside_checkout(tmp_path, monkeypatch):
    """An empty working directory, and every config loaded by a snippet shrunk to seconds."""
    monkeypatch.chdir(tmp_path)
    original = ltnas.config.load_config

    def shrunk(path=None, overrides=None):
        return original(path, [*(overrides or []), *SHRINK])

    for module in (ltnas, ltnas.compare):
        monkeypatch.setattr(module, "load_config", shrunk)
    return tmp_path


def test_readme_has_python_snippets():
    assert len(PYTHON) >= 4


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_readme_python_snippet_runs(index, outside_checkout):
    code = PYTHON[index]
    if "RUN/supernet/supernet.pt" in code:  # the snippet reads a supernet that `ltnas supernet train` wrote
        assert main(["supernet", "train", "imbnas_smoke", "--out", "RUN", "--device", "cpu", "--no-progress",
                     "--set", "supernet.epochs=1", "--set", "supernet.sgd.lr_milestones=[1]"]) == 0
    exec(compile(code, f"README.md python snippet {index}", "exec"), {"__name__": "readme"})


def test_readme_comparison_file_snippet_is_a_valid_comparison(tmp_path):
    files = [text for text in snippets("yaml") if text.lstrip().startswith("compare:")]
    assert files
    for text in files:
        path = tmp_path / "comparison.yaml"
        path.write_text(text)
        spec = read_comparison_file(path, resolve_config_path)
        assert spec.variants and Path(spec.base).is_file()
        assert yaml.safe_load(text)["compare"]["variants"]


def test_readme_config_snippets_are_valid_configs():
    """Every YAML snippet of the README that is not a comparison file is (part of) a run config."""
    from ltnas.config import validate_config

    configs = [yaml.safe_load(text) for text in snippets("yaml") if not text.lstrip().startswith("compare:")]
    assert configs
    for raw in configs:
        validate_config(raw)
