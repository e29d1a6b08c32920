"""FairDARTS' second search space S₂ (Chu et al., 2020, Sections 3 and 5.3): ProxylessNAS' mobile space
(Cai et al., 2019), a single chain of inverted bottlenecks (MobileNetV2, Sandler et al., 2018).

The network: a stem (3×3 convolution to 32 channels, then a 3×3 separable convolution to 16), 19
searchable layers in six stages of rising width, then the head (1×1 convolution to 1280, global pooling,
dropout, classifier). Each layer chooses among 7 candidates (`S2_PRIMITIVES`): inverted bottlenecks
IB(k, e) — 1×1 expansion to e·C_in, k×k depthwise (the layer's stride), 1×1 projection, BN after each
and ReLU6 after the first two — with k ∈ {3, 5, 7} and e ∈ {3, 6}, and `skip_connect` (identity), which
exists only where the shapes allow it (stride 1, C_in = C_out). The IBs have no inner residual: the skip
candidate is the residual, so a layer that keeps {IB, skip} is MobileNetV2's block and one that keeps
{skip} alone is removed (FairDARTS' Fig. 6: "IB" without, "MB" with the skip).

Layer output (FairDARTS Eq. 1 for DARTS, Eq. 6 for FairDARTS):  x_{l+1} = Σ_i w_{l,i} · op_i(x_l),
w_l = the strategy's relaxation of α_l over the layer's available candidates (softmax, independent
sigmoids, a Gumbel sample); a candidate the layer lacks gets weight 0 (its column is left out of the
softmax). α is one (19, 7) matrix; `relaxed_weights()` gives {"layers": w} so that the strategies (and
FairDARTS' zero-one loss, over every entry of w: the absent candidates count as exact zeros) run unchanged.

Widths and strides: the 19-layer version of ProxylessNAS' mobile space that the FairDARTS authors' group
uses (their FairNAS code, xiaomi-automl/FairNAS): stages (width × layers, stride) 32×2 s2, 40×4 s2,
80×4 s2, 96×4 s1, 192×4 s2, 320×1 s1. ProxylessNAS' own (mit-han-lab/proxylessnas,
imagenet_arch_search.py) has 24×4 for the first stage (21 layers); FairDARTS says 19 layers with
"minor modifications". Widths scale by `width_mult` with ProxylessNAS' `make_divisible(·, 8)`; the
1280-channel head widens only for width_mult > 1 (as ProxylessNAS). Layouts: `imagenet` (stem stride 2,
32× down-sampling, for 224 px) and `small` (ltnas's variant for CIFAR-sized and 8×8 images: stem and
first stage at stride 1, 8× down-sampling).

Derivation (`derive_mobile`): `darts` keeps the arg-max candidate of each layer; `threshold`
(FairDARTS) keeps the candidates with w ≥ threshold, the strongest two at most, summed; a layer with
none becomes skip where the shapes allow it, else keeps its strongest candidate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ltnas.atomic import atomic_write_text
from ltnas.errors import LtnasError
from ltnas.methods import S2_PRIMITIVES
from ltnas.space.convolutions import nhwc_stem
from ltnas.space.heads import make_classifier
from ltnas.space.cost import multiply_adds
from ltnas.space.relaxation import ForwardWeights, Relaxation, make_relaxation

SPACE = "s2"
SKIP = "skip_connect"
# S2_PRIMITIVES (ltnas.methods, so that configs name them without torch): ib_k{3,5,7}_e{3,6}, skip_connect.
# (width, layers, stride) per stage: the FairNAS/FairDARTS 19-layer form of ProxylessNAS' mobile space.
STAGES: tuple[tuple[int, int, int], ...] = ((32, 2, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))
STEM_WIDTH, FIRST_WIDTH, HEAD_WIDTH = 32, 16, 1280
# layout → (stem stride, first stage's stride)
LAYOUTS: dict[str, tuple[int, int]] = {"imagenet": (2, 2), "small": (1, 1)}
SMALL_IMAGES = 96  # layout "auto": images below this many pixels a side get the small layout


def make_divisible(value: float, divisor: int = 8) -> int:
    """ProxylessNAS' (and MobileNetV2's) rounding: to the nearest multiple of `divisor`, at least `divisor`,
    and never more than 10 % below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def resolve_layout(layout: str, image_size: int) -> str:
    """`auto` → `imagenet` for images of at least SMALL_IMAGES pixels a side, else `small`."""
    if layout == "auto":
        return "imagenet" if image_size >= SMALL_IMAGES else "small"
    if layout not in LAYOUTS:
        raise LtnasError(f"unknown S2 layout '{layout}'; choose auto, {', '.join(LAYOUTS)}")
    return layout


