"""Every public method of the bus, fuzzed (issue 14, item 5): each call
returns a correct result or raises a ``LashStreamsError`` with a plain
message, and a refused write leaves the namespace as it was (``harness.call``);
after the test, the autouse key-hygiene fixture finds no key left without a
TTL or a retention rule. Runs on the embedded Valkey, Redis and fakeredis."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lash_streams.bus import Bus

from . import targets_coordination, targets_events, targets_leases, targets_processes
from .conftest import FUZZ
from .harness import TARGETS

assert targets_coordination and targets_events and targets_leases and targets_processes

#: Public names with nothing to fuzz, and why.
NOT_FUZZED = {
    "aclose": "no argument (lifecycle)",
    "close_node_clients": "no argument (lifecycle)",
    "close_shared_reader": "no argument (lifecycle)",
    "durability": "no argument",
    "durability_report": "attribute (set by connect)",
    "durability_tier": "no argument",
    "server_time_ms": "no argument",
    "due_records": "no argument",
    "primary_clients": "no argument",
    "shared_reader": "no argument",
    "server": "property",
    "death_oracle": "attribute set by connect",
    "shares_waits": "attribute set by connect",
    "wake_dedupe_window_ms": "attribute set by connect (connect is fuzzed)",
    "blocking_for": "takes a key the store built itself (no user input)",
    "command": "the store's retry wrapper around a redis-py method (no user input)",
    "record_from_fields": "decodes a stored hash (bad rows: test_bad_input_v2)",
    "registration_of": "decodes stored registration JSON (no user input)",
    "know_registration": "caches a registration the store decoded (no user input)",
    "remember": "caches stored fields (no user input)",
}


def public_names() -> set[str]:
    return {name for name in dir(Bus) if not name.startswith("_")}


def test_every_public_method_has_a_fuzz_target():
    """A new public method fails here until it gets a target in
    tests/fuzz/targets_*.py (or a reason in NOT_FUZZED)."""
    missing = public_names() - set(TARGETS) - set(NOT_FUZZED)
    assert not missing, f"public Bus names without a fuzz target: {sorted(missing)}"
    stale = (set(TARGETS) | set(NOT_FUZZED)) - public_names()
    assert not stale, f"fuzz targets for names Bus no longer has: {sorted(stale)}"
    for name, fn in TARGETS.items():
        source = inspect.getsource(fn)
        assert f"bus.{name}" in source or f'"{name}"' in source, f"{fn.__name__} never calls {name}"


@pytest.mark.parametrize("bus_factory", ["valkey", "redis", "fake"], indirect=True)
@pytest.mark.parametrize("method", sorted({fn.__name__: m for m, fn in TARGETS.items()}.values()))
@FUZZ
@given(data=st.data())
async def test_fuzz(bus: Bus, method: str, data: st.DataObject) -> None:
    await TARGETS[method](bus, data)
