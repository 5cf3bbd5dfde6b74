"""Typed errors: one base class, one subclass per lash error kind (spec §14).

Every error carries ``kind`` (the spec's snake_case error kind) so callers can
branch without parsing messages; messages keep lash's reference wording.
"""

from __future__ import annotations


class LashStreamsError(Exception):
    """Base class of every error lash-streams raises."""

    kind: str = "lash_streams"

    def __init__(self, message: str, *, process_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.process_id = process_id


# -- logical errors (GEN-5: they leave nothing written) -----------------------


class UnknownProcess(LashStreamsError):
    kind = "unknown_process"

    def __init__(self, process_id: str) -> None:
        super().__init__(f"unknown process `{process_id}`", process_id=process_id)


class InvalidRegistration(LashStreamsError):
    kind = "invalid_registration"


class RegistrationConflict(LashStreamsError):
    kind = "registration_conflict"


class ReplayConflict(LashStreamsError):
    kind = "replay_conflict"


class UndeclaredEventType(LashStreamsError):
    kind = "undeclared_event_type"


class ReplayKeyRequired(LashStreamsError):
    kind = "replay_key_required"


class InvalidPayload(LashStreamsError):
    kind = "invalid_payload"


class SelectorError(LashStreamsError):
    kind = "selector_error"


class AlreadyTerminal(LashStreamsError):
    kind = "already_terminal"


class TerminalRejectsAbandonRequest(LashStreamsError):
    kind = "terminal_rejects_abandon_request"


class TerminalRejectsWait(LashStreamsError):
    kind = "terminal_rejects_wait"


class InvalidSignalName(LashStreamsError):
    kind = "invalid_signal_name"


class NotVisible(LashStreamsError):
    kind = "not_visible"


class ExternallyOwnedNotExecutable(LashStreamsError):
    kind = "externally_owned_not_executable"


class MissingExecutionId(LashStreamsError):
    kind = "missing_execution_id"


class GrantMissing(LashStreamsError):
    kind = "grant_missing"


class ExternalRefConflict(LashStreamsError):
    kind = "external_ref_conflict"


class InvalidId(LashStreamsError):
    """An id that cannot be stored safely (not UTF-8, too long, empty)."""

    kind = "invalid_id"


class PayloadTooLarge(LashStreamsError):
    kind = "payload_too_large"


class InvalidValue(LashStreamsError, ValueError):
    """A value a call would store but that would not read back as lash's type
    (a negative or too large integer, a wrong shape, non-JSON data): refused
    before anything is written."""

    kind = "invalid_value"


class InvalidType(LashStreamsError, TypeError):
    """An argument of the wrong Python type (bytes where text is expected, a
    dict where a model value is): refused before anything is written. Also a
    ``TypeError``, so code catching that keeps working."""

    kind = "invalid_type"


class BatchItemSkipped(LashStreamsError):
    """A batch item not written because an earlier item of the same process
    in that batch was refused (a process's items apply in order or not at all)."""

    kind = "batch_item_skipped"


class BatchPartlyApplied(LashStreamsError):
    """``append_events`` wrote some items and the server refused others.

    ``outcomes`` has one entry per item, in input order: the
    ``ProcessEventAppendResult`` of a written (or replayed) item, or the typed
    error of one that was not written. Retry only the failed items."""

    kind = "batch_partly_applied"

    def __init__(self, message: str, outcomes: list[object]) -> None:
        super().__init__(message)
        self.outcomes = outcomes


class DecodeError(LashStreamsError):
    """Malformed wire JSON: wrong types, missing fields, invalid JSON text."""

    kind = "decode_error"


class ConsumerClosed(LashStreamsError):
    """``next()`` on a wake consumer that was closed (iteration just stops)."""

    kind = "consumer_closed"


class AlreadySettled(LashStreamsError):
    """A wake message settled a second time: each delivery is settled exactly
    one way (``ack``, ``nack`` or ``dead_letter``)."""

    kind = "already_settled"


# -- leases (LS-*) -------------------------------------------------------------


class LeaseError(LashStreamsError):
    kind = "lease"


class LeaseExpired(LeaseError):
    """LS-7: the presented lease is missing, superseded or no longer live."""

    kind = "lease_expired"

    def __init__(self, process_id: str) -> None:
        super().__init__(
            f"process lease for `{process_id}` is missing or expired", process_id=process_id
        )


class LeaseFenced(LeaseError):
    """RX-12: a fenced write presented a lease that is no longer current."""

    kind = "lease_fenced"


# -- backend -------------------------------------------------------------------


class BackendError(LashStreamsError):
    """Connection or storage failure, distinct from every logical kind (§14)."""

    kind = "backend"


class ConnectionFailed(BackendError):
    kind = "connection"


class WriteOutcomeUnknown(BackendError):
    """A non-idempotent write was sent but its reply was lost.

    The write may or may not have happened; it was not retried because a
    retry could duplicate it (RX-18). Re-read state, or append with a replay
    key so a retry is safe.
    """

    kind = "write_outcome_unknown"


class DurabilityNotMet(WriteOutcomeUnknown):
    """The write is applied on the primary, but the wait that
    ``connect(durability=...)`` asks for was not met in time (too few replicas
    acknowledged it, or the fsync did not happen): it may not survive a
    failover or a server crash. The outcome is as unknown as a lost reply:
    retry with the same replay key (it returns the stored event and waits
    again), or re-read after replication recovers.

    ``wanted`` and ``acknowledged`` count replicas (for an fsync wait,
    ``local_fsynced`` says whether the primary fsynced)."""

    kind = "durability_not_met"

    def __init__(
        self,
        message: str,
        *,
        wanted: int = 0,
        acknowledged: int = 0,
        local_fsynced: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.wanted = wanted
        self.acknowledged = acknowledged
        self.local_fsynced = local_fsynced


class NotWritten(BackendError):
    """A write that provably did not run: the command was never sent (the
    connection could not be made, no pooled connection came free) or the
    server refused it before running it (loading, cluster down, TRYAGAIN,
    read-only replica), each time until the retries ran out. Safe to retry."""

    kind = "not_written"


class ServerError(BackendError):
    """The server refused the command; the message carries its reply."""

    kind = "server"


class OutOfMemory(ServerError):
    """``OOM``: the server is at ``maxmemory`` with ``noeviction`` (nothing written)."""

    kind = "server_oom"


class ReadOnlyReplica(ServerError):
    """``READONLY``: the connection reaches a replica (after a failover that
    outlasted the retries); nothing written."""

    kind = "server_readonly"


class PermissionDenied(ServerError):
    """``NOPERM`` or an ACL failure inside a script: the user lacks a command
    or a key (docs/operating.md lists what lash-streams needs)."""

    kind = "server_noperm"


class AuthenticationFailed(ServerError):
    """The server refused the URL's credentials (``WRONGPASS``, ``NOAUTH``):
    it was reached, so this is not a connection failure."""

    kind = "server_auth"


class ServerBusy(ServerError):
    """``BUSY``: the server runs a long script (nothing written)."""

    kind = "server_busy"


class WrongType(ServerError):
    """``WRONGTYPE``: a key of the namespace holds another type than ours
    (written by something else)."""

    kind = "server_wrongtype"


class GroupMissing(ServerError):
    """``NOGROUP``: a stream or its consumer group does not exist (a kind no
    worker created it for yet, or the server lost it: a restart without
    persistence, ``FLUSHALL``). ``bus.ensure_ready_group(kind)`` creates a
    ready stream's; a worker recreates it by itself."""

    kind = "server_nogroup"


class EmbeddedServerError(BackendError):
    kind = "embedded_server"


__all__ = [
    "AlreadySettled",
    "AlreadyTerminal",
    "AuthenticationFailed",
    "BackendError",
    "BatchItemSkipped",
    "BatchPartlyApplied",
    "ConnectionFailed",
    "ConsumerClosed",
    "DecodeError",
    "DurabilityNotMet",
    "EmbeddedServerError",
    "ExternalRefConflict",
    "ExternallyOwnedNotExecutable",
    "GrantMissing",
    "GroupMissing",
    "InvalidId",
    "InvalidPayload",
    "InvalidRegistration",
    "InvalidSignalName",
    "InvalidType",
    "InvalidValue",
    "LashStreamsError",
    "LeaseError",
    "LeaseExpired",
    "LeaseFenced",
    "MissingExecutionId",
    "NotVisible",
    "NotWritten",
    "OutOfMemory",
    "PayloadTooLarge",
    "PermissionDenied",
    "ReadOnlyReplica",
    "RegistrationConflict",
    "ReplayConflict",
    "ReplayKeyRequired",
    "SelectorError",
    "ServerBusy",
    "ServerError",
    "TerminalRejectsAbandonRequest",
    "TerminalRejectsWait",
    "UndeclaredEventType",
    "UnknownProcess",
    "WriteOutcomeUnknown",
    "WrongType",
]
