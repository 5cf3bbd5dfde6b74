"""What a benchmark run measures and how much of it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

SECTIONS = (
    "baselines",
    "appends",
    "wakes",
    "dispatch",
    "producers",
    "memory",
    "recovery",
    "scale",
    "cpu",
)


@dataclass(frozen=True)
class BenchConfig:
    url: str | None = None
    namespace: str = "lash-bench"
    #: Processes the throughput phases spread their appends over.
    processes: int = 100
    #: Producer OS processes for the producer-scaling phase: 1, 2, ... up to this.
    producers: int = 4
    #: Wake consumers draining the wake throughput phase.
    consumers: int = 2
    payload_bytes: int = 64
    #: Seconds per throughput phase.
    duration_s: float = 10.0
    #: One-at-a-time round trips per latency measurement.
    samples: int = 5_000
    #: Registered processes for the cost-growth phase.
    scale: tuple[int, ...] = (1_000, 10_000, 100_000)
    lease_ttl_ms: int = 3_000
    sections: tuple[str, ...] = SECTIONS
    output: Path = field(default_factory=lambda: Path("bench-results"))

    @classmethod
    def quick(cls, **overrides: object) -> BenchConfig:
        """Small sizes: the whole run takes about a minute on 2 cores."""
        base = cls(duration_s=2.0, samples=1_000, scale=(1_000, 10_000), lease_ttl_ms=1_500)
        return replace(base, **overrides)  # type: ignore[arg-type]

    def producer_counts(self) -> list[int]:
        counts = [n for n in (1, 2, 4, 8, 16) if n <= self.producers]
        if self.producers not in counts:
            counts.append(self.producers)
        return counts
