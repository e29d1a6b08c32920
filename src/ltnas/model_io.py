"""The trained model as a file that stands on its own: RUN/train/model.pt, and `load_model` to use it.

model.pt (written atomically) holds everything prediction needs, so a run folder (or the file alone)
moved elsewhere still predicts:

  format          MODEL_FORMAT
  ltnas_version   the version that wrote it
  network         {"name": registry name, "kwargs": {...}}: `build_network` rebuilds the module from it
  model           the state_dict
  classes         class names, in the order of the logits
  preprocess      {"size", "channels", "mean", "std", "resize"}: see `Preprocess`
  genotype        (genotype networks) the genotype's dict, as older files had it

Files written before this format ({"genotype", "model"} only) load through the run's config.yaml
(network size) and data.json (classes, normalisation, input shape).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ltnas.atomic import atomic_save
from ltnas.data.folder import RESIZE_RULE, RESIZE_RULES, fit_image
from ltnas.errors import LtnasError

MODEL_FORMAT = "ltnas-model/2"
MODEL_FILE = Path("train") / "model.pt"

# name → builder(**kwargs) of a network a model file can hold; register others with `register_network`.
NETWORKS: dict[str, Callable[..., nn.Module]] = {}


def register_network(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        NETWORKS[name] = builder
        return builder

    return add


@register_network("genotype")
def _genotype_network(genotype: dict, C: int, num_classes: int, layers: int, auxiliary: bool, in_channels: int,
                      image_size: int, normalised: bool = False, stem: str = "cifar") -> nn.Module:
    from ltnas.space import DiscreteNetwork, Genotype

    return DiscreteNetwork(Genotype.from_dict(genotype), C, num_classes, layers, auxiliary=auxiliary,
                           in_channels=in_channels, image_size=image_size, normalised=normalised, stem=stem)


@register_network("s2")
def _s2_network(**kwargs) -> nn.Module:
    from ltnas.space.mobile import network_from_spec

    return network_from_spec(**kwargs)


@register_network("baseline")
def _baseline_network(network: str, num_classes: int, in_channels: int, normalised: bool = False) -> nn.Module:
    from ltnas.space.baselines import build_baseline

    return build_baseline(network, num_classes, in_channels, normalised)


def genotype_network_spec(genotype, C: int, num_classes: int, layers: int, auxiliary: bool, in_channels: int,
                          image_size: int, normalised: bool = False, stem: str = "cifar") -> dict[str, Any]:
    """The `network` entry of a DiscreteNetwork built from `genotype` (a Genotype); files written before
    the ImageNet stem have no "stem" and load as the CIFAR network they are."""
    return {"name": "genotype", "kwargs": {
        "genotype": genotype.to_dict(), "C": C, "num_classes": num_classes, "layers": layers,
        "auxiliary": auxiliary, "in_channels": in_channels, "image_size": image_size, "normalised": normalised,
        "stem": stem}}


def baseline_network_spec(network: str, num_classes: int, in_channels: int, normalised: bool = False) -> dict[str, Any]:
    """The `network` entry of the baseline network `network` (space/baselines.py)."""
    return {"name": "baseline", "kwargs": {"network": network, "num_classes": num_classes,
                                           "in_channels": in_channels, "normalised": normalised}}


def build_network(spec: dict[str, Any]) -> nn.Module:
    """The module a {"name", "kwargs"} spec describes, freshly initialised."""
    builder = NETWORKS.get(spec.get("name"))
    if builder is None:
        raise LtnasError(f"the model file's network '{spec.get('name')}' is unknown to this ltnas (it knows "
                         f"{', '.join(sorted(NETWORKS))}); upgrade ltnas to the version that wrote it")
    return builder(**spec.get("kwargs", {}))


@dataclass(frozen=True)
class Preprocess:
    """Images → the normalised float batch the network was trained on.

    Each image is converted to `channels` (1: grayscale "L", 3: RGB), made size×size by the resize rule
    training used (`fit_image`: shorter side scaled to `size`, centre square cut), scaled to [0, 1] and
    normalised per channel: x = (pixel / 255 − mean) / std, with the training set's mean and std.
    Accepts PIL images, file paths, uint8 arrays (H×W or H×W×C), or a list of them.
    """

    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: str = RESIZE_RULE

    def __post_init__(self) -> None:
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise LtnasError(f"preprocessing for {self.channels} channels with {len(self.mean)} means and "
                             f"{len(self.std)} stds; the model file is damaged")
        if self.resize not in RESIZE_RULES:
            raise LtnasError(f"unknown resize rule '{self.resize}' in the model file; upgrade ltnas")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        return cls(int(data["size"]), int(data["channels"]), tuple(data["mean"]), tuple(data["std"]),
                   data.get("resize", RESIZE_RULE))

    def pixels(self, item: Any) -> np.ndarray:
        """One image as uint8 C×size×size."""
        if self.channels not in (1, 3):
            raise LtnasError(f"this model takes {self.channels}-channel images, which image files cannot hold; "
                             "normalise such arrays yourself with Preprocess.normalise")
        image = _as_pil(item)
        image = image.convert("L" if self.channels == 1 else "RGB")
        array = np.asarray(fit_image(image, self.size, self.resize))
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 N×C×H×W → float32 (pixels / 255 − mean) / std, as the training batches."""
        mean = torch.tensor(self.mean, dtype=torch.float32, device=pixels.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=pixels.device).view(1, -1, 1, 1)
        return (pixels.float().div_(255) - mean) / std

    def __call__(self, items: Any) -> torch.Tensor:
        """A batch N×C×size×size; a single image gives N = 1."""
        if isinstance(items, np.ndarray) or not isinstance(items, Sequence) or isinstance(items, str):
            items = [items]
        if not items:
            raise LtnasError("no images to preprocess; pass at least one image")
        return self.normalise(torch.from_numpy(np.stack([self.pixels(item) for item in items])))