@dataclass(frozen=True)
class LayerSpec:
    c_in: int
    c_out: int
    stride: int

    @property
    def skippable(self) -> bool:
        """Whether identity fits: same width, same resolution."""
        return self.stride == 1 and self.c_in == self.c_out


def layer_specs(layout: str, width_mult: float = 1.0) -> list[LayerSpec]:
    """The 19 searchable layers: the first of each stage takes its stride and width, the rest stride 1."""
    if layout not in LAYOUTS:
        raise LtnasError(f"unknown S2 layout '{layout}'; choose {', '.join(LAYOUTS)}")
    _, first_stride = LAYOUTS[layout]
    specs, c_in = [], make_divisible(FIRST_WIDTH * width_mult)
    for index, (width, layers, stride) in enumerate(STAGES):
        c_out = make_divisible(width * width_mult)
        for i in range(layers):
            specs.append(LayerSpec(c_in, c_out, (first_stride if index == 0 else stride) if i == 0 else 1))
            c_in = c_out
    return specs


def head_width(width_mult: float) -> int:
    return make_divisible(HEAD_WIDTH * width_mult) if width_mult > 1.0 else HEAD_WIDTH


def available(spec: LayerSpec, primitives: Sequence[str]) -> list[int]:
    """Columns of `primitives` a layer has: every IB, skip only where the shapes allow it."""
    return [i for i, name in enumerate(primitives) if name != SKIP or spec.skippable]


# --- operations -------------------------------------------------------------------------------
def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU6(inplace=True)] if act else layers


