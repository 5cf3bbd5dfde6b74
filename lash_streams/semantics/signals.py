"""Signals and cancel requests (SG-1..SG-5, CN-1)."""

from __future__ import annotations

import re

from lash_streams.errors import InvalidSignalName
from lash_streams.model import ProcessEventAppendRequest, RuntimeReplay
from lash_streams.semantics.canonical import payload_hash

_SIGNAL_NAME = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
CANCEL_REQUESTED = "process.cancel_requested"


def validate_signal_name(name: str) -> None:
    if not _SIGNAL_NAME.fullmatch(name):
        raise InvalidSignalName(
            "process signal name must be non-empty and contain only ASCII letters, digits, "
            f"`_`, or `-`, got `{name}`"
        )


def signal_event_type(name: str) -> str:
    validate_signal_name(name)
    return f"signal.{name}"


def signal_name_from_event_type(event_type: str) -> str | None:
    return event_type[len("signal.") :] if event_type.startswith("signal.") else None


def signal_wait_key(process_id: str, name: str, ordinal: int) -> str:
    return f"process:{process_id}:signal.{name}:{ordinal}"


def cancel_requested_request(process_id: str, reason: str | None) -> ProcessEventAppendRequest:
    """CN-1: keyed by the hash of the payload, so the same reason replays."""
    payload = {"reason": reason}
    key = f"process:{process_id}:cancel_requested:{payload_hash(CANCEL_REQUESTED, payload)}"
    return ProcessEventAppendRequest(
        event_type=CANCEL_REQUESTED, payload=payload, replay=RuntimeReplay(key=key)
    )
