"""Typed loader for the Lua transitions in ``lua/``.

Each ``<transition>-<nkeys>.lua`` file is one atomic state change; the shared
``_lib.lua`` prelude is prepended so every script reads the same server clock
helper, and a script's ``--! include _<name>.lua`` lines add a shared part
(``_append.lua``: one append, for ``append_event`` and ``append_batch``).
Shared functions a script never reaches are left out of it: Lua builds each
``local function`` of a script on every call.

Scripts are loaded once (``SCRIPT LOAD``, on every primary of a cluster) and
sent by SHA with ``EVALSHA``. A server that lost its script cache (a restart,
a failover, ``SCRIPT FLUSH``) answers ``NOSCRIPT`` without running anything,
so a direct call loads the scripts and sends again. Inside a pipeline the
caller sees the ``NoScriptError`` reply of that command (and only that
command did not run) and decides; nothing ever pays redis-py's
``SCRIPT EXISTS`` round trip before each pipeline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from lash_streams.store.grouped import ALONE, Grouped

_NAMES = (
    "register_process-1",
    "register_local-5",
    "append_event-8",
    "append_batch-4n",
    "deliver_wake-2",
    "deliver_wakes-6n",
    "fleet_notice-2",
    "set_facet-2",
    "ack_wake-2",
    "settle_wakes-1n",
    "claim_lease-2",
    "renew_lease-1",
    "release_lease-1",
    "prune_process-10",
    "count_events-3",
    "scope_lease-1",
    "grant_index-2",
    "drop_grant-1",
    "worker_incarnation-1",
    "due_rows-1",
    "mark_pending-1",
    "settle_pending-1",
    "start_job-3",
    "promote_due-1",
    "ready_job-2",
    "complete_job-10",
    "settle_ready-1",
)


@cache
def script_source(name: str) -> str:
    lua = resources.files("lash_streams.store") / "lua"
    shared = [(lua / "_lib.lua").read_text(encoding="utf-8")]
    own: list[str] = []
    for line in (lua / f"{name}.lua").read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("--! include "):
            shared.append((lua / line.split()[2]).read_text(encoding="utf-8"))
        else:
            own.append(line)
    return _used_parts("\n".join(shared), "".join(own))


#: A shared top-level function: from its ``local function <name>(`` line to
#: the first ``end`` at the start of a line.
_FUNCTION = re.compile(r"^local function (\w+)\(.*?^end\n", re.M | re.S)


def _used_parts(shared: str, own: str) -> str:
    """The shared files (prelude and includes) without the functions the
    script never reaches, then the script's own lines. Lua builds every
    ``local function`` of a script on each call; a server spends about a
    thousand instructions a closure, so a call pays only for what it uses."""
    functions = list(_FUNCTION.finditer(shared))
    needed = own
    dropped: list[tuple[int, int]] = []
    # Definitions come before uses: walking back from the last one, each is
    # kept when the script or a function kept after it names it.
    for match in reversed(functions):
        if re.search(rf"\b{match.group(1)}\b", needed):
            needed += match.group(0)
        else:
            dropped.append(match.span())
    kept = shared
    for start, end in dropped:  # from the end, so earlier spans stay valid
        kept = kept[:start] + kept[end:]
    return kept + "\n" + own


def expected_keys(name: str) -> int:
    """The keys a call takes: ``-7`` exactly 7; ``-7n`` 7 per item it carries."""
    return int(name.rsplit("-", 1)[1].removesuffix("n"))


def takes_groups(name: str) -> bool:
    return name.endswith("n")


def is_noscript(reply: object) -> bool:
    """A pipeline reply saying the script was not in the server's cache (the
    command did not run)."""
    return isinstance(reply, NoScriptError)


class Script:
    """One transition: ``await script(keys=..., args=...)`` runs it;
    ``await script(keys=..., args=..., client=pipe)`` queues it on a pipeline."""

    __slots__ = ("_scripts", "grouped", "name", "nkeys", "sha", "source")

    def __init__(self, scripts: Scripts, name: str) -> None:
        self._scripts = scripts
        self.name = name
        self.nkeys = expected_keys(name)
        self.grouped = takes_groups(name)
        self.source = script_source(name)
        self.sha = hashlib.sha1(self.source.encode("utf-8")).hexdigest()

    async def __call__(
        self, *, keys: Sequence[Any], args: Sequence[Any], client: Any | None = None
    ) -> Any:
        self._check_keys(keys)
        if client is not None:
            client.evalsha(self.sha, len(keys), *keys, *args)
            return None
        send = self._scripts.send
        command = self.command(keys, args)
        try:
            return await send(*command)
        except NoScriptError:
            await self._scripts.load()
            return await send(*command)

    def _check_keys(self, keys: Sequence[Any]) -> None:
        # The file name is the contract: exactly nkeys, or (-<n>n) a multiple.
        if (not keys or len(keys) % self.nkeys) if self.grouped else len(keys) != self.nkeys:
            raise ValueError(f"{self.name} takes {self.nkeys} keys, got {len(keys)}")

    def command(self, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
        """The call as one command (the group commit sends several at once)."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    async def together(self, *, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """As a direct call, in one pipeline with the other grouped calls made
        in the same turn of the event loop (group commit, ``grouped.py``)."""
        group = self._scripts.group
        if group is None or ALONE.get():
            return await self(keys=keys, args=args)
        self._check_keys(keys)
        return await group.call(self, keys, args)


@dataclass(init=False)
class Scripts:
    client: Any
    register_process: Script
    register_local: Script
    append_event: Script
    append_batch: Script
    deliver_wake: Script
    deliver_wake_atomic: Script
    fleet_notice: Script
    set_facet: Script
    ack_wake: Script
    settle_wakes: Script
    claim_lease: Script
    renew_lease: Script
    release_lease: Script
    prune_process: Script
    count_events: Script
    scope_lease: Script
    grant_index: Script
    drop_grant: Script
    worker_incarnation: Script
    due_rows: Script
    mark_pending: Script
    settle_pending: Script
    start_job: Script
    promote_due: Script
    ready_job: Script
    complete_job: Script
    settle_ready: Script

    def __init__(self, client: Any) -> None:
        self.client = client
        # A pool with ``direct`` (lash_streams.pool.BoundedPool) sends a script
        # call without the client's per-command layers; any other client
        # (a cluster, fakeredis, a user's own) through its ``execute_command``.
        # A client whose writes wait for replicas (lash_streams.replication)
        # must see every call.
        pool = getattr(client, "connection_pool", None)
        direct = getattr(pool, "direct", None)
        direct_many = getattr(pool, "direct_many", None)
        if getattr(client, "waits_for_writes", False):
            direct = direct_many = None
        self.send: Any = direct or client.execute_command
        #: Group commit where calls go straight to one server's pool.
        self.group = Grouped(direct_many) if direct and direct_many else None
        self._all = [Script(self, name) for name in _NAMES]
        by_file = {s.name: s for s in self._all}
        self.register_process = by_file["register_process-1"]
        self.register_local = by_file["register_local-5"]
        self.append_event = by_file["append_event-8"]
        self.append_batch = by_file["append_batch-4n"]
        self.deliver_wake = by_file["deliver_wake-2"]
        self.deliver_wake_atomic = by_file["deliver_wakes-6n"]
        self.fleet_notice = by_file["fleet_notice-2"]
        self.set_facet = by_file["set_facet-2"]
        self.ack_wake = by_file["ack_wake-2"]
        self.settle_wakes = by_file["settle_wakes-1n"]
        self.claim_lease = by_file["claim_lease-2"]
        self.renew_lease = by_file["renew_lease-1"]
        self.release_lease = by_file["release_lease-1"]
        self.prune_process = by_file["prune_process-10"]
        self.count_events = by_file["count_events-3"]
        self.scope_lease = by_file["scope_lease-1"]
        self.grant_index = by_file["grant_index-2"]
        self.drop_grant = by_file["drop_grant-1"]
        self.worker_incarnation = by_file["worker_incarnation-1"]
        self.due_rows = by_file["due_rows-1"]
        self.mark_pending = by_file["mark_pending-1"]
        self.settle_pending = by_file["settle_pending-1"]
        self.start_job = by_file["start_job-3"]
        self.promote_due = by_file["promote_due-1"]
        self.ready_job = by_file["ready_job-2"]
        self.complete_job = by_file["complete_job-10"]
        self.settle_ready = by_file["settle_ready-1"]

    @classmethod
    def register(cls, client: Any) -> Scripts:
        return cls(client)

    async def load(self) -> None:
        """``SCRIPT LOAD`` every transition (on every primary of a cluster)."""
        for script in self._all:
            await self.client.script_load(script.source)
