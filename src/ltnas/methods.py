"""The method table: every search method ltnas runs, declared once.

An entry says what a method is made of — its paper's name, the `search` settings its authors use
(applied to the keys a config leaves unset), the config sections it reads, its search strategy, and
its stages: the whole run, the stand-alone search, the re-evaluation of a finished run, and the
extra sections of its report. The pipeline, the CLI, `compare` and the report read this table and
name no method themselves (docs/ARCHITECTURE.md, "Add a method").

The network registry (NETWORKS) does the same for what the retrain stage trains (`train.network`: a
genotype's cell network or a hand-designed baseline), and QUICKSTART lists what `ltnas quickstart` compares.

Stages and strategies are named as "module:attribute" and imported only when used, so that reading
a config (which validates `search.method` against this table) never imports torch.

Nothing here imports from ltnas besides `errors`: config.py, runs.py and the stages all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Callable

from ltnas.errors import LtnasError

# DARTS primitive order, as plain names (config.py re-exports it).
PRIMITIVES: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
    "dil_conv_5x5",
)

# Stages of the methods that search a cell, retrain it and evaluate it (ltnas/stages/standard.py).
STANDARD_RUN = "ltnas.stages.standard:run"
STANDARD_SEARCH = "ltnas.stages.standard:search_only"
STANDARD_EVALUATE = "ltnas.stages.standard:evaluate_searched"
STANDARD_NETWORK = "ltnas.stages.search:build_search_network"


@dataclass(frozen=True)
class Method:
    """One search method and everything ltnas needs to run, compare and report it."""

    name: str  # the value of `search.method`
    title: str  # how its paper names it: comparison tables, quickstart, reports
    summary: str  # one line for `search.method`'s description
    strategy: str | None = None  # "module:Class" of its search strategy (ltnas.search), if it has one
    # "module:function" (config, dataset, device) -> the network it searches; None: built by its own run
    network: str | None = STANDARD_NETWORK
    # the authors' values of shared `search` keys where they differ from ltnas's defaults (DARTS's), nested as
    # the config is ({"sgd": {"lr": 0.1}}); its own settings are plain defaults of its section (search.NAME)
    search_defaults: dict[str, Any] = field(default_factory=dict)
    sections: tuple[str, ...] = ()  # config sections only some methods read that this one reads
    run: str = STANDARD_RUN  # "module:function" (config, run) -> eval.json dict: the whole run
    search: str = STANDARD_SEARCH  # (config, run) -> Genotype: `ltnas search`
    genotype_file: str = "search/genotype.json"  # where `search` writes the genotype, in the run folder
    evaluate: str = STANDARD_EVALUATE  # (ctx) -> eval.json dict: `ltnas eval` of a finished searched run
    # (place, "module:function"): (RunFiles, plots drawn) -> a markdown section of report.md, "" when the run
    # folder lacks its files; place is "search" (after the search section) or "evaluation" (after it)
    report_sections: tuple[tuple[str, str], ...] = ()
    evaluates_supernet: bool | None = None  # True: never retrains (its searched network is evaluated);
    # False: always retrains; None: as `eval.model` says
    searches_with_longtail: bool = True  # its search reads `search.longtail` (the loss and sampler)
    searches: bool = True  # False: it draws its architecture without searching (compare counts it a baseline)
    single_process: bool = False  # refuses torchrun
    # Barlow Twins (search.ssl) in its search: "always" (SSF-NAS: its strategy is another's plus BT), "option"
    # (search.ssl.enabled adds BT to its strategy: ltnas.search.ssf.with_barlow_twins), "no" (no DARTS-style
    # weight and α steps for it to enter)
    barlow_twins: str = "no"
    check: Callable[[Any], str | None] | None = None  # (SearchConfig) -> a problem with its settings, or None
    spaces: tuple[str, ...] = ("darts",)  # the search spaces (SPACES, `search.space`) its search runs in
    # What its paper calls a dominant operation (the reports' dominant-operation and skip-connection counts): None —
    # per intermediate node the operations of its 2 strongest incoming edges (per S₂ layer, the strongest operation),
    # DARTS's reading as FairDARTS (Chu et al., 2020) counts it in Sec. 3.1; a number t — every operation whose
    # relaxed weight exceeds t (FairDARTS' footnote 5: σ > 0.75, independent sigmoids have no top-k)
    dominant_threshold: float | None = None

    def strategy_class(self, search=None) -> type:
        """Its search strategy; with Barlow Twins added when `search` (a SearchConfig) turns it on."""
        if self.strategy is None:
            raise LtnasError(f"search.method {self.name} has no search strategy of the shared search stage")
        strategy = resolve(self.strategy)
        if search is not None and self.uses_barlow_twins(search):
            strategy = resolve("ltnas.search.ssf:with_barlow_twins")(strategy)
        return strategy

    def uses_barlow_twins(self, search) -> bool:
        """Whether a search with `search` (a SearchConfig) adds Barlow Twins (and so makes views)."""
        return self.barlow_twins == "always" or (self.barlow_twins == "option" and search.ssl.enabled)

    def barlow_twins_problem(self, search) -> str | None:
        """What is wrong with `search`'s Barlow Twins settings for this method, or None."""
        if self.barlow_twins == "always" and not search.ssl.enabled:
            return (f"search.method {self.name} always searches with Barlow Twins; leave search.ssl.enabled on "
                    "(for the search without it choose the method it extends, e.g. fairdarts)")
        if self.barlow_twins == "no" and search.ssl.enabled:
            takes = ", ".join(name for name, entry in METHODS.items() if entry.barlow_twins != "no")
            return f"search.method {self.name} has no weight and α steps for Barlow Twins (search.ssl.enabled); " \
                   f"it combines with {takes}"
        if self.uses_barlow_twins(search) and search.order != "first":
            return "Barlow Twins (search.ssl.enabled) searches with first-order α gradients only; set search.order: first"
        return None

    def build_network(self, config, dataset, device):
        """The supernet this method searches, for `config` and `dataset`, on `device`'s layout."""
        if self.network is None:
            raise LtnasError(f"search.method {self.name} builds its networks within its own run")
        return resolve(self.network)(config, dataset, device)

    def retrains(self, config) -> bool:
        """Whether a run of `config` (a RunConfig with this method) retrains a network."""
        if config.train.genotype or config.train.network != "cell":
            return True
        if self.evaluates_supernet is None:
            return config.eval.model != "supernet"
        return not self.evaluates_supernet

    def reads(self, config) -> set[str]:
        """The optional config sections a run of `config` reads (see OPTIONAL_SECTIONS)."""
        space_section = f"search.{config.search.space}"  # a space's own settings (search.s2)
        return (set(self.sections) | ({"train"} if self.retrains(config) else set())
                | ({"search.ssl"} if self.uses_barlow_twins(config.search) else set())
                | ({space_section} if space_section in OPTIONAL_SECTIONS else set()))


