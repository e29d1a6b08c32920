"""Typed run configuration: one YAML file, `--set key=value` overrides, validated up front.

Every section forbids unknown keys, so a misspelt option fails before any work starts instead of
being silently ignored. Defaults are the papers' settings (docs/REFERENCES.md names them): the DARTS search size
for `search`, the DARTS evaluation recipe for `train`.
"""

from __future__ import annotations

import copy
import difflib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ltnas.errors import LtnasError
from ltnas.methods import METHODS, NETWORKS, PRIMITIVES, S2_PRIMITIVES, SPACES, method as method_entry

# Hand-designed networks `train.network` may name besides "cell" (the genotype's): the network registry of
# ltnas.methods, which names them without importing torch.
BASELINE_NETWORKS: tuple[str, ...] = tuple(name for name, entry in NETWORKS.items() if not entry.needs_genotype)

SOURCES = ("digits", "cifar10", "cifar100", "folder", "split_files", "synthetic")
# data keys that only these sources read; any other source refuses them
SOURCE_KEYS: dict[str, tuple[str, ...]] = {"digits": ("test_per_class",),
                                           "split_files": ("train_list", "val_list", "test_list"),
                                           "synthetic": ("test_per_class", "num_classes", "channels")}
# data keys whose meaning depends on the source: a config file's are dropped when --set changes data.source
SOURCE_DEPENDENT = ("root", "download", "profile", "ratio", "factor", "n_max", "test_per_class", "test_fraction",
                    "train_list", "val_list", "test_list",
                    "image_size", "memory_budget_gb", "num_classes", "channels")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StageSection(Section):
    """A stage's section (`search`, `train`, `supernet`, `adapt`): keys it held before they moved (MOVED_KEYS,
    e.g. a flat `lr`) are read at their new places also when the section is built on its own
    (`SearchConfig(lr=0.1)` is `SearchConfig(sgd={"lr": 0.1})`)."""

    key: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        return migrate_layout({cls.key: data})[cls.key] if isinstance(data, dict) else data