class InvertedBottleneck(nn.Sequential):
    """IB(k, e): 1×1 conv C_in → e·C_in, BN, ReLU6; k×k depthwise (stride), BN, ReLU6; 1×1 conv → C_out, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expansion: int, stride: int):
        hidden = c_in * expansion
        super().__init__(*_conv_bn(c_in, hidden, 1), *_conv_bn(hidden, hidden, kernel, stride, groups=hidden),
                         *_conv_bn(hidden, c_out, 1, act=False))


def parse_candidate(name: str) -> tuple[int, int] | None:
    """'ib_k5_e6' → (5, 6); skip → None."""
    if name == SKIP:
        return None
    try:
        _, k, e = name.split("_")
        return int(k.removeprefix("k")), int(e.removeprefix("e"))
    except ValueError:
        raise LtnasError(f"unknown S2 candidate '{name}'; choose from {', '.join(S2_PRIMITIVES)}") from None


def make_candidate(name: str, spec: LayerSpec) -> nn.Module:
    if name not in S2_PRIMITIVES:
        raise LtnasError(f"unknown S2 candidate '{name}'; choose from {', '.join(S2_PRIMITIVES)}")
    shape = parse_candidate(name)
    if shape is None:
        if not spec.skippable:
            raise LtnasError(f"skip_connect cannot join {spec.c_in} to {spec.c_out} channels at stride {spec.stride}")
        return nn.Identity()
    return InvertedBottleneck(spec.c_in, spec.c_out, shape[0], shape[1], spec.stride)


def make_stem(in_channels: int, stride: int, width_mult: float) -> nn.Sequential:
    """3×3 conv to 32 (stride), BN, ReLU6; 3×3 depthwise, BN, ReLU6; 1×1 conv to 16, BN (FairNAS' stem;
    ProxylessNAS' fixed first block MBConv1 3×3 is the same)."""
    stem, first = make_divisible(STEM_WIDTH * width_mult), make_divisible(FIRST_WIDTH * width_mult)
    return nn.Sequential(*_conv_bn(in_channels, stem, 3, stride), *_conv_bn(stem, stem, 3, groups=stem),
                         *_conv_bn(stem, first, 1, act=False))


class MobileHead(nn.Module):
    """1×1 conv to 1280, BN, ReLU6, global average pooling, dropout (features), then the classifier."""

    def __init__(self, c_in: int, width: int, num_classes: int, dropout: float, normalised: bool):
        super().__init__()
        self.mix = nn.Sequential(*_conv_bn(c_in, width, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.feature_dim = width
        self.classifier = make_classifier(width, num_classes, normalised)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.pool(self.mix(x)).flatten(1))


# --- the derived architecture -----------------------------------------------------------------
@dataclass(frozen=True)
class MobileArch:
    """A derived S₂ network: per searchable layer the candidates it sums (one or two), and the space
    instance (layout, width multiplier) they were searched in. Saved as JSON with "space": "s2"."""

    layers: tuple[tuple[str, ...], ...]
    layout: str = "imagenet"
    width_mult: float = 1.0
    name: str | None = None
    space = SPACE  # the derived-architecture types' common tag (the DARTS Genotype's is "darts")

    def __post_init__(self) -> None:
        where = f"S2 architecture {self.name!r}" if self.name else "S2 architecture"
        if self.layout not in LAYOUTS:
            raise LtnasError(f"{where}: unknown layout '{self.layout}'; choose {', '.join(LAYOUTS)}")
        if not self.width_mult > 0:
            raise LtnasError(f"{where}: width_mult must be positive, got {self.width_mult}")
        specs = layer_specs(self.layout, self.width_mult)
        if len(self.layers) != len(specs):
            raise LtnasError(f"{where} has {len(self.layers)} layers; S2 has {len(specs)} searchable layers")
        for index, (ops, spec) in enumerate(zip(self.layers, specs)):
            if not 1 <= len(ops) <= 2 or len(set(ops)) != len(ops):
                raise LtnasError(f"{where}, layer {index}: {list(ops)}; a layer sums one or two different candidates")
            for op in ops:
                if op not in S2_PRIMITIVES:
                    raise LtnasError(f"{where}, layer {index}: unknown candidate '{op}'; choose from "
                                     f"{', '.join(S2_PRIMITIVES)}")
                if op == SKIP and not spec.skippable:
                    raise LtnasError(f"{where}, layer {index}: skip_connect cannot join {spec.c_in} to {spec.c_out} "
                                     f"channels at stride {spec.stride}; choose an ib_* candidate")

    def skips(self) -> int:
        """Layers removed: those whose only candidate is skip."""
        return sum(ops == (SKIP,) for ops in self.layers)

    def describe(self) -> str:
        return "; ".join(f"{i}: {' + '.join(ops)}" for i, ops in enumerate(self.layers))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"space": SPACE}
        if self.name:
            data["name"] = self.name
        return {**data, "layout": self.layout, "width_mult": self.width_mult, "layers": [list(ops) for ops in self.layers]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str | None = None, source: str = "S2 architecture") -> "MobileArch":
        if data.get("space") != SPACE or not isinstance(data.get("layers"), list):
            raise LtnasError(f"{source} is not an S2 architecture; it needs \"space\": \"s2\" and a \"layers\" list")
        try:
            layers = tuple(tuple(str(op) for op in ops) for ops in data["layers"])
            width = float(data.get("width_mult", 1.0))
        except (TypeError, ValueError):
            raise LtnasError(f"{source}: every layer must be a list of candidate names") from None
        return cls(layers, str(data.get("layout", "imagenet")), width, name=name or data.get("name"))

    def to_json(self, path: str | Path) -> None:
        atomic_write_text(json.dumps(self.to_dict(), indent=1) + "\n", path)

    @classmethod
    def from_json(cls, path: str | Path) -> "MobileArch":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LtnasError(f"cannot read S2 architecture file {path} ({exc.__class__.__name__}); give its JSON") from None
        return cls.from_dict(data, name=data.get("name", path.stem) if isinstance(data, dict) else None,
                             source=f"S2 architecture file {path}")


def derive_mobile(weights: torch.Tensor, primitives: Sequence[str], specs: Sequence[LayerSpec], rule: str = "darts",
                  threshold: float = 0.85, layout: str = "imagenet", width_mult: float = 1.0) -> MobileArch:
    """Discretise relaxed layer weights (rows = layers, columns = `primitives`; absent candidates ignored).

    darts:     per layer, argmax_i w_i.
    threshold: per layer, {i : w_i ≥ threshold}, the strongest two if more; if empty, skip where the
               shapes allow it, else argmax_i w_i (FairDARTS Sec. 5.3).
    """
    if rule not in ("darts", "threshold"):
        raise LtnasError(f"unknown derivation rule '{rule}'; choose darts or threshold")
    weights = torch.as_tensor(weights, dtype=torch.float64)
    if weights.shape != (len(specs), len(primitives)):
        raise LtnasError(f"relaxed weights of shape {tuple(weights.shape)} do not match {len(specs)} layers × "
                         f"{len(primitives)} candidates")
    layers = []
    for row, spec in zip(weights, specs):
        # sorted() is stable: ties keep the lower column, as the DARTS derivation does
        ranked = sorted(available(spec, primitives), key=lambda i: -row[i].item())
        if rule == "darts":
            chosen = ranked[:1]
        else:
            chosen = [i for i in ranked if row[i].item() >= threshold][:2]
            if not chosen:
                layers.append((SKIP,) if spec.skippable else (primitives[ranked[0]],))
                continue
        layers.append(tuple(primitives[i] for i in chosen))
    return MobileArch(tuple(layers), layout, width_mult)


# --- the supernet -----------------------------------------------------------------------------
class MixedLayer(nn.Module):
    """Every available candidate of one layer; `forward` is Σ_i w_i · op_i(x)."""

    def __init__(self, spec: LayerSpec, primitives: Sequence[str]):
        super().__init__()
        self.columns = available(spec, primitives)
        self.ops = nn.ModuleList(make_candidate(primitives[i], spec) for i in self.columns)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, constant: list[float] | None = None,
                sampled: int | None = None) -> torch.Tensor:
        """`sampled`: the one column that runs (GDAS), as w_k · op_k(x); `constant`: the weights as numbers
        when no gradient reaches them, so that exact zeros are skipped."""
        if sampled is not None:
            return weights[sampled] * self.ops[self.columns.index(sampled)](x)
        out = None
        for column, op in zip(self.columns, self.ops):
            if constant is not None and constant[column] == 0.0:
                continue
            term = weights[column] * op(x)
            out = term if out is None else out + term
        return out if out is not None else self.ops[0](x).mul(0.0)


