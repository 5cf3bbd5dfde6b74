"""What a soak run is told: duration, faults, seed, processes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lash_streams.errors import InvalidValue

FAULT_NAMES = ("kill", "pause", "proxy")

#: Workload roles, assigned in this order (a sweeper always runs besides).
ROLE_CYCLE = (
    "appender", "consumer", "worker", "leaser", "appender", "worker", "appender", "consumer",
)  # fmt: skip
MIN_PROCESSES = 4
MAX_PROCESSES = 64

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``2h``, ``1h30m`` -> seconds (> 0)."""
    raw = text.strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)([smh]?)", raw)
    if not raw or not parts or "".join(n + u for n, u in parts) != raw:
        raise InvalidValue(f"duration `{text}` is not a number of seconds or e.g. 20s, 10m, 2h")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise InvalidValue(f"duration `{text}` must be more than zero")
    return seconds


def parse_faults(text: str | None) -> tuple[str, ...]:
    """``kill,pause`` -> ("kill", "pause"); an unknown name is refused."""
    if text is None or not text.strip():
        return ()
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FAULT_NAMES]
    if unknown:
        raise InvalidValue(f"unknown fault `{unknown[0]}`; choose from {', '.join(FAULT_NAMES)}")
    return names


@dataclass(frozen=True)
class SoakConfig:
    duration_s: float = 600.0
    faults: tuple[str, ...] = ()
    seed: int = 0
    processes: int = 8
    #: Seconds between two faults of one kind (each picks its moment at random).
    fault_every_s: float = 4.0
    #: How long the run waits, after the load stops, for jobs and wakes to drain.
    drain_timeout_s: float = 60.0
    lease_ttl_ms: int = 3_000
    renew_every_ms: int = 1_000
    roles: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not MIN_PROCESSES <= self.processes <= MAX_PROCESSES:
            raise InvalidValue(
                f"processes must be {MIN_PROCESSES}..{MAX_PROCESSES}, got {self.processes}"
            )
        if self.duration_s <= 0:
            raise InvalidValue(f"duration must be more than zero, got {self.duration_s}")
        for name in self.faults:
            if name not in FAULT_NAMES:
                raise InvalidValue(f"unknown fault `{name}`; choose from {', '.join(FAULT_NAMES)}")

    def members(self) -> list[tuple[str, str]]:
        """(name, role) for every workload process, the sweeper last."""
        roles = self.roles or tuple(ROLE_CYCLE[i % len(ROLE_CYCLE)] for i in range(self.processes))
        counts: dict[str, int] = {}
        out = []
        for role in roles:
            n = counts[role] = counts.get(role, 0) + 1
            out.append((f"{role[0]}{n}", role))
        return [*out, ("s1", "sweeper")]
