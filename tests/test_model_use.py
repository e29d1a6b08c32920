"""Using a trained run: the self-contained model file, ltnas.load_model, `ltnas predict`, `ltnas export`,
and the README's "Use the trained model" snippets."""

from __future__ import annotations

import copy
import csv
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ltnas
from ltnas.cli import main
from ltnas.config import validate_config
from ltnas.data.folder import _read_set, fit_image
from ltnas.errors import LtnasError
from ltnas.model_io import MODEL_FORMAT, Preprocess, load_model
from ltnas.runs import RunFolder

from conftest import TINY_RUN

README = Path(__file__).resolve().parents[1] / "README.md"
CLASSES = {"ant": 9, "bee": 6, "cat": 4}  # alphabetical order is not size order on purpose


def write_image_folder(root: Path, counts: dict[str, int] = CLASSES, mode: str = "RGB") -> Path:
    """Per class a noisy colour, each image a different non-square size."""
    rng = np.random.default_rng(0)
    for c, (name, n) in enumerate(counts.items()):
        colour = np.array([[220, 40, 40], [40, 200, 40], [40, 40, 220]][c % 3])
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            height, width = 9 + i % 4, 12 + 2 * (i % 3)
            pixels = (colour + rng.normal(0, 25, (height, width, 3))).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).convert(mode).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> tuple[Path, Path]:
    """A retrained DARTS_V2 (tiny) on an image folder: (run folder, image folder)."""
    base = tmp_path_factory.mktemp("model-use")
    images = write_image_folder(base / "images")
    raw = copy.deepcopy(TINY_RUN)
    raw["data"] = {"source": "folder", "root": str(images), "image_size": 8,
                   "augment": {"crop_padding": 1, "flip": True, "cutout": 0}}
    raw["train"].update(genotype="DARTS_V2", epochs=1)
    ltnas.run(validate_config(raw), out=base / "run")
    return base / "run", images


def _copy_run(run: Path, where: Path) -> Path:
    shutil.copytree(run, where)
    return where


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and err.startswith("ltnas: error: ")
    return err


# ------------------------------------------------------------------------------ the model file


def test_model_file_carries_what_prediction_needs(folder_run):
    run, _ = folder_run
    saved = torch.load(run / "train" / "model.pt", weights_only=True)
    assert saved["format"] == MODEL_FORMAT and saved["ltnas_version"] == ltnas.__version__
    assert saved["classes"] == list(CLASSES)
    assert saved["network"]["name"] == "genotype"
    assert {"genotype", "C", "layers", "auxiliary", "num_classes", "in_channels", "image_size"} <= set(
        saved["network"]["kwargs"])
    assert saved["preprocess"]["size"] == 8 and saved["preprocess"]["resize"] == "shorter_side_center_crop"
    data = RunFolder(run).read_json("data.json")
    assert saved["preprocess"]["mean"] == data["mean"] and saved["preprocess"]["std"] == data["std"]


def test_moved_run_and_model_file_alone_still_predict(folder_run, tmp_path):
    run, images = folder_run
    files = sorted(images.rglob("*.png"))
    model, preprocess, classes = ltnas.load_model(run)
    assert not model.training and classes == list(CLASSES)
    expected = model(preprocess(files))
    moved = _copy_run(run, tmp_path / "elsewhere" / "moved")
    (moved / "config.yaml").unlink()
    (moved / "data.json").unlink()
    again = ltnas.load_model(moved)
    assert torch.equal(again.model(again.preprocess(files)), expected)
    alone = ltnas.load_model(moved / "train" / "model.pt")  # the file by itself
    assert torch.equal(alone.model(alone.preprocess(files)), expected)


