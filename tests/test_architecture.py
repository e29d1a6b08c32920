"""The shape of the package: no import circles, and one table of methods that the pipeline, the CLI,
`compare` and the report read instead of naming methods themselves."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ltnas
from ltnas.methods import METHODS

PACKAGE = Path(ltnas.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Every ltnas module `path` imports, at the top or inside a function (a deferred import still
    makes a circle; only `if TYPE_CHECKING:` blocks are left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:  # `from ltnas.x import y`: y may itself be a module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {target for target in found if target in modules and target != name}


def _graph(level) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        source = level(name)
        graph.setdefault(source, set()).update(level(target) for target in _imports(path, name, modules)
                                               if level(target) != source)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph`, as the list of its nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _package(name: str) -> str:
    """ltnas.stages.bbn → ltnas.stages; ltnas.pipeline stays ltnas.pipeline. The root package's
    own __init__ (the `ltnas.run` API) is left out: every module is inside it."""
    parts = name.split(".")
    return ".".join(parts[:2])


def test_no_import_circle_between_modules():
    graph = _graph(lambda name: name)
    graph.pop("ltnas", None)
    assert _cycle(graph) is None, f"import circle: {' -> '.join(_cycle(graph))}"


def test_no_import_circle_between_packages():
    graph = {node: targets - {"ltnas"} for node, targets in _graph(_package).items() if node != "ltnas"}
    assert _cycle(graph) is None, f"import circle: {' -> '.join(_cycle(graph))}"


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_dispatch_and_presentation_name_no_method():
    """Pipeline, CLI, compare and report read the method table (ltnas.methods) and name no method."""
    files = [PACKAGE / "pipeline.py", PACKAGE / "cli.py", PACKAGE / "compare.py", PACKAGE / "runs.py",
             *sorted((PACKAGE / "report").glob("*.py"))]
    names = "|".join(re.escape(name) for name in METHODS)
    branch = re.compile(rf"""method\s*(==|!=)|method\s+(not\s+)?in\s*[(\[{{]|["']({names})["']""")
    for path in files:
        code = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]
        hits = [line.strip() for line in code if branch.search(line)]
        assert not hits, f"{path.name} names a method: {hits[0]}"
