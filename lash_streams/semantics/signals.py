"""Signals and cancel requests (SG-1..SG-3, SG-5, CN-1)."""

from __future__ import annotations

from typing import Any

from lash_streams.errors import InvalidSignalName
from lash_streams.model import ProcessEventAppendRequest, RuntimeReplay
from lash_streams.model.events import CANCEL_REQUESTED as CANCEL_REQUESTED

_SIGNAL_PREFIX = "signal."
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def validate_signal_name(name: str) -> None:
    """SG-1: non-empty, ASCII letters, digits, ``_`` or ``-`` only."""
    if not isinstance(name, str):
        raise InvalidSignalName(f"a process signal name is a string, got {type(name).__name__}")
    if not name or not all(ch in _NAME_CHARS for ch in name):
        raise InvalidSignalName(
            "process signal name must be non-empty and contain only ASCII letters, "
            f"digits, `_`, or `-`, got `{name}`"
        )


def signal_event_type(name: str) -> str:
    """SG-2: the event type ``signal.<name>`` (the name is validated first)."""
    validate_signal_name(name)
    return _SIGNAL_PREFIX + name


def signal_name_from_event_type(event_type: str) -> str | None:
    """SG-2: the suffix after ``signal.`` (unvalidated, as in lash), else ``None``."""
    if event_type.startswith(_SIGNAL_PREFIX):
        return event_type[len(_SIGNAL_PREFIX) :]
    return None


def signal_replay_key(process_id: str, name: str, signal_id: str) -> str:
    """SG-3: the replay key of signal ``name`` sent with ``signal_id``."""
    return f"process:{process_id}:signal.{name}:{signal_id}"


def signal_request(
    process_id: str, name: str, signal_id: str, payload: Any
) -> ProcessEventAppendRequest:
    """SG-3: the append a signal send makes (raises ``InvalidSignalName``)."""
    return ProcessEventAppendRequest(
        event_type=signal_event_type(name),
        payload=payload,
        replay=RuntimeReplay(key=signal_replay_key(process_id, name, signal_id)),
    )


def signal_wait_key(process_id: str, name: str, ordinal: int) -> str:
    """SG-5: the durable wait key of the ``ordinal``-th wait on signal ``name``."""
    return f"process:{process_id}:signal.{name}:{ordinal}"


def cancel_requested_request(process_id: str, reason: str | None) -> ProcessEventAppendRequest:
    """CN-1: payload ``{"reason": reason}`` keyed by its own payload hash, so the
    same reason replays and a different reason appends a new event (CN-3).
    The construction is lash's own (``ProcessEventAppendRequest.cancel_requested``)."""
    return ProcessEventAppendRequest.cancel_requested(process_id, reason)