def _as_pil(item: Any):
    from PIL import Image

    if isinstance(item, Image.Image):
        return item
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8 or item.ndim not in (2, 3) or (item.ndim == 3 and item.shape[2] not in (1, 3, 4)):
            raise LtnasError(f"an image array must be uint8 H×W or H×W×C (C = 1, 3 or 4), got {item.dtype} "
                             f"{item.shape}; convert it first")
        return Image.fromarray(item[:, :, 0] if item.ndim == 3 and item.shape[2] == 1 else item)
    if isinstance(item, (str, Path)):
        path = Path(item)
        if not path.is_file():
            raise LtnasError(f"image {path} not found; pass an existing image file")
        try:
            with Image.open(path) as image:
                image.load()
                return image
        except (OSError, ValueError, SyntaxError) as exc:  # PIL signals broken files with all three
            raise LtnasError(f"cannot read {path} as an image ({exc}); pass an image file (png, jpg, ...)") from None
    raise LtnasError(f"cannot use a {type(item).__name__} as an image; pass a PIL image, a path or a uint8 array")


class LoadedModel(NamedTuple):
    """What `load_model` gives: the network (eval mode), its preprocessing, the class names."""

    model: nn.Module
    preprocess: Preprocess
    classes: list[str]


def save_model(path: str | Path, network: dict[str, Any], state_dict: dict[str, torch.Tensor],
               classes: Sequence[str], preprocess: Preprocess, **extra: Any) -> None:
    """Write a model file (atomically) that `load_model` rebuilds without any other file."""
    from ltnas import __version__

    atomic_save({"format": MODEL_FORMAT, "ltnas_version": __version__, "network": network, "model": state_dict,
                 "classes": list(classes), "preprocess": preprocess.to_dict(), **extra}, path)


def load_model(run_dir: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """The trained network of a run folder (or of a model file) in eval mode on `device`, with its
    preprocessing and class names:

        model, preprocess, classes = ltnas.load_model("runs/mine")
        probabilities = model(preprocess(["a.png", "b.jpg"])).softmax(1)
    """
    path = Path(run_dir)
    model_file = path if path.is_file() else path / MODEL_FILE
    if not path.exists():
        raise LtnasError(f"run folder {path} not found; pass the folder a run wrote (or its train/model.pt)")
    if not model_file.is_file():
        raise LtnasError(f"{path} has no trained model ({MODEL_FILE}); finish the run with `ltnas run --resume "
                         f"{path}` or train one with `ltnas train` (a bbn run keeps only its supernet)")
    try:
        saved = torch.load(model_file, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises several kinds
        raise LtnasError(f"cannot read model file {model_file} ({exc.__class__.__name__}); it is damaged or not "
                         "an ltnas model; retrain or restore it") from None
    if not isinstance(saved, dict) or "model" not in saved:
        raise LtnasError(f"{model_file} is not an ltnas model file (no state_dict); pass a run's train/model.pt")
    if "network" not in saved:
        saved = {**saved, **_legacy_entries(model_file.parent.parent, saved)}
    model = build_network(saved["network"])
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as exc:
        raise LtnasError(f"{model_file}'s weights do not fit its network ({str(exc).splitlines()[0]}); the file "
                         "is damaged; retrain or restore it") from None
    model.to(device).eval()
    return LoadedModel(model, Preprocess.from_dict(saved["preprocess"]), list(saved["classes"]))


def _legacy_entries(run_dir: Path, saved: dict[str, Any]) -> dict[str, Any]:
    """network, classes and preprocess of a model file written before MODEL_FORMAT, from the run's
    config.yaml (network size) and data.json (classes, mean/std, input shape). Those folder runs
    stretched their images to the square, so their preprocessing does too."""
    from ltnas.runs import RunFolder
    from ltnas.space import Genotype

    data = RunFolder(run_dir).read_json("data.json") if (run_dir / "data.json").is_file() else None
    if data is None or not (run_dir / "config.yaml").is_file() or "genotype" not in saved:
        raise LtnasError(f"{run_dir / MODEL_FILE} is an older model file, which needs the run's config.yaml and "
                         "data.json beside it; keep the whole run folder together")
    config = RunFolder.open(run_dir).config()
    channels, size = data["image_shape"][0], data["image_shape"][1]
    network = genotype_network_spec(Genotype.from_dict(saved["genotype"]), config.train.cell.init_channels,
                                    len(data["classes"]), config.train.cell.layers, config.train.auxiliary, channels, size)
    resize = "stretch" if config.data.source == "folder" else RESIZE_RULE
    preprocess = Preprocess(size, channels, tuple(data["mean"]), tuple(data["std"]), resize)
    return {"network": network, "classes": data["classes"], "preprocess": preprocess.to_dict()}
