"""Genotypes: a discrete cell as a general edge list, derivation from relaxed weights, a registry.

An edge is `(op, to_node, from_node)`; nodes 0 and 1 are the cell's two inputs and intermediate
nodes are numbered from 2. Unlike the DARTS text format (exactly two edges per node), the edge list
can hold any number of edges per node, which FairDARTS' threshold rule needs.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch

from ltnas.atomic import atomic_write_text
from ltnas.config import PRIMITIVES
from ltnas.errors import LtnasError

CELL_TYPES = ("normal", "reduce")


class Edge(NamedTuple):
    op: str
    to_node: int
    from_node: int


@dataclass(frozen=True)
class Genotype:
    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]
    name: str | None = None
    space = "darts"  # the search space it belongs to (ltnas.methods.SPACES); not a field

    def __post_init__(self) -> None:
        for kind in CELL_TYPES:
            _validate_cell(kind, getattr(self, kind), getattr(self, f"{kind}_concat"), self.name)

    def cell(self, kind: str) -> tuple[tuple[Edge, ...], tuple[int, ...]]:
        return getattr(self, kind), getattr(self, f"{kind}_concat")

    def live_cell(self, kind: str) -> tuple[list[Edge], list[int]]:
        """The cell with input-less nodes (and the edges leaving them) removed; see `prune_cell`."""
        return prune_cell(*self.cell(kind))

    # --- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.name:
            data["name"] = self.name
        for kind in CELL_TYPES:
            edges, concat = self.cell(kind)
            data[kind] = [list(edge) for edge in edges]
            data[f"{kind}_concat"] = list(concat)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str | None = None, source: str = "genotype") -> "Genotype":
        missing = [key for key in ("normal", "normal_concat", "reduce", "reduce_concat") if key not in data]
        if missing:
            raise LtnasError(f"{source} lacks {', '.join(missing)}; a genotype needs normal, normal_concat, reduce, reduce_concat")
        try:
            cells = {
                kind: tuple(Edge(str(op), int(to), int(frm)) for op, to, frm in data[kind]) for kind in CELL_TYPES
            }
            concats = {kind: tuple(int(n) for n in data[f"{kind}_concat"]) for kind in CELL_TYPES}
        except (TypeError, ValueError):
            raise LtnasError(f"{source}: every edge must be [op, to_node, from_node]; fix the edge list") from None
        return cls(
            cells["normal"], concats["normal"], cells["reduce"], concats["reduce"], name=name or data.get("name")
        )

    def to_json(self, path: str | Path) -> None:
        atomic_write_text(json.dumps(self.to_dict(), indent=1) + "\n", path)

    @classmethod
    def from_json(cls, path: str | Path) -> "Genotype":
        path = Path(path)
        data = read_architecture_json(path)
        return cls.from_dict(data, name=data.get("name", path.stem), source=f"genotype file {path}")

    @classmethod
    def from_darts_text(cls, text: str, name: str | None = None) -> "Genotype":
        """Parse `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), ...)`.

        In this format the entries come in pairs, pair i feeding intermediate node i + 2.
        """
        try:
            call = ast.parse(text.strip(), mode="eval").body
            if not isinstance(call, ast.Call):
                raise ValueError
            fields = {kw.arg: _literal(kw.value) for kw in call.keywords}
        except (SyntaxError, ValueError):
            raise LtnasError(
                "cannot parse the genotype text; expected Genotype(normal=[(op, input), ...], normal_concat=..., "
                "reduce=[...], reduce_concat=...)"
            ) from None
        data = {}
        for kind in CELL_TYPES:
            pairs = fields.get(kind, [])
            data[kind] = [[op, 2 + i // 2, source] for i, (op, source) in enumerate(pairs)]
            data[f"{kind}_concat"] = list(fields.get(f"{kind}_concat", []))
        return cls.from_dict(data, name=name, source="genotype text")

    def to_darts_text(self) -> str:
        """The DARTS text form; only for cells with exactly two edges per node, in node order."""
        parts = []
        for kind in CELL_TYPES:
            edges, concat = self.cell(kind)
            nodes = sorted({edge.to_node for edge in edges})
            if nodes != list(range(2, 2 + len(nodes))) or any(
                sum(edge.to_node == node for edge in edges) != 2 for node in nodes
            ):
                raise LtnasError(f"the {kind} cell does not have two edges per node; use the JSON edge list instead")
            ordered = sorted(edges, key=lambda edge: edge.to_node)  # stable: keeps the within-node order
            parts.append(f"{kind}={[(edge.op, edge.from_node) for edge in ordered]}")
            parts.append(f"{kind}_concat={list(concat)}")
        return f"Genotype({', '.join(parts)})"

    def describe(self) -> str:
        """Each cell as `node ← op(input), ...` in ltnas's one node naming (see `node_name`), e.g.
        `normal: 0 ← sep_conv_3x3(c_{k-2}), sep_conv_3x3(c_{k-1}); 1 ← ...; output concat(0, 1, 2, 3)`."""
        lines = []
        for kind in CELL_TYPES:
            edges, concat = self.cell(kind)
            inputs: dict[int, list[str]] = {}
            for e in sorted(edges, key=lambda e: e.to_node):  # stable: keeps the within-node order
                inputs.setdefault(e.to_node, []).append(f"{e.op}({node_name(e.from_node)})")
            listed = "; ".join(f"{node_name(node)} ← {', '.join(ops)}" for node, ops in inputs.items()) or "no edges"
            lines.append(f"{kind}: {listed}; output concat({', '.join(node_name(n) for n in concat)})")
        return "\n".join(lines)


def node_name(node: int) -> str:
    """ltnas's one naming of cell nodes, used by every listing, report and plot: the cell inputs are
    c_{k-2} and c_{k-1} (the outputs of the two previous cells), the intermediate nodes count from 0
    (as in the DARTS paper's figures). An edge is written `to ← from`. Genotype files keep the DARTS
    code's indices (0, 1 the inputs, 2.. the intermediate nodes): node_name(2) == "0"."""
    return ("c_{k-2}", "c_{k-1}")[node] if node < 2 else str(node - 2)


def prune_cell(edges: Sequence[Edge], concat: Sequence[int]) -> tuple[list[Edge], list[int]]:
    """Drop nodes that receive no input, the edges leaving them, and so on down the cell.

    A node is live if at least one edge reaches it from a live node (the inputs 0 and 1 are live).
    """
    live = {0, 1}
    for node in sorted({edge.to_node for edge in edges}):
        if any(edge.from_node in live for edge in edges if edge.to_node == node):
            live.add(node)
    kept = [edge for edge in edges if edge.to_node in live and edge.from_node in live]
    return kept, [node for node in concat if node in live]


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "range":
        return list(range(*(ast.literal_eval(arg) for arg in node.args)))
    return ast.literal_eval(node)


def _validate_cell(kind: str, edges: Sequence[Edge], concat: Sequence[int], name: str | None) -> None:
    where = f"genotype {name!r}" if name else "genotype"
    last = max((edge.to_node for edge in edges), default=1)  # the cell's nodes are those its edges reach
    for edge in edges:
        if edge.op not in PRIMITIVES or edge.op == "none":
            raise LtnasError(
                f"{where}, {kind} cell: unknown operation {edge.op!r}; use one of {', '.join(PRIMITIVES[1:])}"
            )
        if edge.to_node < 2:
            raise LtnasError(f"{where}, {kind} cell: edge {list(edge)} points into input node {edge.to_node}; "
                             "edges end at intermediate nodes (2, 3, ...)")
        if not 0 <= edge.from_node < edge.to_node:
            raise LtnasError(f"{where}, {kind} cell: edge {list(edge)} comes from node {edge.from_node}, which "
                             f"does not exist before node {edge.to_node}; an edge must come from an input (0, 1) "
                             "or an earlier node")
    for node in concat:
        if not 2 <= node <= last:
            raise LtnasError(f"{where}, {kind}_concat names node {node}, which the cell does not have; "
                             f"concatenate intermediate nodes 2..{last}")


def _refuse_edges_from_empty_nodes(genotype: Genotype, where: str) -> None:
    """A node without an input edge computes nothing, so an edge from it would be silently pruned
    while the run's genotype.json still listed it: a user's genotype file with one is refused like
    an edge from a missing node. (The published cells are kept as their authors published them:
    FairDARTS_c has such an edge, and is pruned, also when read back from a file; a concat of an
    empty node is harmless.)"""
    if any(replace(genotype, name=None) == replace(known, name=None) for known in published_genotypes().values()):
        return
    for kind in CELL_TYPES:
        edges, _ = genotype.cell(kind)
        fed = {edge.to_node for edge in edges}
        for edge in edges:
            if edge.from_node >= 2 and edge.from_node not in fed:
                raise LtnasError(f"{where}, {kind} cell: edge {list(edge)} comes from node {edge.from_node}, which "
                                 "has no input edge; give that node an input or remove the edge")


# --- derivation -------------------------------------------------------------------------------
def derive_genotype(
    weights_normal: torch.Tensor,
    weights_reduce: torch.Tensor,
    rule: str = "darts",
    threshold: float = 0.85,
    primitives: Sequence[str] = PRIMITIVES,
) -> Genotype:
    """Discretise relaxed edge weights (rows = edges in node order, columns = `primitives`).

    darts:     per node, the 2 incoming edges whose strongest non-`none` op is strongest; that op.
    threshold: FairDARTS; the same 2 edges, but an edge is kept only if its op's weight >= threshold.
               Nodes left without input are dropped, with the edges leaving them, and the
               surviving nodes are concatenated.
    """
    if rule not in ("darts", "threshold"):
        raise LtnasError(f"unknown derivation rule '{rule}'; choose darts or threshold")
    cells = {}
    for kind, weights in (("normal", weights_normal), ("reduce", weights_reduce)):
        edges = _strongest_edges(torch.as_tensor(weights, dtype=torch.float64), tuple(primitives))
        if rule == "threshold":
            edges = [(edge, weight) for edge, weight in edges if weight >= threshold]
        cells[kind] = prune_cell([edge for edge, _ in edges], _nodes(len(weights)))
    (normal, normal_concat), (reduce, reduce_concat) = cells["normal"], cells["reduce"]
    return Genotype(tuple(normal), tuple(normal_concat), tuple(reduce), tuple(reduce_concat))


def _nodes(rows: int) -> list[int]:
    """Intermediate node ids of a cell with `rows` edges (2 + 3 + ... rows)."""
    node, total = 2, 0
    while total < rows:
        total += node
        node += 1
    if total != rows:
        raise LtnasError(f"{rows} edge rows do not form a cell (2 + 3 + 4 + ... edges); pass one row per edge")
    return list(range(2, node))


def _strongest_edges(weights: torch.Tensor, primitives: tuple[str, ...]) -> list[tuple[Edge, float]]:
    if weights.dim() != 2 or weights.shape[1] != len(primitives):
        raise LtnasError(
            f"relaxed weights of shape {tuple(weights.shape)} do not match {len(primitives)} primitives; "
            "pass one column per primitive"
        )
    candidates = [i for i, name in enumerate(primitives) if name != "none"]
    chosen: list[tuple[Edge, float]] = []
    start = 0
    for node in _nodes(len(weights)):
        rows = weights[start : start + node]
        best_weight, best_col = rows[:, candidates].max(dim=1)
        # sorted() is stable, so ties keep the lower input index, as in the DARTS code
        for source in sorted(range(node), key=lambda j: -best_weight[j].item())[:2]:
            op = primitives[candidates[best_col[source].item()]]
            chosen.append((Edge(op, node, source), best_weight[source].item()))
        start += node
    return chosen


# --- registry ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def published_genotypes() -> dict[str, Genotype]:
    """Published cells shipped with ltnas (DARTS, PC-DARTS, P-DARTS, FairDARTS a–g), by name."""
    text = resources.files("ltnas.space").joinpath("data/published_genotypes.json").read_text()
    entries = json.loads(text)["genotypes"]
    return {name: Genotype.from_dict(entry, name=name) for name, entry in entries.items()}


# --- derived architectures of any search space ------------------------------------------------------
def architecture_from_dict(data: dict[str, Any], name: str | None = None, source: str = "genotype") -> Any:
    """A derived architecture from its dict: a DARTS Genotype, or the type of the space its "space" tag names
    (ltnas.methods.SPACES, e.g. S₂'s MobileArch)."""
    tag = data.get("space", Genotype.space) if isinstance(data, dict) else Genotype.space
    if tag == Genotype.space:
        return Genotype.from_dict(data, name=name, source=source)
    from ltnas.methods import resolve, space

    return resolve(space(str(tag)).architecture).from_dict(data, name=name, source=source)


def load_architecture(path: str | Path) -> Any:
    """A derived architecture file (genotype.json) of any search space."""
    path = Path(path)
    data = read_architecture_json(path)
    return architecture_from_dict(data, name=data.get("name", path.stem), source=f"genotype file {path}")


def read_architecture_json(path: Path) -> dict[str, Any]:
    """The JSON object of a genotype / architecture file, or a one-line error naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8 text
        raise LtnasError(f"cannot read genotype file {path} ({exc.__class__.__name__}); give a genotype JSON file") from None
    if not isinstance(data, dict):
        raise LtnasError(f"genotype file {path} must hold a JSON object with normal/reduce edge lists")
    return data


def load_genotype(name_or_path: str | Path) -> Genotype:
    """A published genotype by name, or a genotype file (JSON edge list, DARTS `Genotype(...)` text, or the
    architecture file of another search space, e.g. an S₂ search's genotype.json)."""
    registry = published_genotypes()
    if str(name_or_path) in registry:
        return registry[str(name_or_path)]
    path = Path(name_or_path)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise LtnasError(f"genotype file {path} is not UTF-8 text (byte {exc.start}); give a genotype JSON "
                             "file or DARTS Genotype(...) text saved as UTF-8") from None
        if text.lstrip().startswith("Genotype("):
            genotype = Genotype.from_darts_text(text, name=path.stem)
        else:
            genotype = load_architecture(path)
        if isinstance(genotype, Genotype):
            _refuse_edges_from_empty_nodes(genotype, f"genotype file {path}")
        return genotype
    raise LtnasError(
        f"unknown genotype '{name_or_path}': not a published name ({', '.join(registry)}) nor an existing file; "
        "pass one of those names or a path to genotype.json"
    )