class MobileSearchNetwork(nn.Module):
    """The S₂ supernet under a strategy's relaxation: the same interface as the DARTS `SearchNetwork`
    (`arch_parameters`, `relaxed_weights`, `forward_weights`, `features`, `genotype`), with one cell kind,
    "layers"."""

    def __init__(self, num_classes: int, in_channels: int = 3, *, layout: str = "imagenet", width_mult: float = 1.0,
                 primitives: Sequence[str] = S2_PRIMITIVES, relaxation: str | Relaxation = "softmax",
                 alpha_init_std: float = 1e-3, normalised: bool = False, channels_last: bool = False):
        super().__init__()
        if layout not in LAYOUTS:
            raise LtnasError(f"unknown S2 layout '{layout}'; choose {', '.join(LAYOUTS)}")
        self.layout, self.width_mult, self.in_channels, self.num_classes = layout, width_mult, in_channels, num_classes
        self.primitives = tuple(primitives)
        if not any(name != SKIP for name in self.primitives):
            raise LtnasError("S2 candidates must include at least one ib_* block; add one to search.s2.candidates")
        self.relaxation = make_relaxation(relaxation)
        self.channels_last = channels_last
        self.specs = layer_specs(layout, width_mult)
        self.stem = make_stem(in_channels, LAYOUTS[layout][0], width_mult)
        self.layers = nn.ModuleList(MixedLayer(spec, self.primitives) for spec in self.specs)
        self.head = MobileHead(self.specs[-1].c_out, head_width(width_mult), num_classes, 0.0, normalised)
        self.classifier = self.head.classifier
        self.feature_dim = self.head.feature_dim
        self.alpha_layers = nn.Parameter(alpha_init_std * torch.randn(len(self.specs), len(self.primitives)))
        # Layers grouped by their available columns: the relaxation runs over each group's columns only.
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, layer in enumerate(self.layers):
            groups.setdefault(tuple(layer.columns), []).append(index)
        self._groups = [(torch.tensor(rows), torch.tensor(columns)) for columns, rows in groups.items()]

    # --- weights and architecture kept apart (as SearchNetwork) ---------------------------------
    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Operation weights only; α has its own optimizer."""
        for name, param in super().named_parameters(prefix, recurse, remove_duplicate):
            if name.removeprefix(prefix + "." if prefix else "") != "alpha_layers":
                yield name, param

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha_layers]

    # --- relaxation ---------------------------------------------------------------------------
    def _relaxed(self, relax) -> tuple[torch.Tensor, list[int] | None]:
        """(weights (layers, candidates) with absent candidates 0, sampled column per layer or None):
        `relax` maps each group's α (rows, its columns) to ForwardWeights."""
        alpha = self.alpha_layers
        out = alpha.new_zeros(alpha.shape)
        sampled: list[int] | None = [0] * len(self.specs)
        for rows, columns in self._groups:
            result = relax(alpha[rows][:, columns])
            out = out.index_put((rows.unsqueeze(1), columns.unsqueeze(0)), result.weights)
            if result.sampled is None:
                sampled = None
            elif sampled is not None:
                for row, pick in zip(rows.tolist(), result.sampled):
                    sampled[row] = int(columns[pick])
        return out, sampled

    def relaxed_weights(self) -> dict[str, torch.Tensor]:
        """{'layers': (19, candidates)}: the relaxation's `read` over each layer's available candidates."""
        return {"layers": self._relaxed(lambda a: ForwardWeights(self.relaxation.read(a)))[0]}

    @property
    def read_symbol(self) -> str:
        """What `relaxed_weights` gives, by name: the relaxation's read, "softmax(α)" or "σ(α)" (S₂ has no mixing)."""
        return self.relaxation.symbol

    def forward_weights(self) -> dict[str, ForwardWeights]:
        weights, sampled = self._relaxed(lambda a: self.relaxation.forward(a, self.training))
        return {"layers": ForwardWeights(weights, sampled)}

    # --- forward ------------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        forward = self.forward_weights()["layers"]
        weights, sampled = forward.weights, forward.sampled
        constant = None if weights.requires_grad or sampled is not None else weights.tolist()
        x = nhwc_stem(self.stem, x) if self.channels_last else self.stem(x)
        for index, layer in enumerate(self.layers):
            x = layer(x, weights[index], None if constant is None else constant[index],
                      None if sampled is None else sampled[index])
        return self.head.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def genotype(self, rule: str = "darts", threshold: float = 0.85) -> MobileArch:
        """The derived architecture (`derive_mobile`) of the current relaxed weights."""
        weights = self.relaxed_weights()["layers"].detach().cpu()
        return derive_mobile(weights, self.primitives, self.specs, rule, threshold, self.layout, self.width_mult)


