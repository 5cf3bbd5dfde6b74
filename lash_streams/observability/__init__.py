"""Optional Prometheus metrics and OpenTelemetry spans (docs/observability.md).

Both are on by default when their extra is installed (``lash-streams[metrics]``,
``lash-streams[otel]``) and off otherwise. ``LASH_STREAMS_METRICS=0`` or
``LASH_STREAMS_TRACING=0`` switches one off at import, before its library is
even imported; the functions below switch them at run time.

Instrumented code reads the module attribute ``hooks``: None while both are
off, so the append, delivery, lease and sweep paths then pay one attribute
lookup and a branch, nothing else.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lash_streams.observability import metrics as _metrics
from lash_streams.observability import tracing as _tracing
from lash_streams.observability.hooks import Hooks

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider
    from prometheus_client import CollectorRegistry

__all__ = [
    "Hooks",
    "disable_metrics",
    "disable_tracing",
    "enable_metrics",
    "enable_tracing",
    "hooks",
    "metrics_enabled",
    "tracing_enabled",
]

METRICS_ENV = "LASH_STREAMS_METRICS"
TRACING_ENV = "LASH_STREAMS_TRACING"
_OFF = {"0", "false", "no", "off"}

#: What instrumented code calls; None when metrics and tracing are both off.
hooks: Hooks | None = None
_active_metrics: _metrics.Metrics | None = None
_active_tracer: Tracer | None = None


def _refresh() -> None:
    global hooks
    if _active_metrics is None and _active_tracer is None:
        hooks = None
    else:
        hooks = Hooks(_active_metrics, _active_tracer)


def enable_metrics(registry: CollectorRegistry | None = None) -> None:
    """Record into ``registry`` (default: prometheus_client's global
    ``REGISTRY``). Raises ImportError without the ``metrics`` extra."""
    global _active_metrics
    if not _metrics.available():
        raise ImportError("metrics need the `metrics` extra: pip install 'lash-streams[metrics]'")
    _active_metrics = _metrics.for_registry(registry)
    _refresh()


def disable_metrics() -> None:
    """Stop recording; the instruments stay registered with their values."""
    global _active_metrics
    _active_metrics = None
    _refresh()


def metrics_enabled() -> bool:
    return _active_metrics is not None


def enable_tracing(tracer_provider: TracerProvider | None = None) -> None:
    """Emit spans through ``tracer_provider`` (default: the global one).
    Raises ImportError without the ``otel`` extra."""
    global _active_tracer
    if not _tracing.available():
        raise ImportError("tracing needs the `otel` extra: pip install 'lash-streams[otel]'")
    _active_tracer = _tracing.tracer(tracer_provider)
    _refresh()


def disable_tracing() -> None:
    global _active_tracer
    _active_tracer = None
    _refresh()


def tracing_enabled() -> bool:
    return _active_tracer is not None


def _wanted(env: str) -> bool:
    return os.environ.get(env, "").strip().lower() not in _OFF


def _configure_from_env() -> None:
    if _wanted(METRICS_ENV) and _metrics.available():
        enable_metrics()
    if _wanted(TRACING_ENV) and _tracing.available():
        enable_tracing()


_configure_from_env()
