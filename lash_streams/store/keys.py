"""The Redis key layout: one module owns every key name and its slot.

All keys of one process share the hash tag ``{<enc pid>}``; all keys of one
session scope share ``{<enc scope id>}``; the namespace-wide keys share
``{<namespace>}``, but for the indexes, split over ``{<namespace>/<i>}`` when a
namespace has several index shards (``Keyspace``). No script touches two tags
on a cluster (DESIGN "Cluster-safe keys").

Ids are percent-encoded before they enter a key so that ``{``, ``}``, ``:``,
glob characters or any other byte cannot move a key to another slot, collide
with another id, or turn a ``SCAN MATCH`` pattern into a wildcard.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from lash_streams.errors import InvalidId, InvalidValue
from lash_streams.ids import id_bytes

_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()+,;=@/|^"
)
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def validate_index_shards(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INDEX_SHARDS:
        raise InvalidValue(
            f"index_shards must be an int from 1 to {MAX_INDEX_SHARDS}, got {value!r}"
        )
    return value


def validate_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not _NAMESPACE_RE.fullmatch(namespace):
        raise InvalidId(
            f"namespace `{namespace}` must be 1-64 characters of ASCII letters, digits, "
            "`_`, `.` or `-`"
        )
    return namespace


def encode_id(value: str) -> str:
    """Injective, slot-safe encoding: safe ASCII stays readable, all else is %XX."""
    if not isinstance(value, str):  # before the cache hashes it (a list would not hash)
        id_bytes("id", value)
    return _encode_id(value)


@lru_cache(maxsize=65536)
def _encode_id(value: str) -> str:
    raw = id_bytes("id", value)
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)


def decode_id(encoded: str) -> str:
    out = bytearray()
    i = 0
    while i < len(encoded):
        ch = encoded[i]
        if ch == "%":
            out.append(int(encoded[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(ch))
            i += 1
    return out.decode("utf-8")


@dataclass(frozen=True, slots=True)
class ProcessKeys:
    """Every key of one process; all in the slot of ``{<enc pid>}``."""

    record: str  # hash: registration JSON + mutable facets (RG-7)
    events: str  # stream: entry id ``<sequence>-0`` per event (RX-4)
    replay: str  # hash: replay key -> "<sequence>|<payload hash>" (EV-4, RX-6)
    types: str  # zset (lex): "<enc event type>\0<seq:020d>", RD-2 for events before type_counts
    wakes: str  # zset: sequences of wake events (WA-1)
    acks: str  # set: acknowledged wake sequences (WA-2)
    lease: str  # hash: lease row + fencing counter that outlives the holder (LS-5)
    grants: str  # set: "<inc>|<scope JSON>" per scope holding a grant (reverse index)
    outbox: str  # stream: wake deliveries not yet relayed to their scope (RX-7)
    type_counts: str  # hash: per event type, its count and packed sequences (RD-2)

    def all(self) -> list[str]:
        return [
            self.record,
            self.events,
            self.replay,
            self.types,
            self.wakes,
            self.acks,
            self.lease,
            self.grants,
            self.outbox,
            self.type_counts,
        ]


_PROCESS_KEYS_CACHED = 10_000


#: The namespace-wide indexes, each split over ``index_shards`` keys.
IndexKind = Literal["all", "run", "term", "ob"]

#: Most index shards a namespace may use.
MAX_INDEX_SHARDS = 1024


class Keyspace:
    """Key names of one namespace.

    The namespace indexes (``all``, ``run``, ``term``, ``ob``) are split over
    ``index_shards`` hash tags, so a cluster spreads their writes (every
    registration, terminal, lease renewal and pending-outbox mark) over that
    many slots. A process's entries all live in one shard, ``shard_of(id)``;
    a namespace-wide read reads every shard. One shard (the default) keeps the
    names of versions before sharding, ``<ns>:idx:{<ns>}:<kind>``; shard ``i``
    of more is ``<ns>:idx:{<ns>/<i>}:<kind>``. The count is the namespace's, not
    the client's: ``connect`` records it in ``meta`` and refuses another."""

    def __init__(self, namespace: str, index_shards: int = 1) -> None:
        self.namespace = validate_namespace(namespace)
        self.index_shards = validate_index_shards(index_shards)
        ns = self.namespace
        self.meta = f"{ns}:meta:{{{ns}}}"  # hash: index_shards
        tags = [ns] if self.index_shards == 1 else [f"{ns}/{i}" for i in range(self.index_shards)]
        # Named once: an append names its pending-outbox index every call.
        self._indexes: dict[str, list[str]] = {
            kind: [f"{ns}:idx:{{{tag}}}:{kind}" for tag in tags]
            for kind in ("all", "run", "term", "ob")
        }
        self._fleet_streams = [f"{ns}:fleet:{{{tag}}}" for tag in tags]
        # Every call on a process names its keys: built once per id (bounded).
        self._process_keys: dict[str, ProcessKeys] = {}

    def shard_of(self, process_id: str) -> int:
        """The index shard of a process (CRC-32 of its UTF-8 id: stable
        across clients, versions and languages)."""
        if self.index_shards == 1:
            return 0
        return zlib.crc32(id_bytes("process id", process_id)) % self.index_shards

    def index(self, kind: IndexKind, shard: int = 0) -> str:
        return self._indexes[kind][shard]

    def index_of(self, kind: IndexKind, process_id: str) -> str:
        """The index key of ``kind`` that holds ``process_id``'s entry."""
        return self.index(kind, self.shard_of(process_id))

    def indexes(self, kind: IndexKind) -> list[str]:
        """Every shard's key of ``kind``, shard 0 first."""
        return list(self._indexes[kind])

    # One shard's names (tests and tools that know the namespace has one).
    @property
    def index_all(self) -> str:  # zset: every known process id
        return self._single("all")

    @property
    def index_running(self) -> str:  # zset: running ids by when a sweep is due (RX-2)
        return self._single("run")

    @property
    def index_terminal(self) -> str:  # zset: terminal ids by updated_at (prune, PR-1)
        return self._single("term")

    @property
    def index_outbox(self) -> str:  # zset: processes whose outbox may hold intents
        return self._single("ob")

    def _single(self, kind: IndexKind) -> str:
        if self.index_shards != 1:
            raise ValueError(
                f"namespace `{self.namespace}` has {self.index_shards} index shards: "
                f"use index_of() or indexes()"
            )
        return self.index(kind)

    def process(self, process_id: str) -> ProcessKeys:
        if not isinstance(process_id, str):  # before the memo hashes it
            id_bytes("process id", process_id)
        keys = self._process_keys.get(process_id)
        if keys is None:
            if len(self._process_keys) >= _PROCESS_KEYS_CACHED:
                self._process_keys.clear()  # a bounded memo, not an LRU: refills cheaply
            keys = self._process_keys[process_id] = self._process_keys_of(process_id)
        return keys

    def _process_keys_of(self, process_id: str) -> ProcessKeys:
        base = f"{self.namespace}:p:{{{encode_id(process_id)}}}"
        return ProcessKeys(
            record=base,
            events=f"{base}:ev",
            replay=f"{base}:rk",
            types=f"{base}:ty",
            wakes=f"{base}:wk",
            acks=f"{base}:ack",
            lease=f"{base}:lease",
            grants=f"{base}:grants",
            outbox=f"{base}:ob",
            type_counts=f"{base}:tc",
        )

    def scope_grants(self, scope_id: str) -> str:
        return f"{self.namespace}:s:{{{encode_id(scope_id)}}}:grants"

    def session_scopes(self, session_id: str) -> str:
        return f"{self.namespace}:ss:{{{encode_id(session_id)}}}:scopes"

    def session_targets(self, session_id: str) -> str:
        return f"{self.namespace}:ss:{{{encode_id(session_id)}}}:targets"

    def wake_stream(self, scope_id: str) -> str:
        return f"{self.namespace}:w:{{{encode_id(scope_id)}}}"

    def wake_dedupe(self, scope_id: str, wake_id: str) -> str:
        return f"{self.namespace}:w:{{{encode_id(scope_id)}}}:d:{wake_id}"

    def wake_dead_letters(self, scope_id: str) -> str:
        return f"{self.namespace}:w:{{{encode_id(scope_id)}}}:dead"

    def scope_owner(self, scope_id: str) -> str:
        return f"{self.namespace}:w:{{{encode_id(scope_id)}}}:owner"

    @property
    def relay_dead_letters(self) -> str:
        """Wake intents the relay could not deliver, with the reason (capped)."""
        return f"{self.namespace}:relay:{{{self.namespace}}}:dead"

    def fleet_shard(self, scope_id: str) -> int:
        """The fleet notice shard of a scope (CRC-32 of its UTF-8 id)."""
        if self.index_shards == 1:
            return 0
        return zlib.crc32(id_bytes("scope id", scope_id)) % self.index_shards

    def fleet_stream_of(self, scope_id: str) -> str:
        """The fleet notice stream a scope's notices go to; its groups set
        (``fleet_groups_of``) shares its slot, as the notice script needs."""
        return self._fleet_streams[self.fleet_shard(scope_id)]

    def fleet_groups_of(self, scope_id: str) -> str:
        return self.fleet_stream_of(scope_id) + ":groups"

    def fleet_streams(self) -> list[str]:
        """Every fleet notice stream, shard 0 first (one per index shard)."""
        return list(self._fleet_streams)

    @property
    def fleet_stream(self) -> str:
        """The fleet notice stream of a namespace with one shard."""
        self._single("all")
        return self.fleet_streams()[0]

    @property
    def fleet_groups(self) -> str:
        """The fleet notice groups (set): notices are written only while one exists."""
        return self.fleet_stream + ":groups"

    def ready_stream(self, kind: str) -> str:
        """Dispatch: the ready stream of one job kind, read by the worker group
        (store/dispatch.py). Every kind's stream and the delayed schedule share
        the namespace's slot, so one read covers every kind a worker serves."""
        id_bytes("job kind", kind)
        if not kind.strip():  # as submit refuses it: no stream for a kind no job has
            raise InvalidValue(f"a job kind is a non-empty string, got {kind!r}")
        return f"{self.namespace}:ready:{{{self.namespace}}}:{encode_id(kind)}"

    @property
    def delayed(self) -> str:
        """Dispatch: jobs that must not start before their score (server ms)."""
        return f"{self.namespace}:delayed:{{{self.namespace}}}"

    def process_pattern(self) -> str:
        return f"{self.namespace}:p:*"


