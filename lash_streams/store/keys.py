"""The Redis key layout: one module owns every key name and its slot.

All keys of one process share the hash tag ``{<enc pid>}``; all keys of one
session scope share ``{<enc scope id>}``; the namespace-wide indexes share
``{<namespace>}``. No script touches two tags (DESIGN "Cluster-safe keys").

Ids are percent-encoded before they enter a key so that ``{``, ``}``, ``:``,
glob characters or any other byte cannot move a key to another slot, collide
with another id, or turn a ``SCAN MATCH`` pattern into a wildcard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lash_streams.errors import InvalidId
from lash_streams.ids import id_bytes

_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()+,;=@/|^"
)
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def validate_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not _NAMESPACE_RE.fullmatch(namespace):
        raise InvalidId(
            f"namespace `{namespace}` must be 1-64 characters of ASCII letters, digits, "
            "`_`, `.` or `-`"
        )
    return namespace


@lru_cache(maxsize=65536)
def encode_id(value: str) -> str:
    """Injective, slot-safe encoding: safe ASCII stays readable, all else is %XX."""
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


class Keyspace:
    """Key names of one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = validate_namespace(namespace)
        ns = self.namespace
        self.index_all = f"{ns}:idx:{{{ns}}}:all"  # zset(lex) every known process id
        self.index_running = f"{ns}:idx:{{{ns}}}:run"  # zset(lex) running ids (worklist, RX-2)
        self.index_terminal = f"{ns}:idx:{{{ns}}}:term"  # zset score=updated_at (prune, PR-1)
        # zset: encoded id -> count of intents marked, per process whose outbox
        # may hold wake intents (the relay visits only these, delivery.py)
        self.index_outbox = f"{ns}:idx:{{{ns}}}:ob"
        # Every call on a process names its keys: built once per id (bounded).
        self._process_keys: dict[str, ProcessKeys] = {}

    def process(self, process_id: str) -> ProcessKeys:
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

    @property
    def fleet_stream(self) -> str:
        return f"{self.namespace}:fleet:{{{self.namespace}}}"

    @property
    def fleet_groups(self) -> str:
        """The fleet notice groups (set): notices are written only while one exists."""
        return f"{self.namespace}:fleet:{{{self.namespace}}}:groups"

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
