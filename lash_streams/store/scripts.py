"""Typed loader for the Lua transitions in ``lua/``.

Each ``<transition>-<nkeys>.lua`` file is one atomic state change; the shared
``_lib.lua`` prelude is prepended so every script reads the same server clock
helper. Scripts are sent by SHA (EVALSHA) with a transparent NOSCRIPT reload,
which keeps them working across server restarts and cluster failovers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript

_NAMES = (
    "register_process-1",
    "append_event-7",
    "deliver_wake-2",
    "set_facet-2",
    "ack_wake-2",
    "claim_lease-2",
    "renew_lease-1",
    "release_lease-1",
    "prune_process-9",
    "scope_lease-1",
)


@cache
def script_source(name: str) -> str:
    lua = resources.files("lash_streams.store") / "lua"
    prelude = (lua / "_lib.lua").read_text(encoding="utf-8")
    body = (lua / f"{name}.lua").read_text(encoding="utf-8")
    return prelude + "\n" + body


def expected_keys(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


@dataclass(frozen=True)
class Scripts:
    register_process: AsyncScript
    append_event: AsyncScript
    deliver_wake: AsyncScript
    set_facet: AsyncScript
    ack_wake: AsyncScript
    claim_lease: AsyncScript
    renew_lease: AsyncScript
    release_lease: AsyncScript
    prune_process: AsyncScript
    scope_lease: AsyncScript

    @classmethod
    def register(cls, client: Any) -> Scripts:
        loaded = {
            name.rsplit("-", 1)[0]: client.register_script(script_source(name)) for name in _NAMES
        }
        return cls(**loaded)
