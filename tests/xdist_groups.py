"""The suite's pytest-xdist grouping (hooks imported by tests/conftest.py; no torch import, so a sample suite in
tests/test_test_time.py can use it cheaply)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist (the README's `pytest -n 2 --dist loadgroup`) each worker builds the module- and
    session-scoped fixtures its own tests need, so the tests that share one of this suite's such fixtures
    go in one `xdist_group` and each expensive run is still made once. A group is a connected part of the
    graph whose nodes are test modules and session fixtures, with an edge where a module's test uses a
    session fixture (a module-scoped fixture belongs to the module using it). Tests using none of them
    are spread one by one. Only fixtures defined in a conftest.py or a test_*.py file count (not pytest's
    own, which are cheap). Without xdist, nothing changes."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    shared = {}
    for item in items:
        keys = [item.nodeid.split("::")[0]]
        definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        for name in getattr(item, "fixturenames", ()):
            definition = (definitions.get(name) or [None])[-1]
            if definition is None or definition.scope not in ("module", "session"):
                continue
            source = Path(inspect.getfile(definition.func)).name
            if not (source == "conftest.py" or source.startswith("test_")):
                continue  # pytest's own (tmp_path_factory ...): cheap
            keys.append(f"session:{name}" if definition.scope == "session" else keys[0])
        if len(keys) > 1:
            shared[item] = keys
            for key in keys[1:]:
                parent[root(key)] = root(keys[0])
    for item, keys in shared.items():
        item.add_marker(pytest.mark.xdist_group(root(keys[0])))


def group_suffix(item) -> str:
    """'@NAME' as pytest-xdist's worker appends it to a grouped test's node id (its names, sorted and joined by
    '_'), or '' for a test in no group."""
    names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                    for mark in item.iter_markers("xdist_group")})
    return f"@{'_'.join(names)}" if names else ""


@pytest.hookimpl(tryfirst=True)  # before the xdist worker sends the node ids to the controller
def pytest_collection_finish(session) -> None:
    """`--dist loadgroup` schedules by node id: an xdist worker appends '@group' to each grouped test's id
    (`item._nodeid`), and the controller sends the tests with one suffix to one worker. From pytest 9.2 a
    node's id is a structured `NodeId` (`item._id`) and that assignment no longer changes it, so every group
    was silently spread over both workers and each built the shared fixtures again (pytest-xdist issue
    #1386, unfixed in 3.8). Here the suffix is appended to the structured id where it is missing; with a
    pytest whose ids xdist's own hook still changes, nothing is done."""
    config = session.config
    if not getattr(config.option, "loadgroup", False):  # set in xdist workers running --dist loadgroup
        return
    for item in session.items:
        suffix = group_suffix(item)
        if not suffix or item.nodeid.endswith(suffix):
            continue
        if hasattr(item, "_id"):
            item._id = type(item._id).parse(item.nodeid + suffix)
        else:  # pragma: no cover - older pytest, where xdist's assignment works already
            item._nodeid = item.nodeid + suffix