def test_preprocessing_is_the_training_pipeline(folder_run):
    """load_model's preprocessing gives exactly the normalised pixels a training batch holds."""
    run, images = folder_run
    _, preprocess, _ = ltnas.load_model(run)
    files = sorted(images.rglob("*.png"))
    trained = _read_set(files, [0] * len(files), 8, None, images).images  # what training decodes
    assert torch.equal(torch.from_numpy(np.stack([preprocess.pixels(f) for f in files])), trained)
    data = RunFolder(run).read_json("data.json")
    mean = torch.tensor(data["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(data["std"]).view(1, -1, 1, 1)
    assert torch.allclose(preprocess(files), (trained.float() / 255 - mean) / std)
    # PIL images and uint8 arrays go through the same rule as paths
    with Image.open(files[0]) as image:
        assert torch.equal(preprocess(image), preprocess(files[0]))
        assert torch.equal(preprocess(np.asarray(image)), preprocess(files[0]))


def test_fit_image_keeps_the_aspect_ratio():
    """30×10 image, black outside a white 10×10 centre: the rule keeps the centre; a stretch would not."""
    pixels = np.zeros((10, 30), dtype=np.uint8)
    pixels[:, 10:20] = 255
    image = Image.fromarray(pixels)
    assert (np.asarray(fit_image(image, 10)) == 255).all()
    stretched = np.asarray(fit_image(image, 10, "stretch"))
    assert stretched[:, 0].max() < 128 and stretched[:, 5].min() == 255  # the black sides squeezed in
    wide = np.asarray(fit_image(Image.fromarray(np.full((4, 9), 7, np.uint8)), 6))  # upscaled, then cropped
    assert wide.shape == (6, 6) and (wide == 7).all()


def test_legacy_model_file_loads_from_config_and_data(folder_run, tmp_path):
    """A model.pt written before the self-contained format ({genotype, model}) loads via config.yaml and
    data.json; folder runs of that time stretched their images, and so does their preprocessing."""
    run, images = folder_run
    legacy = _copy_run(run, tmp_path / "legacy")
    saved = torch.load(legacy / "train" / "model.pt", weights_only=True)
    torch.save({"genotype": saved["genotype"], "model": saved["model"]}, legacy / "train" / "model.pt")
    new, old = ltnas.load_model(run), ltnas.load_model(legacy)
    assert old.classes == new.classes and old.preprocess.resize == "stretch"
    assert old.preprocess.mean == new.preprocess.mean and old.preprocess.size == new.preprocess.size
    batch = new.preprocess(sorted(images.rglob("*.png")))
    assert torch.equal(old.model(batch), new.model(batch))
    (legacy / "data.json").unlink()
    with pytest.raises(LtnasError, match="older model file.*config.yaml and data.json"):
        ltnas.load_model(legacy)


def test_load_model_errors(folder_run, tmp_path):
    run, _ = folder_run
    with pytest.raises(LtnasError, match="not found"):
        load_model(tmp_path / "missing")
    with pytest.raises(LtnasError, match="no trained model"):
        load_model(tmp_path)
    broken = _copy_run(run, tmp_path / "broken")
    (broken / "train" / "model.pt").write_bytes(b"garbage")
    with pytest.raises(LtnasError, match="cannot read model file"):
        load_model(broken)
    with pytest.raises(LtnasError, match="uint8"):
        Preprocess(8, 3, (0.5,) * 3, (0.2,) * 3)(np.zeros((4, 4), dtype=np.float32))


# ------------------------------------------------------------------------------------ predict


def test_predict_prints_class_probability_and_top_k(folder_run, capsys):
    run, images = folder_run
    assert main(["predict", str(run), str(images / "bee"), str(images / "ant" / "0.png"), "--top-k", "2",
                 "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == CLASSES["bee"] + 1
    model, preprocess, classes = ltnas.load_model(run)
    probabilities = model(preprocess(images / "ant" / "0.png")).softmax(1)[0].detach()
    best = int(probabilities.argmax())
    path, name, probability, top = lines[-1].split("\t")
    assert path == str(images / "ant" / "0.png") and name == classes[best]
    assert float(probability) == pytest.approx(float(probabilities[best]), abs=1e-4)
    assert top.startswith("(top-2: " + classes[best])


def test_predict_writes_csv(folder_run, tmp_path):
    run, images = folder_run
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run), str(images), "--top-k", "3", "--out", str(out), "--device", "cpu"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == sum(CLASSES.values())
    assert list(rows[0]) == ["image", "class", "probability", "class_1", "probability_1", "class_2",
                             "probability_2", "class_3", "probability_3"]
    for row in rows:
        assert row["class"] == row["class_1"] and row["class"] in CLASSES
        assert sum(float(row[f"probability_{i}"]) for i in (1, 2, 3)) == pytest.approx(1, abs=1e-5)


def test_predict_bad_inputs_are_one_line(folder_run, tmp_path, capsys):
    run, images = folder_run
    (tmp_path / "notes.txt").write_text("not an image")
    assert "cannot read" in one_line_error(capsys, ["predict", str(run), str(tmp_path / "notes.txt")])
    assert "not found" in one_line_error(capsys, ["predict", str(run), str(tmp_path / "nope.png")])
    (tmp_path / "empty").mkdir()
    assert "holds no images" in one_line_error(capsys, ["predict", str(run), str(tmp_path / "empty")])
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("name: x\n")
    assert "no trained model" in one_line_error(capsys, ["predict", str(unfinished), str(images)])
    assert "--top-k" in one_line_error(capsys, ["predict", str(run), str(images), "--top-k", "0"])
    assert "--out" in one_line_error(capsys, ["predict", str(run), str(images), "--out",
                                              str(tmp_path / "no" / "such" / "p.csv")])


# ------------------------------------------------------------------------------------- export


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_pytorch(folder_run, tmp_path, capsys, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnx")
        onnxruntime = pytest.importorskip("onnxruntime")
    run, images = folder_run
    out = tmp_path / f"model.{fmt}"
    assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    diff = float(re.search(r"difference\| to PyTorch (\S+) on (\d+) images", printed).group(1))
    assert diff <= 1e-3
    model, preprocess, _ = ltnas.load_model(run)
    batch = preprocess(sorted(images.rglob("*.png")))  # another batch size than the export's
    with torch.no_grad():
        expected = model(batch).numpy()
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {"images": batch.numpy()})[0]
    else:
        got = torch.jit.load(str(out))(batch).detach().numpy()
    assert np.abs(got - expected).max() <= 1e-4
    # default place, checked on the given images
    assert main(["export", str(run), "--format", fmt, "--images", str(images / "cat")]) == 0
    assert f"on {CLASSES['cat']} images" in capsys.readouterr().out
    assert (run / "export").is_dir()


def test_export_refuses_a_mismatch_and_writes_nothing(folder_run, tmp_path, monkeypatch, capsys):
    from ltnas import export

    real = export._torchscript_bytes

    def off_by_a_bit(model, example, batch):
        data, logits = real(model, example, batch)
        return data, logits + 0.01

    monkeypatch.setattr(export, "_torchscript_bytes", off_by_a_bit)
    out = tmp_path / "model.pt"
    err = one_line_error(capsys, ["export", str(folder_run[0]), "--format", "torchscript", "--out", str(out)])
    assert "differ from PyTorch's by up to 0.01" in err and not out.exists()


def test_export_without_onnx_names_the_extra(folder_run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    err = one_line_error(capsys, ["export", str(folder_run[0]), "--format", "onnx"])
    assert 'pip install "ltnas[export]"' in err
    assert "invalid choice" in one_line_error(capsys, ["export", str(folder_run[0]), "--format", "tflite"])


# ------------------------------------------------------------------------------------- README


def readme_section_snippets(title: str) -> list[str]:
    text = README.read_text()
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_use_the_trained_model_snippets_run(folder_run, tmp_path, monkeypatch):
    """Every Python snippet of README's "Use the trained model" runs as printed, in a folder holding
    runs/mine (a finished run) and photos/ (images of its classes)."""
    run, images = folder_run
    _copy_run(run, tmp_path / "runs" / "mine")
    shutil.copytree(images / "bee", tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    snippets = readme_section_snippets("Use the trained model")
    assert snippets
    namespace: dict = {}
    for snippet in snippets:
        exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102
