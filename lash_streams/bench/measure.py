"""Measuring: latency histograms (HdrHistogram, microseconds) and rates with
a throughput-over-time series. Wall clocks here only measure; nothing they
read decides ownership or expiry."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

#: Width of one throughput-over-time bucket.
BUCKET_S = 0.25
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class Latency:
    def __init__(self) -> None:
        self.hist = HdrHistogram(1, 60_000_000, 3)

    def record_since(self, start: float) -> None:
        self.hist.record_value(max(1, int((time.perf_counter() - start) * 1e6)))

    def ms(self, percentile: float) -> float:
        return float(self.hist.get_value_at_percentile(percentile)) / 1000

    def summary(self) -> dict[str, float]:
        return {
            "p50_ms": self.ms(50),
            "p99_ms": self.ms(99),
            "p999_ms": self.ms(99.9),
            "count": float(self.hist.get_total_count()),
        }

    def curve(self) -> list[tuple[float, float]]:
        """(percentile, ms) points for a percentile plot."""
        points = [50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99]
        return [(p, self.ms(p)) for p in points]


@dataclass
class Rate:
    count: int = 0
    elapsed_s: float = 0.0
    series: list[float] = field(default_factory=list)  # items/s per bucket

    @property
    def per_s(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"per_s": self.per_s, "count": self.count, "elapsed_s": self.elapsed_s}


async def for_duration(
    duration_s: float,
    step: Callable[[int], Awaitable[int]],
    on_tick: Callable[[], None] = lambda: None,
) -> Rate:
    """Call ``step(i)`` (returning how many items it did) until ``duration_s``
    has passed; count items per :data:`BUCKET_S` for the over-time plot."""
    rate = Rate()
    start = time.perf_counter()
    bucket_end, in_bucket, i = start + BUCKET_S, 0, 0
    while True:
        done = await step(i)
        i += 1
        rate.count += done
        in_bucket += done
        now = time.perf_counter()
        if now >= bucket_end:
            rate.series.append(in_bucket / BUCKET_S)
            bucket_end, in_bucket = bucket_end + BUCKET_S, 0
            on_tick()
        if now - start >= duration_s:
            rate.elapsed_s = now - start
            return rate


def payload(size: int) -> dict[str, Any]:
    """A JSON object of about ``size`` bytes (the schema the bench registers)."""
    return {"line": "x" * max(0, size - 20), "n": 1}