def resolve(target: str) -> Any:
    """"module:attribute" → the attribute, imported now."""
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def _first_order_only(message: str) -> Callable[[Any], str | None]:
    return lambda search: message if search.order != "first" else None


def _bbn_settings(search) -> str | None:
    if search.longtail.model_dump() != type(search.longtail)().model_dump():
        return "the bbn search re-samples through its class-balanced branch; leave search.longtail unset"
    return None


# The authors' settings for FairDARTS (Chu et al., 2020), for fairdarts and ssf (SSF-NAS is FairDARTS
# plus Barlow Twins).
FAIRDARTS_DEFAULTS: dict[str, Any] = {
    "cell": {"primitives": [name for name in PRIMITIVES if name != "none"]},
    "batch_size": 128,
    "sgd": {"lr": 0.005, "lr_min": 0.001},
    "arch_lr": 3e-3,
    # Adam betas (0.9, 0.999): the FairDARTS code's `arch_lr_gamma` 0.9 is β1 (DARTS uses 0.5).
    "arch_betas": (0.9, 0.999),
    "order": "first",
    "derive": "threshold",
}
# FairDARTS' dominant operations (its footnote 5): σ(α) > 0.75.
FAIRDARTS_DOMINANT = 0.75

def _pcdarts_settings(search) -> str | None:
    channels = search.cell.init_channels
    if channels % search.pcdarts.k:
        return (f"cell.init_channels ({channels}) must be a multiple of pcdarts.k ({search.pcdarts.k}): each "
                "edge splits its channels into k parts")
    if search.pcdarts.arch_start_epoch >= search.epochs:
        return (f"pcdarts.arch_start_epoch ({search.pcdarts.arch_start_epoch}) is not below epochs ({search.epochs}), "
                "so α would never be updated; lower it (the authors': 15 of 50)")
    return None


def _noise_settings(search) -> str | None:
    if "skip_connect" not in search.cell.primitives:
        return ("darts_noise puts its noise on skip_connect, which search.cell.primitives lacks; add skip_connect or "
                "use search.method: darts")
    return None


