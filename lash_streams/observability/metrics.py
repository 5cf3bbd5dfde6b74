"""Prometheus instruments (the ``metrics`` extra, ``prometheus-client``).

``prometheus_client`` is imported only when metrics are enabled, so a process
without the extra, or with ``LASH_STREAMS_METRICS=0``, never loads it.

Labels stay low-cardinality on purpose: outcomes, lease stages, abandon
writers and consumer-group names, never process or scope ids (those belong on
spans).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

#: Append latency buckets: an append is one or two round trips, well under a
#: millisecond on a local server, so the default buckets (from 5 ms) are too coarse.
APPEND_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

APPEND_OUTCOMES = ("appended", "replayed", "conflict", "error")
CLAIM_KINDS = ("claim", "reclaim")
CLAIM_OUTCOMES = ("acquired", "busy", "unknown_process")
LOSS_STAGES = ("run", "terminal", "fleet_scope")
ROW_OUTCOMES = ("ran", "abandoned", "skipped", "failed")
WRITERS = ("sweep", "owner_drain", "reconciled_request")


def available() -> bool:
    """Whether the ``metrics`` extra is installed."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


class Metrics:
    """Every instrument, registered once on one registry. Label children that
    a hot path uses are bound here, so recording is a plain ``inc()``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        appends = Counter(
            "lash_streams_appends_total",
            "append_event calls and pipelined batch items, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.appends = {o: appends.labels(o) for o in APPEND_OUTCOMES}
        self.append_seconds = Histogram(
            "lash_streams_append_duration_seconds",
            "Latency of append_event calls, every outcome included",
            registry=registry,
            buckets=APPEND_BUCKETS,
        )
        self.wakes_delivered = Counter(
            "lash_streams_wakes_delivered_total",
            "Wakes written to a scope's wake stream",
            registry=registry,
        )
        self.wakes_deduped = Counter(
            "lash_streams_wakes_deduped_total",
            "Wake deliveries dropped because the wake id was delivered within the dedupe window",
            registry=registry,
        )
        self.wakes_dead_lettered = Counter(
            "lash_streams_wakes_dead_lettered_total",
            "Wakes moved to a dead-letter stream (max_deliveries reached, undecodable, "
            "or dead-lettered by the handler)",
            ["group"],
            registry=registry,
        )
        self.unreadable_rows = Counter(
            "lash_streams_unreadable_rows_total",
            "Stored records that do not decode, skipped by namespace-wide reads",
            registry=registry,
        )
        self.wakes_nacked = Counter(
            "lash_streams_wakes_nacked_total",
            "Wakes handed back to their group for a later attempt (nack or a failed handler)",
            ["group"],
            registry=registry,
        )
        self.wake_acks_refused = Counter(
            "lash_streams_wake_acks_refused_total",
            "Acks refused because the delivery had moved to another consumer meanwhile",
            ["group"],
            registry=registry,
        )
        self.follow_ups_failed = Counter(
            "lash_streams_follow_ups_failed_total",
            "Cross-slot steps after a committed write that failed and were left to "
            "the worklist repair or the outbox relay, by step",
            ["step"],
            registry=registry,
        )
        self.consumer_faults = Counter(
            "lash_streams_consumer_server_faults_total",
            "Reads of a wake consumer that failed because the server was unreachable, "
            "restarting or re-forming (the consumer retries), by group",
            ["group"],
            registry=registry,
        )
        self.relay_dead_lettered = Counter(
            "lash_streams_relay_dead_lettered_total",
            "Wake intents the outbox relay could not deliver and set aside with a reason",
            registry=registry,
        )
        # Several processes sample the same group: "max" keeps multiprocess mode sane.
        self.consumer_lag = Gauge(
            "lash_streams_wake_consumer_lag",
            "Wake-stream entries not yet delivered to the group (XINFO GROUPS lag), "
            "summed over the scopes this process consumes",
            ["group"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.pending = Gauge(
            "lash_streams_wake_pending",
            "Wakes delivered to the group and not acknowledged (its PEL), summed over scopes",
            ["group"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.pel_age = Gauge(
            "lash_streams_wake_pel_age_seconds",
            "Age of the oldest unacknowledged wake of the group (server clock), over scopes",
            ["group"],
            registry=registry,
            multiprocess_mode="max",
        )
        claims = Counter(
            "lash_streams_lease_claims_total",
            "Lease claims and reclaims, by outcome",
            ["kind", "outcome"],
            registry=registry,
        )
        self.claims = {(k, o): claims.labels(k, o) for k in CLAIM_KINDS for o in CLAIM_OUTCOMES}
        renewals = Counter(
            "lash_streams_lease_renewals_total",
            "Lease renewals, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.renewed = renewals.labels("renewed")
        self.renewal_expired = renewals.labels("expired")
        losses = Counter(
            "lash_streams_lease_losses_total",
            "Leases lost by their holder: while running a row, before writing its "
            "terminal, or a fleet pod's scope lease",
            ["stage"],
            registry=registry,
        )
        self.losses = {s: losses.labels(s) for s in LOSS_STAGES}
        self.sweeps = Counter(
            "lash_streams_sweeps_total",
            "Recovery passes over the worklist (sweep_once calls and run() passes)",
            registry=registry,
        )
        rows = Counter(
            "lash_streams_sweep_rows_total",
            "Rows recovered by sweeps, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.rows = {o: rows.labels(o) for o in ROW_OUTCOMES}
        abandonments = Counter(
            "lash_streams_abandonments_total",
            "abandoned terminals written by recovery, by the evidence's writer",
            ["writer"],
            registry=registry,
        )
        self.abandonments = {w: abandonments.labels(w) for w in WRITERS}
        self.jobs = Counter(
            "lash_streams_jobs_total",
            "Jobs a worker ran, by job kind and outcome (completed, failed, cancelled, "
            "abandoned, lost)",
            ["kind", "outcome"],
            registry=registry,
        )
        self.job_retries = Counter(
            "lash_streams_job_retries_total",
            "Job attempts that raised and were retried after their backoff, by job kind",
            ["kind"],
            registry=registry,
        )
        self.busy_slots = Gauge(
            "lash_streams_worker_busy_slots",
            "Run slots a worker holds (jobs running or being started), by worker identity",
            ["worker"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.running_processes = Gauge(
            "lash_streams_running_processes",
            "Running (non-terminal) processes of the namespace, sampled by workers",
            registry=registry,
            multiprocess_mode="max",
        )
        self.oldest_running_age = Gauge(
            "lash_streams_oldest_running_age_seconds",
            "Age of the namespace's oldest running process (server clock), sampled by workers",
            registry=registry,
            multiprocess_mode="max",
        )
        # group -> stream -> (lag, pending, oldest age s): the gauges aggregate these.
        self._backlog: dict[str, dict[str, tuple[float, int, float]]] = {}

    def wake_backlog(
        self, group: str, stream: str, lag: float, pending: int, oldest_s: float
    ) -> None:
        """One scope's sample for ``group``: lag and pending add up over the
        scopes, the oldest age is the maximum."""
        self._backlog.setdefault(group, {})[stream] = (lag, pending, oldest_s)
        self._publish(group)

    def wake_backlog_gone(self, group: str, streams: Iterable[str]) -> None:
        """A consumer closed: its scopes no longer count for ``group``."""
        samples = self._backlog.get(group)
        if samples is None:
            return
        for stream in streams:
            samples.pop(stream, None)
        if samples:
            self._publish(group)
            return
        del self._backlog[group]
        for gauge in (self.consumer_lag, self.pending, self.pel_age):
            # A group nobody here consumes any more has no value, rather than a stale one.
            gauge.remove(group)

    def _publish(self, group: str) -> None:
        samples = self._backlog[group].values()
        self.consumer_lag.labels(group).set(sum(s[0] for s in samples))
        self.pending.labels(group).set(sum(s[1] for s in samples))
        self.pel_age.labels(group).set(max(s[2] for s in samples))


_by_registry: dict[int, Metrics] = {}


def for_registry(registry: CollectorRegistry | None) -> Metrics:
    """The instruments on ``registry`` (default: the global ``REGISTRY``),
    created on first use: enabling twice must not register twice."""
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    found = _by_registry.get(id(registry))
    if found is None or found.registry is not registry:
        found = _by_registry[id(registry)] = Metrics(registry)
    return found
