from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import lash_streams as ls
from lash_streams import observability as obs
from lash_streams.bus import Bus
from tests._bus import bus, bus_factory  # noqa: F401
from tests._servers import Backend


@dataclass
class Observed:
    """A private registry and span exporter the library records into."""

    registry: CollectorRegistry
    exporter: InMemorySpanExporter

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; 0 when it was never recorded."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def spans(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]


@pytest.fixture
def observed() -> Iterator[Observed]:
    """Metrics and spans on for the test, into its own registry and exporter
    (not the global ones); the import-time state comes back afterwards."""
    had_metrics, had_tracing = obs.metrics_enabled(), obs.tracing_enabled()
    registry = CollectorRegistry()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    obs.enable_metrics(registry)
    obs.enable_tracing(provider)
    try:
        yield Observed(registry, exporter)
    finally:
        obs.enable_metrics() if had_metrics else obs.disable_metrics()
        obs.enable_tracing() if had_tracing else obs.disable_tracing()
        provider.shutdown()


@pytest.fixture
async def obs_bus(backend: Backend, namespace: str) -> AsyncIterator[Bus]:
    """A bus on each standalone server the session has."""
    async with ls.connect(backend.connect_url, namespace=namespace) as opened:
        yield opened