# Retention of every key that legitimately has no TTL (docs/keys.md). The
# test suite fails a test that leaves a TTL-less key no rule covers.
_RETENTION: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"^[^:]+:p:\{[^{}]*\}(:(ev|rk|ty|tc|wk|ack|lease|grants|ob))?$"),
        "process keys: deleted whole by prune_terminal_processes once terminal (PR-1)",
    ),
    (
        re.compile(r"^[^:]+:idx:\{[^{}]*\}:(all|run|term|ob)$"),
        "namespace index: entries removed by prune and terminal projection",
    ),
    (
        re.compile(r"^[^:]+:meta:\{[^{}]*\}$"),
        "namespace settings: one hash per namespace (index_shards)",
    ),
    (
        re.compile(r"^[^:]+:s:\{[^{}]*\}:grants$"),
        "scope grants: removed by revoke, transfer, session deletion, prune and stale-row readers",
    ),
    (
        re.compile(r"^[^:]+:ss:\{[^{}]*\}:(scopes|targets)$"),
        "session index: removed by delete_session_process_state",
    ),
    (
        re.compile(r"^[^:]+:w:\{[^{}]*\}$"),
        "wake stream: trimmed below what every consumer group acknowledged",
    ),
    (
        re.compile(r"^[^:]+:w:\{[^{}]*\}:dead$"),
        "dead letters: capped with MAXLEN on every write",
    ),
    (
        re.compile(r"^[^:]+:relay:\{[^{}]*\}:dead$"),
        "relay dead letters: capped with MAXLEN on every write",
    ),
    (
        re.compile(r"^[^:]+:ready:\{[^{}]*\}:[^:]+$"),
        "ready stream: an entry is deleted when a worker takes it, capped with MAXLEN ~",
    ),
    (
        re.compile(r"^[^:]+:delayed:\{[^{}]*\}$"),
        "delayed jobs: a member leaves when its start time comes (promote_due)",
    ),
    (
        re.compile(r"^[^:]+:workers:\{[^{}]*\}$"),
        "worker registry: one field per worker identity (fleet liveness)",
    ),
    (
        re.compile(r"^[^:]+:fleet:\{[^{}]*\}$"),
        "fleet notices: written only while a fleet group exists, trimmed below what every "
        "fleet group acknowledged (MINID, by the pods)",
    ),
    (
        re.compile(r"^[^:]+:fleet:\{[^{}]*\}:groups$"),
        "fleet groups: one member per application group (drop_fleet_group removes it)",
    ),
)


def retention_rule(namespace: str, key: str) -> str | None:
    """The documented retention rule that covers a TTL-less key, if any."""
    if not key.startswith(f"{namespace}:"):
        return None
    for pattern, rule in _RETENTION:
        if pattern.match(key):
            return rule
    return None
