"""What instrumented code calls while metrics or tracing are on.

Call sites read ``lash_streams.observability.hooks`` and call in only when it
is not None; these methods then check which of the two is on. The wrappers
(``append``, ``deliver``, ``sweep``) take the awaitable of the uninstrumented
operation, so the store code keeps one path and the disabled case adds no
coroutine, span or clock read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from contextvars import ContextVar
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from lash_streams.observability import tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from lash_streams.model import (
        ProcessAwaitOutput,
        ProcessEventAppendResult,
        ProcessWakeDelivery,
    )
    from lash_streams.observability.metrics import Metrics


class SweepOutcome(Protocol):
    """What a sweep pass reports (coordination's ``SweepReport`` has this
    shape; observability sits below coordination and names only the shape)."""

    @property
    def examined(self) -> int: ...
    @property
    def ran(self) -> Sequence[Any]: ...
    @property
    def abandoned(self) -> Sequence[Any]: ...
    @property
    def skipped(self) -> Sequence[Any]: ...
    @property
    def failed(self) -> Sequence[Any]: ...


Report = TypeVar("Report", bound=SweepOutcome)


class _AppendCall:
    """The outcome the append path settled on, for the wrapper around it."""

    __slots__ = ("outcome",)

    def __init__(self) -> None:
        self.outcome: str | None = None


# Set only inside ``Hooks.append``: pipelined batch items settle outside any
# append call and must not touch a caller's record.
_current_append: ContextVar[_AppendCall | None] = ContextVar("lash_streams_append", default=None)


class Hooks:
    __slots__ = ("_children", "_emitting", "metrics", "tracer")

    def __init__(self, metrics: Metrics | None, tracer: Tracer | None) -> None:
        self.metrics = metrics
        self.tracer = tracer
        self._emitting = tracing.emitting(tracer) if tracer is not None else None
        # Labelled children a worker updates on every job (``labels()``
        # validates and locks each time); none of these is ever removed.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def _span_tracer(self) -> Tracer | None:
        """The tracer when its spans go somewhere, else None."""
        if self._emitting is None or not self._emitting():
            return None
        return self.tracer

    # -- appends -----------------------------------------------------------------

    async def append(
        self,
        call: Awaitable[ProcessEventAppendResult],
        process_id: str,
        event_type: str,
        fenced: bool,
    ) -> ProcessEventAppendResult:
        """One ``append_event`` call: latency, an ``error`` outcome when it
        raised before settling, and the ``lash_streams.append`` span."""
        record = _AppendCall()
        token = _current_append.set(record)
        start = perf_counter()
        try:
            tracer = self._span_tracer()
            if tracer is None:
                return await call
            attributes: dict[str, Any] = {
                "lash_streams.process_id": process_id,
                "lash_streams.event_type": event_type,
                "lash_streams.fenced": fenced,
            }
            with tracer.start_as_current_span(tracing.APPEND, attributes=attributes) as span:
                result = await call
                span.set_attribute("lash_streams.sequence", result.event.sequence)
                span.set_attribute("lash_streams.replayed", record.outcome == "replayed")
                return result
        except Exception:
            # A conflict is an outcome the script reported, counted where it settled.
            if record.outcome is None and self.metrics is not None:
                self.metrics.appends["error"].inc()
            raise
        finally:
            _current_append.reset(token)
            if self.metrics is not None:
                self.metrics.append_seconds.observe(perf_counter() - start)

    def inside_append(self) -> bool:
        """Whether an ``append`` call is observing this task already (an
        append that takes another path inside it is counted once)."""
        return _current_append.get() is not None

    def append_settled(self, outcome: str, count: int = 1) -> None:
        """The script (or the replay lookup) answered: appended, replayed or
        conflict (``count`` items of a batch at once)."""
        if self.metrics is not None:
            self.metrics.appends[outcome].inc(count)
        record = _current_append.get()
        if record is not None:
            record.outcome = outcome

    # -- wakes -------------------------------------------------------------------

    async def deliver(
        self,
        call: Awaitable[list[bool]],
        items: Sequence[tuple[ProcessWakeDelivery, Any]],
    ) -> list[bool]:
        """One ``deliver_wakes`` call: delivered and deduped counts, and the
        ``lash_streams.deliver_wake`` span."""
        tracer = self._span_tracer()
        if tracer is None:
            results = await call
        else:
            attributes: dict[str, Any] = {"lash_streams.wakes": len(items)}
            if len(items) == 1:
                delivery = items[0][0]
                attributes["lash_streams.process_id"] = delivery.process_id
                attributes["lash_streams.sequence"] = delivery.sequence
                attributes["lash_streams.wake_id"] = delivery.wake_id
                attributes["lash_streams.scope_id"] = delivery.target_scope_id
            with tracer.start_as_current_span(tracing.DELIVER_WAKE, attributes=attributes) as span:
                results = await call
                delivered = sum(results)
                span.set_attribute("lash_streams.delivered", delivered)
                span.set_attribute("lash_streams.deduped", len(results) - delivered)
        if self.metrics is not None:
            delivered = sum(results)
            if delivered:
                self.metrics.wakes_delivered.inc(delivered)
            if delivered < len(results):
                self.metrics.wakes_deduped.inc(len(results) - delivered)
        return results

    def follow_up_failed(self, step: str) -> None:
        """A committed write's cross-slot step (``index_terminal``,
        ``deliver_wake``) failed; repair or the relay finishes it."""
        if self.metrics is not None:
            self.metrics.follow_ups_failed.labels(step).inc()

    def unreadable_row(self) -> None:
        if self.metrics is not None:
            self.metrics.unreadable_rows.inc()

    def consumer_fault(self, group: str) -> None:
        """A wake consumer's read failed on a server fault; it retries."""
        if self.metrics is not None:
            self.metrics.consumer_faults.labels(group).inc()

    def relay_dead_lettered(self) -> None:
        if self.metrics is not None:
            self.metrics.relay_dead_lettered.inc()

    def dead_lettered(self, group: str) -> None:
        if self.metrics is not None:
            self.metrics.wakes_dead_lettered.labels(group).inc()

    def nacked(self, group: str, count: int = 1) -> None:
        if self.metrics is not None:
            self.metrics.wakes_nacked.labels(group).inc(count)

    def ack_refused(self, group: str, count: int = 1) -> None:
        if self.metrics is not None:
            self.metrics.wake_acks_refused.labels(group).inc(count)

    # -- leases ------------------------------------------------------------------

    def lease_claimed(self, kind: str, status: str) -> None:
        """``kind``: claim or reclaim; ``status``: the claim script's answer."""
        if self.metrics is not None:
            outcome = {"ACQUIRED": "acquired", "BUSY": "busy"}.get(status, "unknown_process")
            self.metrics.claims[(kind, outcome)].inc()

    def lease_renewed(self, renewed: bool) -> None:
        if self.metrics is not None:
            (self.metrics.renewed if renewed else self.metrics.renewal_expired).inc()

    def lease_lost(self, stage: str) -> None:
        if self.metrics is not None:
            self.metrics.losses[stage].inc()

    # -- recovery ----------------------------------------------------------------

    async def sweep(self, call: Awaitable[Report]) -> Report:
        """One ``sweep_once``: the pass, its rows by outcome, and the
        ``lash_streams.sweep`` span."""
        tracer = self._span_tracer()
        if tracer is None:
            report = await call
        else:
            with tracer.start_as_current_span(tracing.SWEEP) as span:
                report = await call
                span.set_attributes(
                    {
                        "lash_streams.examined": report.examined,
                        "lash_streams.ran": len(report.ran),
                        "lash_streams.abandoned": len(report.abandoned),
                        "lash_streams.skipped": len(report.skipped),
                        "lash_streams.failed": len(report.failed),
                    }
                )
        if self.metrics is not None:
            self.metrics.sweeps.inc()
            for outcome in ("ran", "abandoned", "skipped", "failed"):
                count = len(getattr(report, outcome))
                if count:
                    self.metrics.rows[outcome].inc(count)
        return report

    def sweep_pass(self) -> None:
        """A pass of ``Recovery.run`` (its rows report as they finish)."""
        if self.metrics is not None:
            self.metrics.sweeps.inc()

    def row_recovered(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.rows[outcome].inc()

    def terminal_written(self, output: ProcessAwaitOutput) -> None:
        """Recovery wrote ``output`` under its lease."""
        if self.metrics is None:
            return
        from lash_streams.model import AwaitAbandoned

        if isinstance(output, AwaitAbandoned):
            self.metrics.abandonments[output.evidence.writer.value].inc()

    def job_done(self, kind: str, status: str) -> None:
        """A worker ran a job of ``kind`` to ``status`` (JobOutcome.status)."""
        if self.metrics is not None:
            self._child(self.metrics.jobs, kind, status).inc()

    def job_retried(self, kind: str) -> None:
        """A job's attempt raised and it is tried again after its backoff."""
        if self.metrics is not None:
            self._child(self.metrics.job_retries, kind).inc()

    def jobs_busy(self, worker: str, busy: int) -> None:
        """The run slots a worker holds now."""
        if self.metrics is not None:
            self._child(self.metrics.busy_slots, worker).set(busy)

    def running(self, count: int, oldest_age_s: float) -> None:
        """The namespace's running processes and the age of the oldest."""
        if self.metrics is not None:
            self.metrics.running_processes.set(count)
            self.metrics.oldest_running_age.set(oldest_age_s)