def _cures_settings(search) -> str | None:
    cures = search.cures
    if cures.skip_dropout > 0 and "skip_connect" not in search.cell.primitives:
        return ("search.cures.skip_dropout drops out skip_connect, which search.cell.primitives lacks; add "
                "skip_connect or set search.cures.skip_dropout: 0")
    if cures.stop_skips is not None and "skip_connect" not in search.cell.primitives:
        return ("search.cures.stop_skips counts skip_connect, which search.cell.primitives lacks; add skip_connect or "
                "unset search.cures.stop_skips")
    if (cures.skip_dropout > 0 or cures.op_dropout > 0 or cures.stop_skips is not None) and search.space != "darts":
        return ("search.cures' dropout and skip count act on the DARTS cell; with search.space: "
                f"{search.space} use only search.cures.stop_hessian")
    return None


def _random_settings(search) -> str | None:
    if search.random.skip_rule == "exactly" and search.random.skips > 2 * search.cell.nodes:
        return (f"search.random.skips ({search.random.skips}) exceeds the {2 * search.cell.nodes} edges of a cell "
                f"(search.cell.nodes = {search.cell.nodes}); lower it")
    if search.random.skips > 0 and search.random.skip_rule == "exactly" and "skip_connect" not in search.cell.primitives:
        return ("search.random asks for skip connections but search.cell.primitives lacks skip_connect; add it or set "
                "search.random.skips: 0")
    return None


IMBNAS_SECTIONS = ("source_data", "supernet", "evolve", "adapt")
# Strategies that only relax α (softmax, sigmoid, Gumbel samples) run in every space; PC-DARTS (its partial-channel
# edges and per-node β), BBN (two-branch cell supernet) and IMB-NAS (its own cell supernet) are cell-space methods.
ANY_SPACE = ("darts", "s2")