def with_defaults(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`given` with the keys of `defaults` it leaves unset, section by section (nested mappings merge; a
    value `given` sets, a section object included, wins whole)."""
    merged = dict(given)
    for key, value in defaults.items():
        if key not in merged:
            merged[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = with_defaults(value, merged[key])
    return merged


# The SGD settings every training section has (search weights, retrain, supernet, adapt): their meaning
# and range are declared once here.
LearningRate = Annotated[float, Field(gt=0, description="SGD learning rate (the schedule's start)")]
MinLearningRate = Annotated[float, Field(ge=0, description="cosine schedule: the learning rate it ends at")]
def _increasing_milestones(value: list[int]) -> list[int]:
    if any(epoch < 1 for epoch in value) or any(b <= a for a, b in zip(value, value[1:])):
        raise ValueError(f"lr_milestones {value} must be epochs >= 1 in increasing order, e.g. [160, 180]")
    return value


Milestones = Annotated[list[int], AfterValidator(_increasing_milestones),
                       Field(description="step schedule: epochs where lr *= lr_gamma")]
LrGamma = Annotated[float, Field(gt=0, le=1, description="step schedule: factor at each milestone")]
Momentum = Annotated[float, Field(ge=0, description="SGD momentum")]
WeightDecay = Annotated[float, Field(ge=0, description="SGD weight decay (L2)")]
GradClip = Annotated[float, Field(gt=0, description="gradient norm clipped to this")]


def checked_operations(value: list[str], known: tuple[str, ...], label: str, free: str, missing: str) -> list[str]:
    """`value` if it names only `known` operations, each once, and at least one besides `free` (an operation
    that computes nothing of its own); else a one-line error: `label` names an entry, `missing` the last fault."""
    unknown = [name for name in value if name not in known]
    if unknown:
        raise ValueError(f"unknown {label} {unknown[0]!r}; choose from {', '.join(known)}")
    if len(set(value)) != len(value):
        raise ValueError(f"{label}s are listed more than once; list each at most once")
    if not [name for name in value if name != free]:
        raise ValueError(missing)
    return value


def _known_primitives(value: list[str]) -> list[str]:
    return checked_operations(value, PRIMITIVES, "primitive", "none",
                              "primitives need at least one operation besides 'none'")


# The space settings the search supernet, the retrained network and the IMB-NAS supernet share, declared once.
Primitives = Annotated[list[str], AfterValidator(_known_primitives),
                       Field(description=f"candidate operations of each edge, of {', '.join(PRIMITIVES)}")]
Channels = Annotated[int, Field(ge=1, description="C: channels of the first cell (doubled at each reduction)")]
Layers = Annotated[int, Field(ge=1, description="cells in the network (reduction cells at 1/3 and 2/3)")]
Nodes = Annotated[int, Field(ge=1, description="intermediate nodes per cell, each with two inputs")]


# --- the shared sections: SGD (`<stage>.sgd`) and the network (`search.cell`, `supernet.cell`,
# `train.cell`). Each stage's own defaults (its paper's) are a subclass's plain defaults, so a YAML that
# sets one key of a stage's section keeps that stage's defaults for the others.
class SgdConfig(Section):
    """The weight optimizer of a training stage: SGD with momentum, weight decay and gradient clipping."""

    lr: LearningRate = 0.025
    momentum: Momentum = 0.9
    weight_decay: WeightDecay = 3e-4
    grad_clip: GradClip = 5.0


class CosineSgdConfig(SgdConfig):
    """SGD whose learning rate follows a cosine from lr down to lr_min over the stage's epochs (the search's
    defaults: DARTS's search recipe)."""

    lr_min: MinLearningRate = 0.001


class TrainSgdConfig(CosineSgdConfig):
    """The retrain stage's SGD: DARTS's evaluation recipe (cosine to 0) by default; or the step schedule of
    StepSgdConfig (lr × lr_gamma at each of lr_milestones: IMB-NAS (Yao, 2024)'s subnet recipe, lr 0.1 × 0.01
    at epochs 160 and 180 of 200)."""

    lr_min: MinLearningRate = 0.0
    schedule: Literal["cosine", "step"] = Field(
        "cosine", description="cosine: lr → lr_min over the epochs (DARTS); step: lr × lr_gamma at each of "
        "lr_milestones (IMB-NAS, LDAM-DRW)")
    lr_milestones: Milestones = []
    lr_gamma: LrGamma = 0.1

    @model_validator(mode="after")
    def _schedule_settings(self) -> "TrainSgdConfig":
        if self.schedule == "cosine" and self.lr_milestones:
            raise ValueError(f"lr_milestones {self.lr_milestones} are set but the schedule is cosine; set "
                             "schedule: step, or remove lr_milestones")
        if self.schedule == "step" and not self.lr_milestones:
            raise ValueError("the step schedule has no lr_milestones; list the epochs where lr *= lr_gamma, "
                             "e.g. lr_milestones: [160, 180]")
        return self


class StepSgdConfig(SgdConfig):
    """SGD whose learning rate is multiplied by lr_gamma at each milestone epoch; defaults: IMB-NAS (Yao, 2024)'s
    supernet, lr 0.1 cut by 0.01 at epochs 300 and 400 (the LDAM-DRW step schedule)."""

    lr: LearningRate = 0.1
    lr_milestones: Milestones = [300, 400]
    lr_gamma: LrGamma = 0.01
    weight_decay: WeightDecay = 2e-4


class AdaptSgdConfig(StepSgdConfig):
    """IMB-NAS adaptation's fine-tuning SGD: lr 0.01 cut by 0.01 at epoch 100 (the paper's)."""

    lr: LearningRate = 0.01
    lr_milestones: Milestones = [100]


class CellConfig(Section):
    """The size of a cell network; defaults: DARTS's evaluation network (C = 36, 20 cells)."""

    init_channels: Channels = 36
    layers: Layers = 20


class TrainCellConfig(CellConfig):
    """The retrained cell network: its size and its stem (DARTS's CIFAR or ImageNet evaluation network)."""

    stem: Literal["cifar", "imagenet"] = Field(
        "cifar", description="cifar: DARTS's NetworkCIFAR (one 3x3 conv to 3C, full resolution); imagenet: its "
        "NetworkImageNet (two stride-2 stems, 8x down-sampled before the first cell, ImageNet auxiliary head; "
        "DARTS's ImageNet size is C = 48, 14 cells, 224-px images)")


class CellSpaceConfig(CellConfig):
    """The searched DARTS cell space: the supernet's size, its cell's nodes and each edge's candidate operations;
    defaults: the DARTS search network (C = 16, 8 cells, 4 nodes, the 8 DARTS operations)."""

    primitives: Primitives = list(PRIMITIVES)
    init_channels: Channels = 16
    layers: Layers = 8
    nodes: Nodes = 4


class SupernetCellConfig(CellSpaceConfig):
    """IMB-NAS's one-shot cell space: the DARTS space without 'none' (a sampled path always computes)."""

    primitives: Primitives = Field(default_factory=lambda: [name for name in PRIMITIVES if name != "none"],
                                   description="candidate operations of a path ('none' is never sampled)")


class AugmentConfig(Section):
    """Batched augmentation applied on the device (in this order): rotation and zoom, padded crop, flip, cutout."""

    rotate: float = Field(0.0, ge=0, le=180, description="random rotation, degrees drawn uniformly in ±rotate "
                          "(bilinear, black outside the image); 0 = off")
    zoom: float = Field(0.0, ge=0, lt=1, description="random zoom, factor drawn uniformly in 1 ± zoom; 0 = off")

    crop_padding: int = Field(4, ge=0, description="zero padding before a random crop back to size; 0 = off")
    flip: bool = Field(True, description="random horizontal flip (off for digits and text-like data)")
    cutout: int = Field(0, ge=0, description="side of the square cut out of each image; 0 = off")


class DataConfig(Section):
    source: str = Field("digits", description=f"one of {', '.join(SOURCES)}")
    root: str | None = Field(None, description="folder with the CIFAR pickles, the image folder, or the folder "
                             "split files' paths are relative to")
    train_list: str | None = Field(None, description="split_files: text file of 'relative/path label' lines, the "
                                   "training pool (ImageNet-LT's ImageNet_LT_train.txt)")
    val_list: str | None = Field(None, description="split_files, optional: validation images (ImageNet_LT_val.txt) "
                                 "that retraining monitors instead of holding out train.val_fraction")
    test_list: str | None = Field(None, description="split_files: the test set (ImageNet_LT_test.txt)")
    download: bool = Field(False, description="download CIFAR into root when absent (checksum verified)")
    profile: Literal["exp", "step", "balanced", "none"] = Field(
        "exp", description="long-tail profile of the training set; 'none' keeps the data as it is (the default for "
        "a folder or split files, whose classes a profile ranks by size); exp otherwise"
    )
    ratio: float | None = Field(None, description="imbalance ratio n_max/n_min (>= 1); give ratio or factor")
    factor: float | None = Field(None, description="imbalance factor n_min/n_max (0 < f <= 1)")
    n_max: int | None = Field(None, ge=1, description="images of the largest class; default: the source's")
    test_per_class: int | None = Field(
        None, ge=1, description="digits/synthetic: held-out balanced test images per class"
    )
    test_fraction: float = Field(0.2, gt=0, lt=1, description="folder without train/test: stratified test share")
    longtail_test: bool = Field(True, description="also evaluate on a test set with the training profile")
    image_size: int | None = Field(None, ge=4, description="folder, split_files: shorter side scaled to this, "
                                   "centre square cut (default: the median shorter side, at most 64); synthetic: "
                                   "image side")
    memory_budget_gb: float | None = Field(None, gt=0, description="folder, split_files: most GiB of decoded images "
                                           "to hold in memory (default: half the machine's); a larger folder is "
                                           "decoded batch by batch")
    num_classes: int | None = Field(None, ge=2, description="synthetic only (default 10)")
    channels: int | None = Field(None, ge=1, description="synthetic only (default 3)")
    val_fraction: float = Field(0.5, gt=0, lt=1, description="share of the training set used as the α validation set")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value not in SOURCES:
            raise ValueError(f"unknown dataset '{value}'; choose one of {', '.join(SOURCES)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _folder_keeps_its_distribution(cls, data: Any) -> Any:
        """A folder of real images is long-tailed already: without a profile it is kept as it is."""
        if (isinstance(data, dict) and data.get("source") in ("folder", "split_files")
                and data.get("profile") is None):
            data = {**data, "profile": "none"}
        return data

    @field_validator("root", "train_list", "val_list", "test_list")
    @classmethod
    def _absolute_root(cls, value: str | None) -> str | None:
        """Saved absolute, so that a run evaluates and resumes from any working directory."""
        return str(Path(value).expanduser().absolute()) if value else value

    @model_validator(mode="after")
    def _keys_of_the_source(self) -> "DataConfig":
        used = SOURCE_KEYS.get(self.source, ())
        for key in ("test_per_class", "num_classes", "channels", "train_list", "val_list", "test_list"):
            if getattr(self, key) is not None and key not in used:
                where = ", ".join(name for name, keys in SOURCE_KEYS.items() if key in keys)
                raise ValueError(f"{key} applies to source {where} only, not {self.source}; remove it")
        return self

    # Range checks on the fields themselves, so that an error names the key that is wrong.
    @field_validator("ratio")
    @classmethod
    def _ratio_range(cls, value: float | None) -> float | None:
        if value is not None and not value >= 1:
            raise ValueError(f"ratio must be >= 1 (n_max/n_min), got {value}; for n_min/n_max use factor")
        return value

    @field_validator("factor")
    @classmethod
    def _factor_range(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"factor must be in (0, 1] (n_min/n_max), got {value}; for n_max/n_min use ratio")
        return value

    @model_validator(mode="after")
    def _imbalance(self) -> "DataConfig":
        if self.ratio is not None and self.factor is not None:
            raise ValueError("give the imbalance as ratio or as factor, not both (factor = 1 / ratio)")
        return self


class LongTailConfig(Section):
    """Long-tail plug-ins; the same section shape serves search and retrain."""

    loss: Literal["ce", "focal", "ldam", "logit_adjusted", "balanced_softmax"] = Field(
        "ce", description="ce; focal (γ); ldam (margins ∝ n_c^-1/4); logit_adjusted (z + τ log π); "
        "balanced_softmax (τ = 1)"
    )
    focal_gamma: float = Field(2.0, ge=0, description="focal: γ in (1 − p_t)^γ")
    ldam_max_margin: float = Field(0.5, gt=0, description="ldam: the rarest class's margin")
    ldam_scale: float = Field(30.0, gt=0, description="ldam: logit scale s")
    tau: float = Field(1.0, description="logit_adjusted: τ in z + τ log π")
    reweight: Literal["none", "class_balanced", "drw"] = Field(
        "none", description="class weights in the loss: none, always class-balanced, or deferred (DRW)"
    )
    beta: float = Field(0.9999, gt=0, lt=1, description="class-balanced weights: (1 - β) / (1 - β^n_c)")
    drw_epoch: int | None = Field(None, ge=0, description="DRW switch epoch; default 0.8 × epochs (160 of 200)")
    rw_lambda: float | None = Field(
        None, ge=0, description="IMB-NAS (Yao, 2024) eq. 1: loss = L + λ·L_RW, the unweighted loss plus λ times the "
        "re-weighted one (L_RW only while `reweight` applies weights: after the DRW switch); None: L_RW alone")
    sampler: Literal["instance", "class_balanced", "reversed"] = Field(
        "instance", description="instance (uniform over images); class_balanced (uniform over classes, then "
        "images); reversed (BBN's: class c with probability ∝ 1/n_c, then images)"
    )

    @model_validator(mode="after")
    def _combined_needs_weights(self) -> "LongTailConfig":
        if self.rw_lambda is not None and self.reweight == "none":
            raise ValueError(f"rw_lambda ({self.rw_lambda}) weighs a re-weighted loss but reweight is none; set "
                             "reweight: drw or class_balanced, or remove rw_lambda")
        return self


class ViewsConfig(Section):
    """Two augmented views per image for Barlow Twins, made batched on the device (data/views.py).

    Barlow Twins' recipe, asymmetric between the views for blur and solarize. Colour jitter's
    saturation and hue and the grayscale step only apply to 3-channel images.
    """

    crop_scale: tuple[float, float] = Field((0.2, 1.0), description="random resized crop: area fraction range")
    flip: bool = Field(True, description="random horizontal flip (off for digits and text-like data)")
    jitter: float = Field(0.8, ge=0, le=1, description="probability of colour jitter")
    brightness: float = Field(0.4, ge=0, lt=1)
    contrast: float = Field(0.4, ge=0, lt=1)
    saturation: float = Field(0.2, ge=0, lt=1)
    hue: float = Field(0.1, ge=0, le=0.5)
    grayscale: float = Field(0.2, ge=0, le=1, description="probability of converting to grayscale")
    blur: tuple[float, float] = Field((1.0, 0.1), description="Gaussian blur probability of view 1 and view 2")
    solarize: tuple[float, float] = Field((0.0, 0.2), description="solarize probability of view 1 and view 2")

    @field_validator("crop_scale")
    @classmethod
    def _scale_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale must be (low, high) with 0 < low <= high <= 1, got {list(value)}")
        return value

    @field_validator("blur", "solarize")
    @classmethod
    def _probabilities(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= p <= 1 for p in value):
            raise ValueError(f"probabilities must lie in [0, 1], got {list(value)}")
        return value


class SslConfig(Section):
    """Barlow Twins in a search (SSF-NAS, Yan, 2024), and where it enters; see README, SSF-NAS.

    `enabled` adds it to any gradient-based search (darts, fairdarts, pcdarts, gdas, darts_noise; `ssf` is
    fairdarts with it on). SSF-NAS's text puts it in the architecture step and calls it a replacement for the
    supervised loss, without the formula; `placement` picks one of three readings (BT = weight · BT / D, D the
    projector's output width, so that its scale, about 1 at the start, does not depend on D):

    add (ltnas's default): weight step L = L_sup + BT; the supernet learns from the labels and from
      label-free view agreement, which the head classes cannot dominate. α step as the method's.
    replace: weight step L = BT for the supernet (label-free); the classifier alone is trained with L_sup on
      detached features (a linear probe), so that the α step's validation loss still measures how well the
      architecture separates the classes. α step as the method's.
    arch (the SSF-NAS configs'): α objective = the method's + BT on two views of the validation batch; the
      supernet's weights learn from L_sup alone, the projector from BT on detached features.
    """

    enabled: bool = Field(False, description="Barlow Twins on two views of each image in the search (ssf: always "
                          "on; darts, fairdarts, pcdarts, gdas, darts_noise: off unless set)")
    placement: Literal["add", "replace", "arch"] = Field(
        "add", description="add: weight loss = supervised + BT; replace: BT alone trains the supernet, the "
        "supervised loss a linear-probe classifier; arch: BT in the α step only (SSF-NAS's text)")
    weight: float = Field(1.0, gt=0, description="weight of the Barlow Twins term (per projector dimension)")
    lambd: float = Field(0.0051, ge=0, description="λ: weight of the off-diagonal (redundancy) terms")
    projector: list[int] = Field(
        default_factory=lambda: [2048, 2048, 2048],
        description="widths of the projector's Linear-BN-ReLU, Linear-BN-ReLU, Linear layers",
    )
    arch_step: bool = Field(False, description="add, replace: also add weight · BT / D (on views of the val "
                            "batch) to the α step (arch: always there)")
    views: ViewsConfig = Field(default_factory=ViewsConfig)

    @model_validator(mode="before")
    @classmethod
    def _renamed_mode(cls, data: Any) -> Any:
        """`mode` (add, replace), as ltnas wrote it before `placement`, is read as `placement`."""
        if isinstance(data, dict) and "mode" in data:
            data = dict(data)
            mode = data.pop("mode")
            if "placement" in data and data["placement"] != mode:
                raise ValueError(f"ssl.mode ({mode}) is the old name of ssl.placement ({data['placement']}); "
                                 "keep placement only")
            data["placement"] = mode
        return data

    @field_validator("projector")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if not value or any(width < 1 for width in value):
            raise ValueError(f"projector needs at least one positive layer width, got {value}")
        return value


class FairDartsConfig(Section):
    """FairDARTS (Chu et al., 2020)'s zero-one loss on σ(α); read by fairdarts and ssf."""

    zero_one_weight: float = Field(10.0, ge=0, description="weight w01 of the zero-one loss on σ(α)")
    zero_one_kind: Literal["l2", "l1"] = Field("l2", description="−mean((σ−½)²) (l2) or −mean(|σ−½|) (l1)")


class PcDartsConfig(Section):
    """PC-DARTS (Xu et al., ICLR 2020): partial channel connections and edge normalisation; used when
    `search.method: pcdarts`. Defaults: the authors' code (yuhuixu1993/PC-DARTS)."""

    k: int = Field(4, ge=1, description="1/k of each edge's channels go through the mixed operation, the rest "
                   "pass by; search.cell.init_channels must be a multiple of k (the authors' K = 4)")
    arch_start_epoch: int = Field(15, ge=0, description="α and β are updated from this epoch on (0-based; the "
                                  "authors' warm-up of 15 epochs trains the weights alone)")


class GdasConfig(Section):
    """GDAS (Dong & Yang, CVPR 2019): one Gumbel-softmax sampled operation per edge; used when
    `search.method: gdas`. Defaults: the authors' code (D-X-Y/AutoDL-Projects)."""

    tau_max: float = Field(10.0, gt=0, description="Gumbel-softmax temperature τ at the first search epoch")
    tau_min: float = Field(0.1, gt=0, description="τ at the last search epoch (linear in between)")

    @model_validator(mode="after")
    def _falling(self) -> "GdasConfig":
        if self.tau_min > self.tau_max:
            raise ValueError(f"tau_min ({self.tau_min}) exceeds tau_max ({self.tau_max}); τ anneals downwards")
        return self


class NoiseConfig(Section):
    """DARTS with Gaussian noise on the skip connections, FairDARTS (Chu et al., 2020)'s Table 3 (experiment 2);
    used when `search.method: darts_noise`. Noise scale at search epoch e: scale · (1 + cos(π e / T)) / 2, 0 after T."""

    scale: float = Field(1.0, ge=0, description="initial noise scale: the standard deviation of the noise at the "
                         "first epoch (the paper's standard normal N(0, 1): 1)")
    decay_epochs: int | None = Field(None, ge=1, description="T of the cosine decay, in epochs; unset = "
                                     "search.epochs (the paper: \"a cosine decay on 50 epochs\", its search length; the authors' "
                                     "train_search.py defaults to 30)")
    target: Literal["output", "alpha"] = Field(
        "output", description="where the noise goes: output (the authors' code, xiaomi-automl/FairDARTS: each "
        "stride-1 skip edge outputs x + s·ε, ε ~ N(0, 1) per element) or alpha (the paper's wording: α_skip + s·ε "
        "before the softmax, one ε per edge and forward pass)"
    )


class CuresConfig(Section):
    """DARTS's cures for its skip collapse that FairDARTS (Chu et al., 2020) reviews in its Section 6.3: dropout on
    the skip connections or on every operation, and early stopping by skip count or by the Hessian's largest
    eigenvalue; read by `search.method: darts` (ltnas/search/cures.py). All off by default."""

    skip_dropout: float = Field(0.0, ge=0, lt=1, description="P-DARTS (Chen et al., 2019): dropout of rate p_e on "
                                "the output of every stride-1 skip connection while training (inverted: kept values "
                                "× 1/(1 − p_e)); 0: off (P-DARTS: 0.1, 0.4, 0.7 over its three stages)")
    op_dropout: float = Field(0.0, ge=0, lt=1, description="RobustDARTS (Zela et al., 2020) as FairDARTS reads it: "
                              "the same element dropout on the output of every operation of every edge; 0: off")
    dropout_decay: float = Field(0.0, ge=0, description="p_e = p · exp(−decay · e) at search epoch e (0-based); 0: "
                                 "constant (P-DARTS's code: 0.2, counted from its first α epoch)")
    stop_skips: int | None = Field(None, ge=1, description="DARTS+ (Liang et al., 2019), criterion 1: stop after the "
                                   "first epoch whose derived normal cell has at least this many skip connections "
                                   "(DARTS+: 2); unset: off")
    stop_hessian: float | None = Field(None, gt=1, description="RobustDARTS (Zela et al., 2020), DARTS-ES: stop at "
                                       "epoch i once λ̄_i / λ̄_(i−k) > this (theirs: 1/0.75), λ_max the dominant "
                                       "eigenvalue of ∇²_α L_val, λ̄ its mean over hessian_window epochs; unset: off")
    hessian_lag: int = Field(5, ge=1, description="k of the DARTS-ES rule, in epochs (RobustDARTS: 5)")
    hessian_window: int = Field(5, ge=1, description="epochs λ_max is averaged over (RobustDARTS: 5)")
    hessian_iterations: int = Field(20, ge=1, description="power-iteration steps (Hessian-vector products) per "
                                    "eigenvalue")
    hessian_rollback: bool = Field(True, description="keep the genotype of epoch i − k when DARTS-ES stops at i, as "
                                   "RobustDARTS returns it; false: epoch i's")


class RandomConfig(Section):
    """Random cells from the regularised space, FairDARTS (Chu et al., 2020)'s Table 3 (experiment 1): no search,
    a uniformly drawn cell pair kept only when its skip connections obey the M rule (and, optionally, the retrained
    network reaches a multiply-add floor); used when `search.method: random`. Defaults: the authors' code
    (xiaomi-automl/FairDARTS, `random_generate`)."""

    skips: int = Field(2, ge=0, description="M: the number of skip connections the rule allows")
    skip_rule: Literal["exactly", "at_most"] = Field(
        "exactly", description="exactly M skip connections (the authors' code) or at most M (P-DARTS's and "
        "DARTS+'s limit read as a ceiling)"
    )
    skip_cells: Literal["normal", "both"] = Field(
        "normal", description="which cells the rule counts in: the normal cell (the authors' code, P-DARTS) or "
        "each of the normal and the reduction cell"
    )
    min_madds: int | None = Field(None, ge=1, description="keep only cells whose retrained network (train.cell."
                                  "init_channels, train.cell.layers, the data's image size) has at least this many "
                                  "multiply-adds per image; the paper's second group: 500000000 (500M)")
    max_draws: int = Field(10000, ge=1, description="draws before giving up on the rule and floor (one line "
                           "saying which to relax)")


class BbnConfig(Section):
    """Two-branch (BBN) search with heterogeneous LR scheduling, HLS (Tang, 2024); used when `search.method: bbn`."""

    schedule: Literal["parabolic", "reverse_sigmoid", "linear", "cosine", "constant"] = Field(
        "parabolic", description="mixing ratio μ_t over the search epochs: parabolic 1 − (t/T)² is BBN's"
    )
    k: float = Field(10.0, gt=0, description="reverse_sigmoid steepness k in 1 − sigmoid(k (t − T/2)/(T/2))")
    mu: float = Field(0.5, ge=0, le=1, description="the constant schedule's μ")
    epoch_count: Literal["from_zero", "from_one"] = Field(
        "from_zero", description="t of μ_t over epochs 1 … T: from_zero t = 0 … T − 1 (BBN's code; parabolic μ ends at "
        "1 − ((T − 1)/T)², 0.04 at T = 50), from_one t = 1 … T (HLS (Tang, 2024), Algorithm 1: μ = 0 in the last epoch)"
    )
    resampler: Literal["reversed", "class_balanced"] = Field(
        "reversed", description="sampler of the re-balancing branch: reversed (BBN's own, class c ∝ 1/n_c) or "
        "class_balanced (uniform over classes)"
    )
    hls: bool = Field(True, description="scale the backbone α learning rate by 1 − exp(−τ μ_t) (HLS)")
    tau: float = Field(10.0, gt=0, description="HLS τ (the paper does not give it)")
    scale_weight_lr: bool = Field(False, description="with hls: scale the backbone weight learning rate the same way")
    arch_optimizer: Literal["sgd", "adam"] = Field(
        "sgd", description="optimizer of each α component: sgd (momentum arch_momentum), under which Theorem 1 of "
        "HLS (Tang, 2024) holds (head α steps scale with μ and 1 − μ), or adam (search.arch_betas), which "
        "normalises that scale away; the paper does not name it"
    )
    arch_momentum: float = Field(0.9, ge=0, lt=1, description="sgd α optimizer: momentum (the weights' 0.9)")
    arch_lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="α learning rates follow the weight cosine schedule (HLS (Tang, 2024)) or stay at "
        "arch_lr"
    )
    continued: Literal["none", "mu_zero", "mu_half", "frozen_backbone"] = Field(
        "none", description="extra epochs after the search at μ = 0, at μ = 0.5, or at μ = 0 with the backbone frozen"
    )
    continued_epochs: int = Field(10, ge=1, description="number of continued-training epochs (when continued is set)")
    continued_lr: float = Field(0.002, gt=0, description="constant weight learning rate of continued training "
                                "(α: arch_lr scaled alike)")
    mu_test: float = Field(0.5, ge=0, le=1, description="test-time μ of eval.json (BBN's inference convention)")
    mu_sweep: list[float] = Field(
        default_factory=lambda: [round(0.1 * i, 1) for i in range(11)],
        description="test-time μ values of the accuracy-against-μ sweep",
    )

    @field_validator("mu_sweep")
    @classmethod
    def _sweep_in_range(cls, value: list[float]) -> list[float]:
        if not value or any(not 0 <= mu <= 1 for mu in value):
            raise ValueError("mu_sweep needs at least one value, each in [0, 1]")
        return sorted(set(value))

    def schedule_params(self) -> dict[str, float]:
        return {"reverse_sigmoid": {"k": self.k}, "constant": {"mu": self.mu}}.get(self.schedule, {})

    @property
    def continued_epochs_run(self) -> int:
        return self.continued_epochs if self.continued != "none" else 0


# --- FairDARTS' second search space, S₂ (ltnas/space/mobile.py; `search.space: s2`) ----------------------
class S2Config(Section):
    """S₂ (FairDARTS, Chu et al., 2020; ProxylessNAS' mobile space): 19 inverted-bottleneck layers; read when
    `search.space: s2` (and by the retrained network of an S₂ architecture)."""

    layout: Literal["auto", "imagenet", "small"] = Field(
        "auto", description="imagenet: stem stride 2, 32x down-sampling (224 px); small: stem and first stage at "
        "stride 1, 8x (ltnas's variant for CIFAR-sized and 8x8 images); auto: imagenet from 96 px a side")
    width_mult: float = Field(1.0, gt=0, description="widths x this, rounded to multiples of 8 (ProxylessNAS' "
                              "make_divisible); the 1280-channel head widens only above 1")
    candidates: list[str] = Field(list(S2_PRIMITIVES), description="each layer's candidates, of "
                                  f"{', '.join(S2_PRIMITIVES)} (skip only where the shapes allow it)")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout before the retrained network's classifier "
                           "(FairNAS' and FairDARTS' ImageNet models: 0.2; ltnas's default for every data set)")

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, value: list[str]) -> list[str]:
        checked_operations(value, S2_PRIMITIVES, "S2 candidate", "skip_connect",
                           "S2 candidates need at least one ib_* block (the shape-changing layers have no skip)")
        return [name for name in S2_PRIMITIVES if name in value]  # the space's column order


