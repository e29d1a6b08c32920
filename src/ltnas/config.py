"""Typed run configuration: one YAML file, `--set key=value` overrides, validated up front.

Every section forbids unknown keys, so a misspelt option fails before any work starts instead of
being silently ignored. Defaults are the papers' settings (see DESIGN.md): the DARTS search size
for `search`, the DARTS evaluation recipe for `train`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ltnas.errors import LtnasError

# DARTS primitive order (DESIGN.md). Kept here as plain names so that reading a config never needs torch.
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

SOURCES = ("digits", "cifar10", "cifar100", "folder", "synthetic")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentConfig(Section):
    """Batched augmentation applied on the device (in this order): padded crop, flip, cutout."""

    crop_padding: int = Field(4, ge=0, description="zero padding before a random crop back to size; 0 = off")
    flip: bool = Field(True, description="random horizontal flip (off for digits and text-like data)")
    cutout: int = Field(0, ge=0, description="side of the square cut out of each image; 0 = off")


class DataConfig(Section):
    source: str = Field("digits", description=f"one of {', '.join(SOURCES)}")
    root: str | None = Field(None, description="folder with the CIFAR pickles, or the image folder")
    download: bool = Field(False, description="download CIFAR into root when absent (checksum verified)")
    profile: Literal["exp", "step", "balanced", "none"] = Field(
        "exp", description="long-tail profile of the training set; 'none' keeps a folder's data as it is"
    )
    ratio: float | None = Field(None, description="imbalance ratio n_max/n_min (>= 1); give ratio or factor")
    factor: float | None = Field(None, description="imbalance factor n_min/n_max (0 < f <= 1)")
    n_max: int | None = Field(None, ge=1, description="images of the largest class; default: the source's")
    test_per_class: int | None = Field(
        None, ge=1, description="digits/synthetic: held-out balanced test images per class"
    )
    test_fraction: float = Field(0.2, gt=0, lt=1, description="folder without train/test: stratified test share")
    longtail_test: bool = Field(True, description="also evaluate on a test set with the training profile")
    image_size: int | None = Field(None, ge=4, description="folder: resize to this; synthetic: image side")
    num_classes: int = Field(10, ge=2, description="synthetic only")
    channels: int = Field(3, ge=1, description="synthetic only")
    val_fraction: float = Field(0.5, gt=0, lt=1, description="share of the training set used as the α validation set")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value not in SOURCES:
            raise ValueError(f"unknown dataset '{value}'; choose one of {', '.join(SOURCES)}")
        return value

    @model_validator(mode="after")
    def _imbalance(self) -> "DataConfig":
        if self.ratio is not None and self.factor is not None:
            raise ValueError("give the imbalance as ratio or as factor, not both (factor = 1 / ratio)")
        if self.ratio is not None and self.ratio < 1:
            raise ValueError(f"ratio must be >= 1 (n_max/n_min), got {self.ratio}; for n_min/n_max use factor")
        if self.factor is not None and not 0 < self.factor <= 1:
            raise ValueError(f"factor must be in (0, 1] (n_min/n_max), got {self.factor}; for n_max/n_min use ratio")
        return self


class LongTailConfig(Section):
    """Long-tail plug-ins; the same section shape serves search and retrain."""

    loss: Literal["ce"] = "ce"
    reweight: Literal["none", "class_balanced", "drw"] = Field(
        "none", description="class weights in the loss: none, always class-balanced, or deferred (DRW)"
    )
    beta: float = Field(0.9999, gt=0, lt=1, description="class-balanced weights: (1 - β) / (1 - β^n_c)")
    drw_epoch: int | None = Field(None, ge=0, description="DRW switch epoch; default 0.8 × epochs (160 of 200)")
    sampler: Literal["instance", "class_balanced"] = "instance"


# The authors' settings for FairDARTS (paper 003), applied to the keys a config leaves unset when
# `search.method: fairdarts`; anything the config sets explicitly wins.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "fairdarts": {
        "primitives": [name for name in PRIMITIVES if name != "none"],
        "batch_size": 128,
        "lr": 0.005,
        "lr_min": 0.001,
        "arch_lr": 3e-3,
        "order": "first",
        "derive": "threshold",
    },
}


class SearchConfig(Section):
    method: Literal["darts", "fairdarts"] = Field(
        "darts", description="darts (softmax); fairdarts (sigmoid + zero-one loss, the authors' defaults)"
    )
    order: Literal["first", "second"] = "first"
    primitives: list[str] = Field(default_factory=lambda: list(PRIMITIVES))
    init_channels: int = Field(16, ge=1)
    layers: int = Field(8, ge=1)
    nodes: int = Field(4, ge=1, description="intermediate nodes per cell")
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.025, gt=0)
    lr_min: float = Field(0.001, ge=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(3e-4, ge=0)
    grad_clip: float = Field(5.0, gt=0)
    arch_lr: float = Field(3e-4, gt=0)
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = Field(1e-3, ge=0)
    alpha_init_std: float = Field(1e-3, ge=0)
    hvp_radius: float = Field(0.01, gt=0, description="second order: ε = hvp_radius / ‖∇w' L_val‖ (DARTS: 0.01)")
    derive: Literal["darts", "threshold"] = "darts"
    threshold: float = Field(0.85, gt=0, lt=1)
    zero_one_weight: float = Field(10.0, ge=0, description="fairdarts: weight w01 of the zero-one loss on σ(α)")
    zero_one_kind: Literal["l2", "l1"] = Field("l2", description="fairdarts: −mean((σ−½)²) (l2) or −mean(|σ−½|) (l1)")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    longtail: LongTailConfig = Field(default_factory=LongTailConfig)
    amp: bool = Field(False, description="bf16 autocast of forward passes (for GPUs with bf16; α and weights stay fp32)")
    channels_last: bool = Field(True, description="NHWC activations in the supernet (same values; faster on CPU)")

    @model_validator(mode="before")
    @classmethod
    def _method_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("method") in METHOD_DEFAULTS:
            data = {**METHOD_DEFAULTS[data["method"]], **data}
        return data

    @field_validator("primitives")
    @classmethod
    def _known_primitives(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in PRIMITIVES]
        if unknown:
            raise ValueError(f"unknown primitive {unknown[0]!r}; choose from {', '.join(PRIMITIVES)}")
        if len(set(value)) != len(value):
            raise ValueError("primitives are listed more than once; list each at most once")
        if not [name for name in value if name != "none"]:
            raise ValueError("primitives need at least one operation besides 'none'")
        return value


class TrainConfig(Section):
    """Retraining a genotype from scratch: the DARTS evaluation recipe by default."""

    genotype: str | None = Field(None, description="published name or genotype file to train; None: the searched one")
    init_channels: int = Field(36, ge=1)
    layers: int = Field(20, ge=1)
    epochs: int = Field(600, ge=1)
    batch_size: int = Field(96, ge=1)
    lr: float = Field(0.025, gt=0)
    lr_min: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(3e-4, ge=0)
    grad_clip: float = Field(5.0, gt=0)
    auxiliary: bool = True
    auxiliary_weight: float = Field(0.4, ge=0)
    drop_path: float = Field(0.2, ge=0, lt=1)
    augment: AugmentConfig = Field(default_factory=lambda: AugmentConfig(cutout=16))
    longtail: LongTailConfig = Field(default_factory=LongTailConfig)
    amp: bool = Field(False, description="bf16 autocast of forward passes (for GPUs with bf16; weights stay fp32)")
    channels_last: bool = Field(True, description="NHWC weights and activations (same values; faster on CPU)")


class EvalConfig(Section):
    batch_size: int = Field(256, ge=1)


class DistributedConfig(Section):
    """Multi-process runs under `torchrun --nproc_per_node N -m ltnas ...` (ignored in a single process)."""

    sync_bn: bool = Field(False, description="BatchNorm statistics over the global batch (CUDA only)")


class RunConfig(Section):
    name: str = "ltnas"
    seed: int = 0
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    progress: bool = True
    data: DataConfig = Field(default_factory=DataConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or start from the defaults), apply `key=value` overrides, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise LtnasError(f"config file {path} not found; pass a YAML file such as configs/quickstart.yaml")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            where = f" at line {line + 1}" if line is not None else ""
            raise LtnasError(f"config file {path} is not valid YAML{where}; fix the syntax there") from None
        if not isinstance(raw, dict):
            raise LtnasError(f"config file {path} must hold a mapping of sections (data:, search:, ...)")
    for item in overrides or []:
        apply_override(raw, item)
    overridden = [item.partition("=")[0].strip() for item in overrides or []]
    try:
        return validate_config(raw, source=str(path) if path else "--set")
    except LtnasError:
        if path is None or not overridden:
            raise
        # Blame --set when the bad value came from it rather than from the file.
        return validate_config(raw, source=str(path), overridden=overridden)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """`search.epochs=3` → raw["search"]["epochs"] = 3 (the value is parsed as YAML)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise LtnasError(f"override {item!r} is not key=value; write e.g. --set search.epochs=3")
    node = raw
    *parents, leaf = key.strip().split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise LtnasError(f"override {item!r}: {part} is not a section; check the key")
        node = child
    node[leaf] = yaml.safe_load(value) if value.strip() else None


def validate_config(raw: dict[str, Any], source: str = "config", overridden: list[str] | None = None) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise LtnasError(_first_problem(exc, source, overridden or [])) from None


def _first_problem(exc: ValidationError, source: str, overridden: list[str]) -> str:
    """One line for the first validation error, with a spelling suggestion for unknown keys."""
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    culprit = next((key for key in overridden if key == location or key.startswith(location + ".")), None)
    if culprit is not None:
        source = f"--set {culprit}"
    if error["type"] == "extra_forbidden":
        section_model = _section_model(error["loc"][:-1])
        known = sorted(section_model.model_fields) if section_model else []
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys here: {', '.join(known)}"
        return f"unknown config key '{location}' in {source}; {hint}"
    message = error["msg"].removeprefix("Value error, ")
    return f"invalid config value for '{location}' in {source}: {message}"


def _section_model(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] = RunConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
