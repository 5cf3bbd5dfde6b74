"""The layer contract of DESIGN.md and docs/architecture.md (issue 10).

`make lint` checks the layers with import-linter; this test adds what a layers
contract cannot see: no import circle among any of our modules, a package's
``__init__`` included, counting TYPE_CHECKING and function-level imports.
"""

from __future__ import annotations

import grimp
import pytest

import lash_streams
from lash_streams.coordination.fleet import FleetConsumer
from lash_streams.coordination.recovery import Recovery
from lash_streams.coordination.wakes import WakeConsumer
from lash_streams.store import Store


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("lash_streams", cache_dir=None)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(module: str) -> None:
        nonlocal counter
        index[module] = low[module] = counter
        counter += 1
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_among_our_modules(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("lash_streams.model", "lash_streams.semantics"),
        ("lash_streams.store", "lash_streams.coordination"),
        ("lash_streams.store", "lash_streams.bus"),
        ("lash_streams.coordination", "lash_streams.bus"),
        ("lash_streams.observability", "lash_streams.coordination"),
        ("lash_streams.observability", "lash_streams.store"),
    ],
)
def test_lower_layers_never_reach_up(graph: grimp.ImportGraph, lower: str, higher: str) -> None:
    chains = graph.find_shortest_chains(importer=lower, imported=higher, as_packages=True)
    assert not chains, f"{lower} reaches {higher}: {sorted(chains)}"


def test_store_parts_extend_only_the_core() -> None:
    """Issue 10: sibling parts over one core, composed once; no part inherits
    an unrelated one."""
    from lash_streams.store.core import StoreCore

    parts = Store.__bases__
    assert len(parts) >= 8
    for part in parts:
        assert part.__bases__ == (StoreCore,), f"{part.__name__} extends {part.__bases__}"
    assert lash_streams.Bus.__bases__ == (Store,)


def test_coordination_takes_the_store_not_the_bus() -> None:
    import inspect

    for cls in (WakeConsumer, FleetConsumer, Recovery):
        first = next(iter(list(inspect.signature(cls.__init__).parameters.values())[1:]))
        assert first.name == "store", cls
        assert "Store" in str(first.annotation), cls