METHODS: dict[str, Method] = {method.name: method for method in (
    Method("darts", "DARTS", "DARTS (Liu et al., 2019): softmax relaxation, first or second order",
           strategy="ltnas.search.darts:DartsSearch", sections=("search.cures",), spaces=ANY_SPACE,
           barlow_twins="option", check=_cures_settings),
    Method("fairdarts", "FairDARTS", "FairDARTS (Chu et al., 2020): sigmoid + zero-one loss, the authors' defaults",
           strategy="ltnas.search.fairdarts:FairDartsSearch", search_defaults=FAIRDARTS_DEFAULTS,
           sections=("search.fairdarts",), spaces=ANY_SPACE, barlow_twins="option",
           dominant_threshold=FAIRDARTS_DOMINANT),
    Method("ssf", "SSF-NAS", "SSF-NAS: fairdarts + Barlow Twins self-supervision (search.ssl)",
           strategy="ltnas.search.ssf:SsfSearch", search_defaults={**FAIRDARTS_DEFAULTS, "ssl": {"enabled": True}},
           sections=("search.fairdarts", "search.ssl"), barlow_twins="always", spaces=ANY_SPACE,
           dominant_threshold=FAIRDARTS_DOMINANT,
           check=_first_order_only("ssf searches with first-order α gradients only (as FairDARTS); set "
                                   "search.order=first")),
    # HLS (Tang, 2024): batch 128 per sampler, weights and α both from lr 0.02 (cosine), first order.
    Method("bbn", "BBN-HLS", "two-branch (BBN) DARTS with heterogeneous LR scheduling, HLS (Tang, 2024)'s settings "
           "(search.bbn)",
           search_defaults={"batch_size": 128, "sgd": {"lr": 0.02}, "arch_lr": 0.02, "order": "first"},
           sections=("search.bbn",), network="ltnas.stages.bbn:build_network", run="ltnas.stages.bbn:run_bbn", search="ltnas.stages.bbn:search_only",
           evaluate="ltnas.stages.bbn:reevaluate",
           report_sections=(("search", "ltnas.report.markdown:two_branch_search_section"),
                            ("evaluation", "ltnas.report.markdown:mu_sweep_section")),
           evaluates_supernet=True, searches_with_longtail=False, single_process=True, check=_bbn_settings),
    # PC-DARTS (Xu et al., 2020), the authors' train_search.py: batch 256, SGD lr 0.1 → 0 (cosine), α (and β)
    # Adam lr 6e-4; momentum 0.9, wd 3e-4, α betas (0.5, 0.999) and wd 1e-3, 50 epochs are DARTS' defaults
    # already. α updates start at pcdarts.arch_start_epoch (15).
    Method("pcdarts", "PC-DARTS", "PC-DARTS (Xu et al., 2020): partial channels + edge normalisation (search.pcdarts)",
           strategy="ltnas.search.pcdarts:PcDartsSearch",
           search_defaults={"batch_size": 256, "sgd": {"lr": 0.1, "lr_min": 0.0}, "arch_lr": 6e-4},
           sections=("search.pcdarts",), check=_pcdarts_settings, barlow_twins="option"),
    # GDAS (Dong & Yang, 2019), the authors' GDAS-NASNet-CIFAR configs: 250 epochs, batch 256, SGD lr 0.025 →
    # 0.001 (cosine), wd 5e-4, α Adam lr 3e-4, betas (0.5, 0.999), wd 1e-3, first order. (Their SGD is Nesterov;
    # ltnas's weight optimizer is plain momentum SGD for every method.)
    Method("gdas", "GDAS", "GDAS (Dong & Yang, 2019): one Gumbel-sampled operation per edge, τ annealed (search.gdas)",
           strategy="ltnas.search.gdas:GdasSearch",
           search_defaults={"epochs": 250, "batch_size": 256,
                            "sgd": {"lr": 0.025, "lr_min": 0.001, "weight_decay": 5e-4},
                            "arch_lr": 3e-4, "order": "first"},
           sections=("search.gdas",), spaces=ANY_SPACE, barlow_twins="option",
           check=_first_order_only("the gdas search is first order only (as the authors'); set search.order: first")),
    # FairDARTS (Chu et al., 2020), Table 3, experiment 2: DARTS with noisy skip connections. The authors' code
    # (xiaomi-automl/FairDARTS, darts/) runs it first order with DARTS' settings, except α Adam betas (0.9, 0.999)
    # (its `arch_lr_gamma` 0.9, as for FairDARTS).
    Method("darts_noise", "DARTS + Gaussian", "DARTS with cosine-decayed Gaussian noise on the skip connections, "
           "FairDARTS (Chu et al., 2020)'s Table 3 (search.noise)",
           strategy="ltnas.search.darts_noise:NoisyDartsSearch", search_defaults={"arch_betas": (0.9, 0.999)},
           sections=("search.noise",), check=_noise_settings, barlow_twins="option"),
    # FairDARTS (Chu et al., 2020), Table 3, experiment 1: no search; a cell pair drawn at random from the space
    # regularised to M skip connections (optionally above a multiply-add floor), then retrained and evaluated.
    Method("random", "Random", "random cells with M skip connections (and a multiply-add floor), no "
           "search: FairDARTS (Chu et al., 2020)'s Table 3 baseline (search.random)",
           network=None, sections=("search.random",), run="ltnas.stages.random_sampling:run",
           search="ltnas.stages.random_sampling:sample_only", evaluate="ltnas.stages.evaluate:evaluate_retrained",
           report_sections=(("search", "ltnas.report.random_sampling:random_section"),), evaluates_supernet=False,
           searches_with_longtail=False, searches=False, check=_random_settings),
    Method("imbnas", "IMB-NAS", "IMB-NAS (Yao, 2024): one-shot supernet + evolution + adaptation (the supernet, "
           "evolve and adapt sections)",
           sections=IMBNAS_SECTIONS, run="ltnas.stages.imbnas:run_imbnas", search="ltnas.stages.imbnas:evolve_only",
           genotype_file="evolve/genotype.json", evaluate="ltnas.stages.evaluate:evaluate_retrained", network=None,
           report_sections=(("search", "ltnas.report.evolution:imbnas_section"),), evaluates_supernet=False,
           searches_with_longtail=False, single_process=True),
)}

# --- search spaces --------------------------------------------------------------------------------
# FairDARTS' S₂ candidates (ltnas/space/mobile.py): inverted bottlenecks IB(kernel, expansion), and skip.
S2_PRIMITIVES: tuple[str, ...] = ("ib_k3_e3", "ib_k3_e6", "ib_k5_e3", "ib_k5_e6", "ib_k7_e3", "ib_k7_e6", "skip_connect")


@dataclass(frozen=True)
class Space:
    """A search space (`search.space`): its supernet, its derived-architecture type and the discrete network
    built from one. A new space is one module holding these, plus a row here."""

    name: str  # the value of `search.space`, and the "space" tag of its architecture files
    title: str
    summary: str
    # "module:function" (config, dataset, device, strategy's network_options) -> the supernet
    supernet: str
    architecture: str  # "module:Class": from_dict(data, name, source), to_dict, to_json, describe, name
    build: str  # "module:function" (config, dataset, architecture) -> the retrained network, freshly initialised
    spec: str  # "module:function" (config, dataset, architecture) -> the model file's network spec (ltnas.model_io)


