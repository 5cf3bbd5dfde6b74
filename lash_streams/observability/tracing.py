"""OpenTelemetry tracer (the ``otel`` extra, ``opentelemetry-api``).

Only the API is a dependency: spans go wherever the application's SDK sends
them, and without an SDK the API itself records nothing. ``opentelemetry`` is
imported only when tracing is enabled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

#: The instrumentation scope every span of this library carries.
SCOPE = "lash_streams"

APPEND = "lash_streams.append"
DELIVER_WAKE = "lash_streams.deliver_wake"
SWEEP = "lash_streams.sweep"


def available() -> bool:
    """Whether the ``otel`` extra is installed."""
    try:
        from opentelemetry import trace  # noqa: F401
    except ImportError:
        return False
    return True


def tracer(provider: TracerProvider | None = None) -> Tracer:
    """The library's tracer, from ``provider`` or the global provider (which
    may be set after this call: the API's proxy tracer follows it)."""
    from importlib.metadata import PackageNotFoundError, version

    from opentelemetry import trace

    try:
        # Not lash_streams.__version__: tracing is set up while that package imports.
        ours: str | None = version("lash-streams")
    except PackageNotFoundError:
        ours = None
    return trace.get_tracer(SCOPE, ours, tracer_provider=provider)


def emitting(tracer: Tracer) -> Callable[[], bool]:
    """Whether spans of ``tracer`` go anywhere, asked per call. A tracer of the
    global provider emits nothing until the application sets an SDK provider
    (the API's proxy then follows it), so until then the hot paths skip the
    span and its attributes (about 20 us an append)."""
    from opentelemetry import trace

    if not isinstance(tracer, trace.ProxyTracer):
        return lambda: True
    get_provider = trace.get_tracer_provider
    proxy = trace.ProxyTracerProvider
    if "OTEL_PYTHON_TRACER_PROVIDER" in os.environ or not hasattr(trace, "_TRACER_PROVIDER"):
        # The API loads that provider on its first use: ask it every time.
        return lambda: not isinstance(get_provider(), proxy)
    # The API's global, set once by set_tracer_provider: read directly,
    # get_tracer_provider() looks the environment up on every call (a few us
    # an append while no SDK is set).
    api: Any = trace
    return lambda: api._TRACER_PROVIDER is not None and not isinstance(api._TRACER_PROVIDER, proxy)