# --- the discrete network ---------------------------------------------------------------------
class ChosenLayer(nn.Module):
    """Σ of a layer's kept candidates. Drop-path (train.drop_path) drops the IBs of a layer that also keeps
    skip, as drop-connect in MobileNet-style residual blocks (ltnas's choice; ProxylessNAS trains without)."""

    def __init__(self, ops: Sequence[str], spec: LayerSpec):
        super().__init__()
        self.names = tuple(ops)
        self.ops = nn.ModuleList(make_candidate(name, spec) for name in ops)
        self.residual = SKIP in self.names

    def forward(self, x: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        out = None
        for op in self.ops:
            term = op(x)
            if self.training and drop_prob > 0 and self.residual and not isinstance(op, nn.Identity):
                keep = 1.0 - drop_prob
                term = term / keep * torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
            out = term if out is None else out + term
        return out


class MobileNetwork(nn.Module):
    """The network of a `MobileArch`: stem, its 19 layers, the head (dropout before the classifier)."""

    def __init__(self, arch: MobileArch, num_classes: int, in_channels: int = 3, normalised: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        self.arch = arch
        self.drop_path_prob = 0.0  # set by the retraining loop
        specs = layer_specs(arch.layout, arch.width_mult)
        self.stem = make_stem(in_channels, LAYOUTS[arch.layout][0], arch.width_mult)
        self.layers = nn.ModuleList(ChosenLayer(ops, spec) for ops, spec in zip(arch.layers, specs))
        self.head = MobileHead(specs[-1].c_out, head_width(arch.width_mult), num_classes, dropout, normalised)
        self.classifier = self.head.classifier

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, self.drop_path_prob)
        return self.head.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def network_cost(model: nn.Module, in_channels: int, image_size: int) -> tuple[int, int]:
    """(trainable parameters, multiply-adds per image; `multiply_adds`: convolutions and linear layers,
    as MobileNetV2 and ProxylessNAS count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad), multiply_adds(model, in_channels,
                                                                                              image_size)


# --- the seams (ltnas.methods.SPACES) -----------------------------------------------------------
def build_search_network(config, data, device, options: dict) -> MobileSearchNetwork:
    """The S₂ supernet of `config.search` for `data`; `options` are the strategy's `network_options`
    (its relaxation; a strategy that brings its own edge mixing, PC-DARTS', is refused)."""
    from ltnas.runs import use_channels_last
    from ltnas.space.heads import uses_normalised_classifier

    cfg = config.search
    if "mixing" in options:
        raise LtnasError(f"search.method {cfg.method} changes the DARTS cell's edges (its own mixing), which S2's "
                         "chain of layers does not have; use darts, fairdarts, ssf or gdas with search.space: s2")
    return MobileSearchNetwork(
        data.num_classes, data.channels, layout=resolve_layout(cfg.s2.layout, data.image_size),
        width_mult=cfg.s2.width_mult, primitives=cfg.s2.candidates, relaxation=options["relaxation"],
        alpha_init_std=cfg.alpha_init_std, normalised=uses_normalised_classifier(cfg.longtail),
        channels_last=use_channels_last(cfg.channels_last, device, "search.channels_last"))


def build_network(config, data, arch: MobileArch) -> MobileNetwork:
    """The retrained network of `arch` (train.longtail's classifier, search.s2.dropout before it)."""
    from ltnas.space.heads import uses_normalised_classifier

    return MobileNetwork(arch, data.num_classes, data.channels, uses_normalised_classifier(config.train.longtail),
                         config.search.s2.dropout)


def network_spec(config, data, arch: MobileArch) -> dict:
    """The model file's `network` entry (ltnas.model_io) of `build_network`."""
    from ltnas.space.heads import uses_normalised_classifier

    return {"name": SPACE, "kwargs": {"arch": arch.to_dict(), "num_classes": data.num_classes,
                                      "in_channels": data.channels,
                                      "normalised": uses_normalised_classifier(config.train.longtail),
                                      "dropout": config.search.s2.dropout}}


def network_from_spec(arch: dict, num_classes: int, in_channels: int, normalised: bool = False,
                      dropout: float = 0.0) -> MobileNetwork:
    """model_io's builder of a model file's S₂ network."""
    return MobileNetwork(MobileArch.from_dict(arch), num_classes, in_channels, normalised, dropout)