SPACES: dict[str, Space] = {entry.name: entry for entry in (
    Space("darts", "DARTS cell (S₁)", "DARTS' cell: search.cell.layers cells of search.cell.nodes nodes, search.cell.primitives "
          "on every edge", supernet="ltnas.stages.search:build_cell_supernet",
          architecture="ltnas.space.genotype:Genotype", build="ltnas.stages.retrain:build_genotype_network",
          spec="ltnas.stages.retrain:genotype_network_spec"),
    Space("s2", "MobileNetV2-style (S₂)", "FairDARTS' S₂ (ProxylessNAS' mobile space): 19 layers of inverted "
          "bottlenecks k3/5/7 × e3/6 or skip (search.s2)", supernet="ltnas.space.mobile:build_search_network",
          architecture="ltnas.space.mobile:MobileArch", build="ltnas.space.mobile:build_network",
          spec="ltnas.space.mobile:network_spec"),
)}


def space(name: str) -> Space:
    if name not in SPACES:
        raise LtnasError(f"unknown search space '{name}'; choose from {', '.join(SPACES)}")
    return SPACES[name]


# Sections only some methods read (a run folder's saved config leaves them out when unused and default).
OPTIONAL_SECTIONS = ("search.fairdarts", "search.ssl", "search.bbn", "search.pcdarts", "search.gdas", "search.noise",
                     "search.cures",
                     "search.random", "search.s2", "train", *IMBNAS_SECTIONS,
                     "rank")  # `ltnas rank`'s own section: no method reads it


def method(name: str) -> Method:
    if name not in METHODS:
        raise LtnasError(f"unknown search method '{name}'; choose from {', '.join(METHODS)}")
    return METHODS[name]


def saved_method(config: dict | None) -> Method | None:
    """The table entry of a saved run config's `search.method`: how reports read a finished run (None where the
    config names no method this table knows)."""
    return METHODS.get(((config or {}).get("search") or {}).get("method"))


def report_sections(place: str) -> list[str]:
    """Every method's report sections at `place`, in table order. The report shows each whose files the
    run folder has (so `ltnas evolve` with any config still reports its evolution)."""
    return [target for entry in METHODS.values() for where, target in entry.report_sections if where == place]


@dataclass(frozen=True)
class Network:
    """A network the retrain stage can train (`train.network`): the cell network of a genotype, or a
    hand-designed baseline trained with the same recipe and long-tail plug-ins, with nothing searched."""

    name: str  # the value of `train.network`
    title: str  # how comparison tables and reports name it
    summary: str
    # "module:function" (config, dataset, genotype | None) -> the network, freshly initialised
    build: str = "ltnas.stages.retrain:build_baseline_network"
    # "module:function" (config, dataset, genotype | None) -> the model file's network spec (ltnas.model_io)
    spec: str = "ltnas.stages.retrain:baseline_network_spec"
    needs_genotype: bool = False  # trains a genotype (searched, or train.genotype)


NETWORKS: dict[str, Network] = {network.name: network for network in (
    Network("cell", "cell", "the network of a genotype: the searched one, or train.genotype (DARTS's evaluation "
            "network: train.cell (C, cells), auxiliary head)",
            build="ltnas.stages.retrain:build_cell_network", spec="ltnas.stages.retrain:cell_network_spec",
            needs_genotype=True),
    *[Network(f"resnet{depth}", f"ResNet-{depth}", f"the CIFAR ResNet-{depth} (He et al., 2016; option-A shortcuts)")
      for depth in (20, 32, 44, 56, 110)],
    Network("cnn", "CNN", "a small plain CNN (ltnas/space/baselines.py)"),
)}


def network(name: str) -> Network:
    if name not in NETWORKS:
        raise LtnasError(f"unknown network '{name}'; choose {', '.join(NETWORKS)}")
    return NETWORKS[name]


# What `ltnas quickstart` compares: the three searches, then what they must beat — a small CNN, the CIFAR
# ResNet-32 (baseline networks) and DARTS_V2 (a published genotype: a cell searched on balanced CIFAR-10),
# trained with the same recipe and long-tail plug-ins.
QUICKSTART = ("darts", "fairdarts", "ssf", "cnn", "resnet32", "darts_v2")


def quickstart_methods() -> list[str]:
    return list(QUICKSTART)
