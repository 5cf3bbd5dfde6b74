"""Signals and cancel requests (SG-1..SG-3, SG-5, CN-1)."""

from __future__ import annotations

import pytest

from lash_streams import errors
from lash_streams.model import ProcessEventAppendRequest
from lash_streams.semantics import (
    cancel_requested_request,
    signal_event_type,
    signal_name_from_event_type,
    signal_wait_key,
    validate_signal_name,
)
from lash_streams.semantics.signals import signal_request


@pytest.mark.parametrize("name", ["go", "A-b_9", "-", "_", "x" * 300])
def test_sg_1_valid_signal_names(name: str) -> None:
    """SG-1, SG-2: ASCII letters, digits, `_`, `-`; event type `signal.<name>`."""
    validate_signal_name(name)
    assert signal_event_type(name) == f"signal.{name}"
    assert signal_name_from_event_type(f"signal.{name}") == name


@pytest.mark.parametrize("name", ["", " ", "a b", "a.b", "é", "a/b", "١", "a\n", "sig:1"])
def test_sg_1_bad_signal_names(name: str) -> None:
    """SG-1: lash's message, raised when sending (and building the type)."""
    message = (
        "process signal name must be non-empty and contain only ASCII letters, digits, "
        f"`_`, or `-`, got `{name}`"
    )
    with pytest.raises(errors.InvalidSignalName) as caught:
        signal_event_type(name)
    assert str(caught.value) == message
    with pytest.raises(errors.InvalidSignalName):
        signal_request("p", name, "id", {})


def test_sg_2_signal_name_from_event_type() -> None:
    """SG-2: the suffix after `signal.`, unvalidated; other types have none."""
    assert signal_name_from_event_type("signal.") == ""
    assert signal_name_from_event_type("signal.a.b") == "a.b"
    assert signal_name_from_event_type("process.completed") is None


def test_sg_3_and_sg_5_keys() -> None:
    """SG-3 replay key `process:<pid>:signal.N:<signal_id>`; SG-5 wait key
    `process:<pid>:signal.N:<k>`."""
    request = signal_request("p-1", "approve", "sig-7", {"ok": True})
    assert request == ProcessEventAppendRequest.new("signal.approve", {"ok": True}).with_replay_key(
        "process:p-1:signal.approve:sig-7"
    )
    assert signal_wait_key("p-1", "approve", 2) == "process:p-1:signal.approve:2"


def test_cn_1_cancel_request() -> None:
    """CN-1: payload {"reason": r}, key process:<pid>:cancel_requested:<H>;
    the model's classmethod delegates here."""
    request = cancel_requested_request("p", "stop")
    assert request.event_type == "process.cancel_requested"
    assert request.payload == {"reason": "stop"}
    assert request.replay is not None
    assert request.replay.key == (
        "process:p:cancel_requested:85a6238fa9840bc3105d1a06ca03df61803080fefa838ab687d36662275be019"
    )
    null = ProcessEventAppendRequest.cancel_requested("p", None)
    assert null.payload == {"reason": None}
    assert null.replay is not None and null.replay.key.endswith(
        "5532b5f3befaa3efc27b125b501ee870e6405e058b099410f23165e543d2a782"
    )
