"""What a worker's handlers see and give back (issue 16): ``Job`` (a typed
payload, the record, the attempt, fenced appends), ``JobRetry`` (backoff
before a single terminal), ``JobFailed`` (fail now, no retry), ``JobOutcome``
(what running a job came to), and registrations for jobs (``job_registration``,
``wake_on_terminal``)."""

from __future__ import annotations

import functools
import inspect
import random
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import msgspec

from lash_streams.errors import InvalidValue
from lash_streams.model import (
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    InputEngine,
    InputExternal,
    InputSessionTurn,
    InputToolCall,
    LashSchema,
    OriginatorHost,
    OriginatorSession,
    ProcessAwaitOutput,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessIdentity,
    ProcessLease,
    ProcessProvenance,
    ProcessRecord,
    ProcessRegistration,
    ProcessWakeSpec,
    RecoveryDisposition,
    SelConst,
    SessionScope,
    ToolFailureClass,
    default_process_event_types,
)
from lash_streams.store.dispatch import runnable

if TYPE_CHECKING:
    from lash_streams.store import Store

T = TypeVar("T")

_OUTPUTS = (AwaitSuccess, AwaitFailure, AwaitCancelled, AwaitAbandoned)


@dataclass(frozen=True)
class JobRetry:
    """Attempts at a job before its terminal: a handler that raises is called
    again after ``backoff_s * multiplier**(n-1)`` seconds (at most
    ``max_backoff_s``, +/- ``jitter`` of it), under the same lease, until
    ``attempts`` calls in all. ``JobFailed`` and a returned failure are never
    retried. The wait holds the job's run slot and lease (kept renewed), so a
    crash during it leaves the job to the usual recovery: a rerunnable job is
    run again from its first attempt; a started owner-bound one is abandoned."""

    attempts: int = 3
    backoff_s: float = 1.0
    multiplier: float = 2.0
    max_backoff_s: float = 60.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise InvalidValue(f"attempts must be an integer, got {self.attempts!r}")
        if self.attempts < 1:
            raise InvalidValue(f"attempts must be at least 1, got {self.attempts}")
        for name in ("backoff_s", "multiplier", "max_backoff_s", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidValue(f"{name} must be a number >= 0, got {value!r}")
        if self.multiplier < 1:
            raise InvalidValue(f"multiplier must be at least 1, got {self.multiplier}")
        if self.jitter > 1:
            raise InvalidValue(f"jitter is a fraction of the wait (0..1), got {self.jitter}")

    def backoff(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed."""
        wait = min(self.max_backoff_s, self.backoff_s * self.multiplier ** (failed_attempt - 1))
        return max(0.0, wait * (1 + random.uniform(-self.jitter, self.jitter)))


#: One attempt: ``JobRetry()`` with ``attempts=1``.
NO_RETRY = JobRetry(attempts=1)


class JobFailed(Exception):
    """Raised by a handler: the job fails now with this code and message, no
    retry (bad input, a refusal: another attempt would fail the same way)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "job_failed",
        failure_class: ToolFailureClass = ToolFailureClass.EXECUTION,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.failure_class = failure_class


@dataclass
class Job(Generic[T]):
    """One run of a job, as its handler sees it. ``payload`` is the job's
    input decoded to the type the handler's parameter names (``Job[Args]``,
    Args a msgspec Struct, a dataclass or a plain type), else the JSON value."""

    id: str
    kind: str
    payload: T
    record: ProcessRecord
    attempt: int
    #: The lease the job runs under (renewals keep its token and fencing).
    lease: ProcessLease
    _store: Store = field(repr=False)

    async def append(
        self, event_type: str, payload: Any = None, *, replay_key: str | None = None
    ) -> ProcessEventAppendResult:
        """Append a progress event under the job's lease (a worker that lost
        the job cannot write to it). With ``replay_key`` a rerun appends
        nothing twice: the resume idiom (docs/workers.md)."""
        request = ProcessEventAppendRequest.new(event_type, msgspec.to_builtins(payload))
        if replay_key is not None:
            request = request.with_replay_key(replay_key)
        return await self._store.append_event(self.id, request, lease=self.lease)

    async def done_steps(self) -> dict[str, Any]:
        """The payloads this job's earlier runs appended with a replay key, by
        key: what a rerun skips (the resume idiom, docs/workers.md)."""
        events = await self._store.events_after(self.id, 0)
        return {
            e.invocation.replay.key: e.payload for e in events if e.invocation.replay is not None
        }


JobStatus = Literal["completed", "failed", "cancelled", "abandoned", "lost", "not_started"]


@dataclass(frozen=True)
class JobOutcome:
    """What running a job came to. ``output`` is the terminal this run wrote;
    ``lost``: the lease went to another owner before a terminal (it writes
    one); ``not_started``: ``reason`` says why (terminal already, held by a
    live owner, started elsewhere, no handler here, unknown id)."""

    process_id: str
    status: JobStatus
    output: ProcessAwaitOutput | None = None
    attempts: int = 0
    reason: str | None = None


def status_of(output: ProcessAwaitOutput) -> JobStatus:
    if isinstance(output, AwaitSuccess):
        return "completed"
    if isinstance(output, AwaitFailure):
        return "failed"
    if isinstance(output, AwaitCancelled):
        return "cancelled"
    return "abandoned"


Handler = Callable[[Job[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class HandlerSpec:
    """A handler with its own retry policy (``lash_streams.handler(fn, retry=)``)."""

    fn: Handler
    retry: JobRetry | None = None
    payload_type: Any = field(default=None, compare=False)


def handler(fn: Handler, *, retry: JobRetry | None = None) -> HandlerSpec:
    """``fn`` with its own ``JobRetry`` (else the worker's)."""
    return spec_of(fn, retry)


def spec_of(fn: Handler | HandlerSpec, retry: JobRetry | None = None) -> HandlerSpec:
    if isinstance(fn, HandlerSpec):
        return fn
    if not callable(fn) or not inspect.iscoroutinefunction(fn):
        raise InvalidValue(f"a handler is an async function taking a Job, got {fn!r}")
    if retry is not None and not isinstance(retry, JobRetry):
        raise InvalidValue(f"retry must be a JobRetry, got {retry!r}")
    return HandlerSpec(fn, retry, _payload_type(fn))


def _payload_type(fn: Handler) -> Any:
    """``Args`` of the handler's first parameter annotated ``Job[Args]``."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: the payload stays JSON
        return None
    params = [p for p in inspect.signature(fn).parameters if p != "return"]
    if not params:
        raise InvalidValue(f"handler {fn.__qualname__} must take the Job as its first parameter")
    hint = hints.get(params[0])
    if typing.get_origin(hint) is Job:
        (arg,) = typing.get_args(hint)
        return None if arg is Any else arg
    return None


def raw_payload(record: ProcessRecord) -> Any:
    """A job's input as JSON: an engine input's payload, an external input's
    metadata, a tool call or a session turn decoded."""
    source = record.input
    if isinstance(source, InputEngine):
        return source.payload
    if isinstance(source, InputExternal):
        return source.metadata
    if isinstance(source, InputToolCall):
        return msgspec.json.decode(source.call)
    assert isinstance(source, InputSessionTurn)
    return msgspec.json.decode(source.turn_input)


def decode_payload(spec: HandlerSpec, record: ProcessRecord) -> Any:
    """The payload as the handler wants it; ``JobFailed`` when it does not fit."""
    raw = raw_payload(record)
    if spec.payload_type is None:
        return raw
    try:
        return msgspec.convert(raw, spec.payload_type, strict=False)
    except msgspec.ValidationError as err:
        name = getattr(spec.payload_type, "__name__", repr(spec.payload_type))
        raise JobFailed(
            f"the payload does not fit {name}: {err}",
            code="invalid_payload",
            failure_class=ToolFailureClass.INVALID_REQUEST,
        ) from None


def output_of(result: Any) -> ProcessAwaitOutput:
    """A handler's return value as the job's terminal: an await output as it
    is, anything else JSON-able as ``AwaitSuccess(value=...)``."""
    if isinstance(result, _OUTPUTS):
        return result
    try:
        value = msgspec.to_builtins(result)
        msgspec.json.encode(value)
    except (TypeError, msgspec.EncodeError) as err:
        raise JobFailed(
            f"the handler returned {type(result).__name__}, which is not JSON ({err})",
            code="invalid_result",
        ) from None
    return AwaitSuccess(value=value)


_TERMINAL_NAMES = {
    "process.completed": "completed",
    "process.failed": "failed",
    "process.cancelled": "was cancelled",
    "process.abandoned": "was abandoned",
}


def wake_on_terminal(kind: str) -> list[ProcessEventType]:
    """lash's event types with each terminal also waking the job's wake
    target (its session): its terminal event is the wake, deduplicated by
    event identity, with the text ``job <kind> <state>``."""
    return list(_wake_on_terminal(kind))


@functools.lru_cache(maxsize=1024)
def _wake_on_terminal(kind: str) -> tuple[ProcessEventType, ...]:
    # The same frozen values for a kind: registration caches (the payload
    # schema validators among them) are keyed by identity.
    types = []
    for declared in default_process_event_types():
        state = _TERMINAL_NAMES.get(declared.name)
        if state is None:
            types.append(declared)
            continue
        wake = ProcessWakeSpec(input=SelConst(f"job {kind} {state}"))
        semantics = ProcessEventSemanticsSpec(terminal=declared.semantics.terminal, wake=wake)
        types.append(
            ProcessEventType(
                name=declared.name, payload_schema=declared.payload_schema, semantics=semantics
            )
        )
    return tuple(types)


def job_registration(
    kind: str,
    payload: Any = None,
    *,
    id: str,
    disposition: RecoveryDisposition = RecoveryDisposition.RERUNNABLE,
    session: SessionScope | str | None = None,
    wake: bool = True,
    label: str | None = None,
    event_types: tuple[str, ...] = ("job.progress",),
) -> ProcessRegistration:
    """A job's registration: an external input carrying ``payload``
    (a msgspec Struct, dataclass or JSON value), the kind as its identity. With
    a ``session`` (a session id or a ``SessionScope``) the session is its
    originator and wake target, and ``wake`` makes its terminal wake it.
    ``event_types`` names the plain event types a handler may append
    (``Job.append``), any payload, no semantics."""
    if not isinstance(kind, str) or not kind.strip():
        raise InvalidValue(f"a job kind is a non-empty string, got {kind!r}")
    if not isinstance(disposition, RecoveryDisposition) or not runnable(disposition):
        raise InvalidValue(
            f"a job is rerunnable or owner-bound (a worker runs it), got {disposition!r}"
        )
    try:
        value = msgspec.to_builtins(payload)
    except TypeError as err:
        raise InvalidValue(f"the payload is not JSON: {err}") from None
    except RecursionError:
        raise InvalidValue("the payload is not JSON: nested too deep") from None
    scope: SessionScope | None
    if session is None:
        scope = None
    elif isinstance(session, SessionScope):
        scope = session
    elif isinstance(session, str) and session.strip():
        scope = SessionScope(session_id=session)
    else:
        raise InvalidValue(f"session is a session id or a SessionScope, got {session!r}")
    provenance = ProcessProvenance(
        originator=OriginatorHost() if scope is None else OriginatorSession(scope=scope)
    )
    return ProcessRegistration(
        id=id,
        # External to lash's engine (which needs a captured env): run by a worker.
        input=InputExternal(metadata=value),
        disposition=disposition,
        identity=ProcessIdentity(kind=kind, label=label),
        event_types=[
            *(wake_on_terminal(kind) if scope is not None and wake else []),
            *(_plain_type(name) for name in event_types),
        ],
        provenance=provenance,
        wake_target=scope,
    )


@functools.lru_cache(maxsize=1024)
def _plain_type(name: str) -> ProcessEventType:
    if not isinstance(name, str) or not name:
        raise InvalidValue(f"an event type name is a non-empty string, got {name!r}")
    return ProcessEventType(
        name=name, payload_schema=LashSchema.any(), semantics=ProcessEventSemanticsSpec()
    )