class SearchConfig(StageSection):
    key: ClassVar[str] = "search"
    method: str = Field("darts", description="; ".join(f"{name}: {entry.summary}" for name, entry in METHODS.items()))
    order: Literal["first", "second"] = Field("first", description="α gradient: first order, or DARTS's second "
                                              "order (one virtual SGD step of the weights)")
    cell: CellSpaceConfig = Field(default_factory=CellSpaceConfig, description="the DARTS cell space searched: the "
                                  "supernet's size, nodes and candidate operations")
    epochs: int = Field(50, ge=1, description="search epochs")
    batch_size: int = Field(64, ge=1, description="images per step, of the training and of the validation half each "
                            "(bbn: per sampler)")
    sgd: CosineSgdConfig = Field(default_factory=CosineSgdConfig, description="the weights' SGD (cosine schedule)")
    arch_lr: float = Field(3e-4, gt=0, description="α learning rate (Adam)")
    arch_betas: tuple[float, float] = Field(
        (0.5, 0.999), description="α Adam (β1, β2): DARTS's (0.5, 0.999); fairdarts, ssf and darts_noise default to "
        "the FairDARTS code's (0.9, 0.999)"
    )
    arch_weight_decay: float = Field(1e-3, ge=0, description="α weight decay")
    alpha_init_std: float = Field(1e-3, ge=0, description="α starts as this × N(0, 1) (DARTS: 1e-3)")
    hvp_radius: float = Field(0.01, gt=0, description="second order: ε = hvp_radius / ‖∇w' L_val‖ (DARTS: 0.01)")
    derive: Literal["darts", "threshold"] = Field(
        "darts", description="genotype: per node the 2 strongest edges and their strongest op (darts), or those "
        "whose op weight reaches `threshold` (FairDARTS's threshold)"
    )
    threshold: float = Field(0.85, gt=0, lt=1, description="derive threshold: the weight an op needs to be kept")
    arch_objective: Literal["ce", "balanced", "class_balanced", "logit_adjusted"] = Field(
        "ce", description="α step's validation loss: plain CE (the papers), CE re-weighted by 1/n_c (balanced) or "
        "by class-balanced weights (longtail.beta), or logit-adjusted CE (arch_tau); ltnas's tail-aware option"
    )
    arch_tau: float = Field(1.0, ge=0, description="logit_adjusted α objective: CE(logits + τ·log prior, y)")
    fairdarts: FairDartsConfig = Field(default_factory=FairDartsConfig)
    ssl: SslConfig = Field(default_factory=SslConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    longtail: LongTailConfig = Field(default_factory=LongTailConfig)
    bbn: BbnConfig = Field(default_factory=BbnConfig)
    pcdarts: PcDartsConfig = Field(default_factory=PcDartsConfig)
    gdas: GdasConfig = Field(default_factory=GdasConfig)
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    cures: CuresConfig = Field(default_factory=CuresConfig)
    random: RandomConfig = Field(default_factory=RandomConfig)
    space: str = Field("darts", description="; ".join(f"{name}: {entry.summary}" for name, entry in SPACES.items()))
    s2: S2Config = Field(default_factory=S2Config)
    amp: bool = Field(False, description="bf16 autocast of forward passes (for GPUs with bf16; α and weights stay fp32)")
    # None = on for the CPU only. On an H100 (torch 2.11, cuDNN 9.19) NHWC was slower and cuDNN gave the
    # affine-free supernet wrong float32 gradients (benchmarks/RESULTS.md, "GPU check").
    channels_last: bool | None = Field(None, description="NHWC activations in the supernet: unset = on for the "
                                       "CPU (faster there), off for CUDA/MPS (slower there; wrong cuDNN gradients "
                                       "measured on an H100)")

    @model_validator(mode="before")
    @classmethod
    def _method_defaults(cls, data: Any) -> Any:
        """The method's own values of shared `search` keys (`search_defaults` in ltnas.methods, e.g. PC-DARTS's
        batch_size 256 and sgd.lr 0.1) fill the keys the config leaves unset, inside sections too; `ltnas config
        show` marks them, and a run folder's config.yaml holds them like every other value."""
        if isinstance(data, dict) and data.get("method") in METHODS:
            # moved keys first (the section's own validator may run after this one)
            data = with_defaults(method_search_defaults(data["method"]), cls._moved_keys(data))
        return data

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value not in METHODS:
            raise ValueError(f"unknown search method '{value}'; choose from {', '.join(METHODS)}")
        return value

    @field_validator("space")
    @classmethod
    def _known_space(cls, value: str) -> str:
        if value not in SPACES:
            raise ValueError(f"unknown search space '{value}'; choose from {', '.join(SPACES)}")
        return value

    @model_validator(mode="after")
    def _method_settings(self) -> "SearchConfig":
        spaces = METHODS[self.method].spaces
        if self.space not in spaces:
            runs_there = [name for name, entry in METHODS.items() if self.space in entry.spaces]
            raise ValueError(f"search.method {self.method} searches only in the {', '.join(spaces)} space (its "
                             f"strategy or network is built for the DARTS cell); for search.space: {self.space} "
                             f"choose {', '.join(runs_there)}")
        check = METHODS[self.method].check
        problem = (check(self) if check else None) or METHODS[self.method].barlow_twins_problem(self)
        if problem:
            raise ValueError(problem)
        return self



class TrainConfig(StageSection):
    """Retraining a genotype from scratch: the DARTS evaluation recipe by default."""

    key: ClassVar[str] = "train"

    network: str = Field(
        "cell", description="cell: the network of a genotype (searched, or train.genotype); or a hand-designed "
        f"baseline trained with the same recipe, no search: {', '.join(BASELINE_NETWORKS)}"
    )
    genotype: str | None = Field(None, description="published name or genotype file to train; None: the searched one")
    cell: TrainCellConfig = Field(default_factory=TrainCellConfig, description="train.network cell: the network's size (its "
                             "cell is the genotype's)")
    epochs: int = Field(600, ge=1, description="retraining epochs")
    batch_size: int = Field(96, ge=1, description="images per step")
    sgd: TrainSgdConfig = Field(default_factory=TrainSgdConfig, description="SGD (cosine schedule, or step: "
                                "`schedule`)")
    warmup_epochs: int = Field(0, ge=0, description="linear learning-rate warm-up over the first epochs, step by step, "
                               "on top of the lr schedule (LDAM-DRW warms up for 5); 0 = off (DARTS)")
    precise_bn: bool = Field(
        False, description="after each epoch, recompute BatchNorm running statistics on the training images with "
        "the final weights of the epoch (Wu & Johnson, 2021): no eval-mode loss spikes while weights move fast; "
        "off = DARTS's moving averages")
    auxiliary: bool = Field(True, description="cell network: DARTS's auxiliary head at 2/3 of the depth "
                            "(training only)")
    auxiliary_weight: float = Field(0.4, ge=0, description="loss + auxiliary_weight × the auxiliary head's loss")
    drop_path: float = Field(0.2, ge=0, lt=1, description="cell network: drop-path probability, raised linearly "
                             "from 0 to this over the epochs (DARTS)")
    augment: AugmentConfig = Field(default_factory=lambda: AugmentConfig(cutout=16))
    longtail: LongTailConfig = Field(default_factory=LongTailConfig)
    amp: bool = Field(False, description="bf16 autocast of forward passes (for GPUs with bf16; weights stay fp32)")
    channels_last: bool | None = Field(None, description="NHWC weights and activations: unset = on for the CPU "
                                       "(~4x faster there), off for CUDA/MPS (slower on an H100)")
    val_fraction: float = Field(
        0.1, ge=0, lt=1, description="share of each class's training images held out to monitor retraining "
        "(floor(n_c · f), so classes under 1/f images give none); 0: train on all, monitor nothing. The test set "
        "is evaluated once, at the end")

    @field_validator("network")
    @classmethod
    def _known_network(cls, value: str) -> str:
        if value != "cell" and value not in BASELINE_NETWORKS:
            close = difflib.get_close_matches(value, ("cell", *BASELINE_NETWORKS), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ValueError(f"unknown network '{value}'; {hint}choose cell or one of {', '.join(BASELINE_NETWORKS)}")
        return value

    @model_validator(mode="after")
    def _genotype_needs_cell(self) -> "TrainConfig":
        if self.network != "cell" and self.genotype:
            raise ValueError(f"train.genotype ({self.genotype}) describes a cell network but train.network is "
                             f"{self.network}; unset one of them")
        if self.network != "cell" and self.cell.stem != "cifar":
            raise ValueError(f"train.cell.stem ({self.cell.stem}) shapes the cell network but train.network is "
                             f"{self.network}; unset train.cell.stem or train the cell network")
        return self

    @property
    def baseline(self) -> bool:
        """True when a hand-designed network is trained (nothing is searched)."""
        return self.network != "cell"


SAMPLINGS = ("uniform", "sandwich", "attentive")


class SupernetConfig(StageSection):
    """IMB-NAS (Yao, 2024)'s one-shot supernet: one uniformly sampled path trained per step. Defaults: 500
    epochs, lr 0.1 cut by 0.01 at epochs 300 and 400 (the LDAM-DRW step schedule)."""

    key: ClassVar[str] = "supernet"

    cell: SupernetCellConfig = Field(default_factory=SupernetCellConfig, description="the one-shot cell space")
    epochs: int = Field(500, ge=1, description="supernet training epochs")
    batch_size: int = Field(128, ge=1, description="images per step")
    sgd: StepSgdConfig = Field(default_factory=StepSgdConfig, description="SGD (step schedule)")
    sampling: Literal["uniform", "sandwich", "attentive"] = Field(
        "uniform", description="uniform: one random path per step; sandwich: largest + smallest + "
        "`sandwich_random` random paths, gradients summed; attentive: of `attentive_candidates` random paths "
        "train the one with the highest loss on the batch"
    )
    sandwich_random: int = Field(2, ge=0, description="sandwich: random paths per step besides the extremes")
    attentive_candidates: int = Field(3, ge=1, description="attentive: paths scored per step")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    longtail: LongTailConfig = Field(default_factory=LongTailConfig)



class EvolveConfig(Section):
    """Evolutionary search over the supernet's paths (SPOS, as IMB-NAS uses it): paper defaults."""

    population: int = Field(50, ge=1)
    generations: int = Field(20, ge=1)
    crossover: int = Field(25, ge=0, description="children by crossover per generation")
    mutation: int = Field(25, ge=0, description="children by mutation per generation")
    mutation_prob: float = Field(0.1, ge=0, le=1, description="chance that each op and each input pair is redrawn")
    parents: int = Field(10, ge=1, description="parents are the top-k candidates seen so far")
    max_params: int | None = Field(None, ge=1, description="budget: parameters of the retrained network")
    max_madds: int | None = Field(None, ge=1, description="budget: multiply-adds per image of the retrained network")
    bn_batches: int = Field(10, ge=1, description="BN recalibration: training batches per candidate")
    bn_batch_size: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _sizes(self) -> "EvolveConfig":
        if self.crossover + self.mutation > self.population:
            raise ValueError(f"crossover + mutation ({self.crossover + self.mutation}) exceed the population "
                             f"({self.population}); lower them or raise population")
        if self.parents > self.population:
            raise ValueError(f"parents ({self.parents}) exceed the population ({self.population})")
        return self


class AdaptConfig(StageSection):
    """IMB-NAS adaptation from a balanced source supernet to the imbalanced target `data` (Yao, 2024).

    P0: search the source supernet, retrain its best subnet on the target. P1: freeze the backbone, retrain
    the classifier with `classifier_longtail`, search. P2: fine-tune backbone and classifier with
    `finetune_longtail` (DRW), search. P3: train a supernet on the target with `target_longtail`, search.
    Fine-tuning defaults: 200 epochs, lr 0.01 cut by 0.01 at epoch 100 (the paper's).
    """

    key: ClassVar[str] = "adapt"

    procedure: Literal["P0", "P1", "P2", "P3"] = Field(
        "P1", description="before the search: P0 nothing (the source supernet as it is), P1 the classifier retrained "
        "on the frozen backbone, P2 backbone and classifier fine-tuned, P3 a supernet trained on the target"
    )
    supernet: str | None = Field(None, description="source supernet file (ltnas supernet train); None: the cache")
    supernet_cache: str = Field(
        "runs/supernet-cache", description="folder of source supernets keyed by a hash of what determines them"
    )
    epochs: int = Field(200, ge=1, description="fine-tuning epochs (P1, P2)")
    batch_size: int = Field(128, ge=1, description="images per step")
    sgd: AdaptSgdConfig = Field(default_factory=AdaptSgdConfig, description="fine-tuning SGD (step schedule)")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    classifier_longtail: LongTailConfig = Field(
        default_factory=lambda: LongTailConfig(reweight="class_balanced"),
        description="P1: re-weighted from the first epoch",
    )
    finetune_longtail: LongTailConfig = Field(
        default_factory=lambda: LongTailConfig(reweight="drw", drw_epoch=100), description="P2: DRW at epoch 100"
    )
    target_longtail: LongTailConfig = Field(
        default_factory=lambda: LongTailConfig(reweight="drw", drw_epoch=350),
        description="P3: the target supernet's loss, DRW at epoch 350 of 500",
    )


def _default_distributions() -> dict[str, dict[str, Any]]:
    return {"balanced": {"profile": "balanced"}, "exp-10": {"profile": "exp", "ratio": 10},
            "exp-100": {"profile": "exp", "ratio": 100}}


class RankConfig(Section):
    """`ltnas rank`: do architectures keep their rank from balanced to long-tailed data? (IMB-NAS (Yao, 2024)'s
    claim, after Duggal et al.) The same paths are scored under each label distribution and the rankings
    compared by Kendall's τ and Spearman's ρ."""

    distributions: dict[str, dict[str, Any]] = Field(
        default_factory=_default_distributions,
        description="label → data keys that make that distribution from `data` (e.g. {profile: exp, ratio: 10}); "
        "a ratio or factor given here replaces the data's own")
    paths: int = Field(20, ge=3, description="random paths of the supernet space to rank (seeded); unused with "
                       "candidates")
    candidates: str | None = Field(None, description="a candidates.jsonl of `ltnas evolve`: rank its final "
                                   "population (the last generation) instead of random paths")

    @field_validator("distributions")
    @classmethod
    def _two_or_more(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if len(value) < 2:
            raise ValueError(f"{len(value)} distribution(s) given; ranks are compared between at least two, e.g. "
                             "{balanced: {profile: balanced}, exp-100: {profile: exp, ratio: 100}}")
        bad = [label for label in value if label in ("", ".", "..") or any(c in "/\\" or ord(c) < 32 for c in label)]
        if bad:
            raise ValueError(f"distribution label {bad[0]!r} names a folder; use a plain name such as exp-100")
        return value

    def data_configs(self, data: "DataConfig") -> dict[str, "DataConfig"]:
        """Each distribution's data section: `data` with the distribution's keys (one ratio/factor only)."""
        result = {}
        for label, keys in self.distributions.items():
            merged = data.model_dump(mode="json")
            if "ratio" in keys or "factor" in keys:
                merged.update(ratio=None, factor=None)
            merged.update(keys)
            try:
                result[label] = DataConfig.model_validate(merged)
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in error["loc"])
                raise ValueError(f"distribution {label!r}: {where}: {error['msg'].removeprefix('Value error, ')}"
                                 ) from None
        return result


class EvalConfig(Section):
    batch_size: int = Field(256, ge=1)
    many_shot: int | None = Field(None, ge=0, description="many-shot classes have more training images than "
                                  "this; default min(100, n_max // 5): CIFAR-LT's 100 for n_max >= 500")
    few_shot: int | None = Field(None, ge=0, description="few-shot classes have fewer training images than this; "
                                 "default min(20, n_max // 25): CIFAR-LT's 20 for n_max >= 500")
    model: Literal["retrained", "supernet"] | None = Field(
        None, description="evaluate the retrained genotype, or the searched supernet itself without retraining "
        "(HLS (Tang, 2024)'s protocol); default: retrained, except supernet for search.method bbn"
    )


class PublishedStat(Section):
    """A result printed as the mean ± sample std of several runs (percent), e.g. FairDARTS' 97.46 ± 0.05."""

    mean: float
    std: float = Field(ge=0)
    runs: int | None = Field(None, ge=1, description="how many runs the paper averaged")


# A published number: a single value in percent, or {mean, std, runs}.
PublishedNumber = float | PublishedStat


class PublishedResults(Section):
    """A paper's numbers for this experiment, shown beside ours by `ltnas compare` (percent).

    `values` are in `metric`; `metrics` holds further metrics the paper prints for the same variants
    (e.g. SSF-NAS' long-tailed test accuracy beside its balanced one), each keyed by its eval.json path."""

    source: str = Field(description="where the numbers come from, e.g. 'SSF-NAS (Yan, 2024), abstract'")
    metric: str = Field("balanced_test.overall", description="dotted path into eval.json they correspond to")
    values: dict[str, PublishedNumber] = Field(description="variant (or search method) → published value in "
                                                           "percent, or {mean, std, runs}")
    metrics: dict[str, dict[str, PublishedNumber]] = Field(
        default_factory=dict, description="more metrics: dotted eval.json path → variant → value in percent")

    @model_validator(mode="after")
    def _metric_once(self) -> "PublishedResults":
        if self.metric in self.metrics:
            raise ValueError(f"published.metrics repeats '{self.metric}', the metric of published.values; "
                             "put those numbers under published.values")
        return self

    def by_metric(self) -> dict[str, dict[str, PublishedNumber]]:
        """Every published metric → variant → number, `metric` (the values) first."""
        return {self.metric: self.values, **self.metrics}

    def for_variants(self, names: dict[str, str]) -> "PublishedResults":
        """The numbers of the variants named in `names` (key as written here → variant name), renamed."""
        def pick(numbers: dict[str, PublishedNumber]) -> dict[str, PublishedNumber]:
            return {names[key]: value for key, value in numbers.items() if key in names}

        return self.model_copy(update={"values": pick(self.values),
                                       "metrics": {m: pick(v) for m, v in self.metrics.items() if pick(v)}})


class DistributedConfig(Section):
    """Multi-process runs under `torchrun --nproc_per_node N -m ltnas ...` (ignored in a single process)."""

    sync_bn: bool = Field(False, description="BatchNorm statistics over the global batch (CUDA only)")


# Seeds are what NumPy's legacy generator takes; every stage offset (< 10000) stays within torch's range.
MAX_SEED = 2**32 - 1


class RunConfig(Section):
    name: str = Field("ltnas", description="names the default run folder runs/NAME-TIMESTAMP")
    seed: int = Field(0, description=f"0..{MAX_SEED}")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    progress: bool = True
    data: DataConfig = Field(default_factory=DataConfig)
    source_data: DataConfig | None = Field(
        None, description="IMB-NAS: the (balanced) source the supernet is trained on; None: `data` itself"
    )
    search: SearchConfig = Field(default_factory=SearchConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    supernet: SupernetConfig = Field(default_factory=SupernetConfig)
    evolve: EvolveConfig = Field(default_factory=EvolveConfig)
    adapt: AdaptConfig = Field(default_factory=AdaptConfig)
    rank: RankConfig = Field(default_factory=RankConfig, description="`ltnas rank`: architecture ranks under "
                             "several label distributions")
    published: PublishedResults | None = Field(None, description="the paper's results for this config, by method")
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    version: str | None = Field(None, description="the ltnas version that saved this config (run folders)")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        """Keys written at their old places (MOVED_KEYS) are read at their new ones, however the config arrives."""
        return migrate_layout(data)

    @field_validator("seed")
    @classmethod
    def _seed_range(cls, value: int) -> int:
        if not 0 <= value <= MAX_SEED:
            raise ValueError(f"seed must be an integer in 0..{MAX_SEED} (NumPy's seed range), got {value}")
        return value

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        """The name becomes one folder under runs/: no path separators, no control characters."""
        if value in ("", ".", "..") or any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"name {value!r} must be a plain folder name (no '/', '\\', line breaks or control "
                             "characters, not '.' or '..'); e.g. name: my_run")
        return value

    @model_validator(mode="after")
    def _rank_distributions(self) -> "RunConfig":
        try:
            self.rank.data_configs(self.data)
        except ValueError as exc:
            raise ValueError(f"rank.distributions: {exc}") from None
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def drw_warnings(config: RunConfig) -> list[str]:
    """DRW settings of the sections this run uses whose switch epoch is never reached (no re-weighting)."""
    entry, procedure = method_entry(config.search.method), config.adapt.procedure
    used: list[tuple[str, LongTailConfig, str, int]] = []
    if entry.searches_with_longtail and not config.train.genotype:
        used.append(("search.longtail", config.search.longtail, "search.epochs", config.search.epochs))
    if entry.retrains(config):
        used.append(("train.longtail", config.train.longtail, "train.epochs", config.train.epochs))
    if "supernet" in entry.sections:
        used.append(("supernet.longtail", config.supernet.longtail, "supernet.epochs", config.supernet.epochs))
        adapt = {"P1": ("adapt.classifier_longtail", config.adapt.classifier_longtail, "adapt.epochs",
                        config.adapt.epochs),
                 "P2": ("adapt.finetune_longtail", config.adapt.finetune_longtail, "adapt.epochs", config.adapt.epochs),
                 "P3": ("adapt.target_longtail", config.adapt.target_longtail, "supernet.epochs",
                        config.supernet.epochs)}
        if procedure in adapt:
            used.append(adapt[procedure])
    return [f"{key}.drw_epoch={cfg.drw_epoch} is not below {epochs_key}={epochs}, so DRW never re-weights; "
            f"lower it or leave it unset (0.8 × epochs)"
            for key, cfg, epochs_key, epochs in used
            if cfg.reweight == "drw" and cfg.drw_epoch is not None and cfg.drw_epoch >= epochs]


def shipped_configs() -> dict[str, Path]:
    """The configs shipped with ltnas (`ltnas configs`), by name."""
    folder = resources.files("ltnas").joinpath("configs")
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def resolve_config_path(value: str | Path) -> Path:
    """A config file: `value` itself when it exists, else the shipped config it names — `quickstart`,
    or `configs/quickstart.yaml` (the README's path) outside a checkout, where no configs/ folder exists."""
    path = Path(value)
    if path.is_file():
        return path
    shipped = shipped_configs()
    if str(value) in shipped:
        return shipped[str(value)]
    if path.suffix in (".yaml", ".yml") and path.parent.name == "configs" and path.stem in shipped:
        return shipped[path.stem]
    raise LtnasError(
        f"config {value} not found; pass a YAML file or one of the shipped configs: {', '.join(sorted(shipped))}"
    )


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or start from the defaults), apply `key=value` overrides, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise LtnasError(f"config file {path} not found; pass a YAML file such as configs/quickstart.yaml")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise LtnasError(f"config file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            where = f" at line {line + 1}" if line is not None else ""
            raise LtnasError(f"config file {path} is not valid YAML{where}; fix the syntax there") from None
        if raw is None:  # an empty file would silently run the paper-scale defaults
            raise LtnasError(f"config file {path} is empty; give at least the data section, or start from a "
                             "shipped config (see `ltnas configs`)")
        if not isinstance(raw, dict):
            raise LtnasError(f"config file {path} must hold a mapping of sections (data:, search:, ...)")
    file_source = (raw.get("data") or {}).get("source", "digits") if isinstance(raw.get("data"), dict) else None
    for item in overrides or []:
        apply_override(raw, item)
    overridden = [moved_key(item.partition("=")[0].strip()) for item in overrides or []]
    if path is not None and file_source is not None:
        _drop_other_source_keys(raw, file_source, overridden)
    try:
        return validate_config(raw, source=str(path) if path else "--set")
    except LtnasError:
        if path is None or not overridden:
            raise
        # Blame --set when the bad value came from it rather than from the file.
        return validate_config(raw, source=str(path), overridden=overridden)


def _drop_other_source_keys(raw: dict[str, Any], file_source: str, overridden: list[str]) -> list[str]:
    """`--set data.source=X` on a file written for another source: the file's data keys tied to its own
    source (profile, ratio, test_per_class, root, ...) are dropped rather than carried into the new
    source's run (and its saved config); keys given with --set stay. Returns the dropped keys."""
    data = raw.get("data")
    if not isinstance(data, dict) or data.get("source", "digits") == file_source:
        return []
    dropped = [key for key in SOURCE_DEPENDENT if key in data and f"data.{key}" not in overridden]
    for key in dropped:
        del data[key]
    return dropped


def apply_override(raw: dict[str, Any], item: str) -> None:
    """`search.epochs=3` → raw["search"]["epochs"] = 3 (the value is parsed as YAML). A moved key (MOVED_KEYS)
    is set at its new place, after `raw`'s own moved keys have gone there, so the override wins either way."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise LtnasError(f"override {item!r} is not key=value; write e.g. --set search.epochs=3")
    migrated = migrate_layout(raw)
    raw.clear()
    raw.update(migrated)
    node = raw
    *parents, leaf = moved_key(key.strip()).split(".")  # an old name sets the key at its new place
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise LtnasError(f"override {item!r}: {part} is not a section; check the key")
        node = child
    node[leaf] = yaml.safe_load(value) if value.strip() else None


# Keys that moved, (old, new): a config written before (a run folder's config.yaml, a file, --set) is read
# with its values at their new places. Add a row when a key moves; never reuse an old name for another key.
MOVED_KEYS: tuple[tuple[str, str], ...] = (
    ("search.zero_one_weight", "search.fairdarts.zero_one_weight"),
    ("search.zero_one_kind", "search.fairdarts.zero_one_kind"),
    # the shared sections (SgdConfig, CellSpaceConfig, CellConfig), formerly flat keys of each stage
    *[(f"{stage}.{key}", f"{stage}.cell.{key}") for stage in ("search", "supernet")
      for key in ("primitives", "init_channels", "layers", "nodes")],
    *[(f"train.{key}", f"train.cell.{key}") for key in ("init_channels", "layers")],
    *[(f"{stage}.{key}", f"{stage}.sgd.{key}") for stage in ("search", "train")
      for key in ("lr", "lr_min", "momentum", "weight_decay", "grad_clip")],
    *[(f"{stage}.{key}", f"{stage}.sgd.{key}") for stage in ("supernet", "adapt")
      for key in ("lr", "lr_milestones", "lr_gamma", "momentum", "weight_decay", "grad_clip")],
)


def method_search_defaults(name: str) -> dict[str, Any]:
    """The method's `search_defaults` (ltnas.methods) in the current layout (an entry written with old flat
    keys, such as "lr", reads as {"sgd": {"lr": ...}})."""
    return migrate_layout({"search": METHODS[name].search_defaults})["search"]


def moved_key(key: str) -> str:
    """A dotted key at its current place (`search.lr` → `search.sgd.lr`); other keys as they are."""
    return next((new for old, new in MOVED_KEYS if old == key), key)


def flat_layout(section: str, dump: dict[str, Any]) -> dict[str, Any]:
    """A section's dump (`section`: "supernet", ...) with its moved keys back at their old places: what
    identifies it where the old layout is part of an identity (the IMB-NAS supernet cache key)."""
    flat = copy.deepcopy(dump)
    for old, new in MOVED_KEYS:
        if not old.startswith(section + "."):
            continue
        *parents, leaf = new.removeprefix(section + ".").split(".")
        node = flat
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            flat[old.removeprefix(section + ".")] = node.pop(leaf)
    for old, new in MOVED_KEYS:  # sections left empty by the moves
        parent = new.removeprefix(section + ".").split(".")[0]
        if old.startswith(section + ".") and flat.get(parent) == {}:
            del flat[parent]
    return flat


def migrate_layout(raw: Any) -> Any:
    """`raw` (a config mapping) with every key of MOVED_KEYS at its new place; the input is not changed."""
    if not isinstance(raw, dict):
        return raw
    raw = copy.deepcopy(raw)
    for old, new in MOVED_KEYS:
        *old_parents, old_leaf = old.split(".")
        node = raw
        for part in old_parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or old_leaf not in node:
            continue
        value = node.pop(old_leaf)
        *new_parents, new_leaf = new.split(".")
        target = raw
        for part in new_parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise LtnasError(f"{'.'.join(new_parents)} must be a section (it holds {new_leaf}, formerly {old})")
        if new_leaf in target and target[new_leaf] != value:
            raise LtnasError(f"{old} (the old name of {new}) and {new} are both given, with different values; "
                             f"keep {new} only")
        target[new_leaf] = value
    return raw


def validate_config(raw: dict[str, Any], source: str = "config", overridden: list[str] | None = None) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)  # moved keys go to their new places first (RunConfig._moved_keys)
    except ValidationError as exc:
        raise LtnasError(_first_problem(exc, source, overridden or [])) from None


def _first_problem(exc: ValidationError, source: str, overridden: list[str]) -> str:
    """One line for the first validation error, with a spelling suggestion for unknown keys."""
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    culprit = next((key for key in overridden if key == location or location.startswith(key + ".")), None)
    if culprit is None:  # an error of a whole section: the overridden key under it that the message names
        inside = [key for key in overridden if key.startswith(location + ".") or not location]
        named = [key for key in inside if key.rpartition(".")[2] in error["msg"]]
        culprit = (named or inside or [None])[-1]
    if culprit is not None:
        source = f"--set {culprit}"
    if error["type"] == "extra_forbidden":
        section_model = _section_model(error["loc"][:-1])
        known = sorted(section_model.model_fields) if section_model else []
        # a misspelt old name (search.lrr) is pointed to its new place (search.sgd.lr)
        section = ".".join(str(part) for part in error["loc"][:-1])
        moved = {old.rpartition(".")[2]: new for old, new in MOVED_KEYS if old.rpartition(".")[0] == section}
        close = difflib.get_close_matches(str(error["loc"][-1]), [*known, *moved], n=1)
        suggestion = moved.get(close[0], close[0]) if close and close[0] not in known else (close or [None])[0]
        hint = f"did you mean '{suggestion}'?" if close else f"known keys here: {', '.join(known)}"
        return f"unknown config key '{location}' in {source}; {hint}"
    message = error["msg"].removeprefix("Value error, ")
    if not location:  # a check across sections (RunConfig's own validators): the message names the keys
        return f"invalid config in {source}: {message}"
    return f"invalid config value for '{location}' in {source}: {message}"


def _section_model(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] = RunConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        # an optional section (`DataConfig | None`) suggests the keys of the section
        annotation = next((arg for arg in getattr(annotation, "__args__", ()) if isinstance(arg, type)
                           and issubclass(arg, BaseModel)), annotation)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
