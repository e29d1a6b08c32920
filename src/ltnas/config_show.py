"""`ltnas config show NAME|PATH|RUN_DIR`: the resolved config, every key with its value, its
description and where the value comes from (the config or --set, the method's own defaults in
ltnas.methods, or ltnas's default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from ltnas.config import (RunConfig, apply_override, load_config, method_search_defaults, migrate_layout,
                          resolve_config_path)
from ltnas.errors import LtnasError
from ltnas.methods import OPTIONAL_SECTIONS, method


def resolved(target: str, overrides: list[str] | None = None) -> tuple[RunConfig, dict[str, Any]]:
    """(config, the keys it sets) of a shipped config name, a config file or a run folder."""
    path = Path(target)
    if path.is_dir():
        from ltnas.runs import RunFolder

        if overrides:
            raise LtnasError("a run folder keeps its saved config; drop --set (or show the config file instead)")
        run = RunFolder.open(path)
        return run.config(), migrate_layout(yaml.safe_load(run.config_file.read_text(encoding="utf-8")) or {})
    path = resolve_config_path(target)
    config = load_config(path, overrides)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for item in overrides or []:
        apply_override(raw, item)
    return config, migrate_layout(raw)


def show(config: RunConfig, given: dict[str, Any]) -> str:
    """YAML of every value `config` uses, each line commented with the key's description and, unless
    it is ltnas's default, where the value comes from."""
    entry = method(config.search.method)
    lines = [f"# search.method {entry.name}: {entry.summary}",
             "# (set): from the config or --set; (<method> default): the method's own setting (ltnas.methods)"]
    own_defaults = method_search_defaults(entry.name)
    if own_defaults:
        own = ", ".join(f"search.{key} {value}" for key, value in _dotted(own_defaults))
        lines.append(f"# {entry.title} sets, unless the config does: {own}")
    unread = {section for section in OPTIONAL_SECTIONS if section not in entry.reads(config)}
    _lines(config, given, (), entry, own_defaults, lines, unread)
    return "\n".join(lines) + "\n"


def _lines(section: BaseModel, given: Any, path: tuple[str, ...], entry, own_defaults: dict[str, Any], lines: list[str],
           unread: set[str]) -> None:
    indent = "  " * len(path)
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        here = given.get(name) if isinstance(given, dict) else None
        note = field.description or ""
        if ".".join((*path, name)) in unread:
            note = " ".join(part for part in (note, f"(not read by a {entry.name} run)") if part)
        if isinstance(value, BaseModel):
            lines.append(f"{indent}{name}:" + (f"  # {note}" if note else ""))
            _lines(value, here, (*path, name), entry, own_defaults, lines, unread)
            continue
        origin = ""
        if isinstance(given, dict) and name in given:
            origin = "(set)"
        elif path[:1] == ("search",) and _has(own_defaults, (*path[1:], name)):
            origin = f"({entry.title} default)"
        comment = " ".join(part for part in (note, origin) if part)
        dumped = yaml.safe_dump(_plain(value), default_flow_style=True, width=10_000).strip()
        dumped = dumped.removesuffix("\n...").removesuffix("...").strip()
        lines.append(f"{indent}{name}: {dumped}" + (f"  # {comment}" if comment else ""))


def _dotted(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{"sgd": {"lr": 0.1}} → [("sgd.lr", 0.1)]."""
    pairs: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            pairs += _dotted(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def _has(tree: Any, keys: tuple[str, ...]) -> bool:
    """Whether the nested mapping `tree` holds the leaf at `keys`."""
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return not isinstance(tree, dict)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
