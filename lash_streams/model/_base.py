"""Base struct and the serde-default mechanics shared by the model modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class Wire(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A lash wire value. ``None``-defaulted fields are omitted when ``None``
    (serde ``skip_serializing_if = "Option::is_none"``)."""


def always(factory: Callable[[], T]) -> T:
    """A serde ``#[serde(default)]`` field without ``skip_serializing_if``:
    filled in on decode when missing, yet always written.

    msgspec omits a field equal to a plain default under ``omit_defaults``, but
    cannot know what an opaque factory returns, so it always writes such a
    field; wrapping the factory keeps builtins like ``list`` opaque too."""

    def make() -> T:
        return factory()

    result: Any = msgspec.field(default_factory=make)
    return result  # type: ignore[no-any-return]
