"""The lash wire model: every type a store persists or returns, as msgspec
Structs whose JSON equals lash's serde JSON byte for byte."""

from lash_streams.model._codec import JsonValue, canonical_json, decode, encode, to_builtins
from lash_streams.model.durability import *  # noqa: F403
from lash_streams.model.durability import __all__ as _durability
from lash_streams.model.events import *  # noqa: F403
from lash_streams.model.events import __all__ as _events
from lash_streams.model.invocation import *  # noqa: F403
from lash_streams.model.invocation import __all__ as _invocation
from lash_streams.model.lease import *  # noqa: F403
from lash_streams.model.lease import __all__ as _lease
from lash_streams.model.process import *  # noqa: F403
from lash_streams.model.process import __all__ as _process
from lash_streams.model.tool import *  # noqa: F403
from lash_streams.model.tool import __all__ as _tool

__all__ = [
    "JsonValue",
    "canonical_json",
    "decode",
    "encode",
    "to_builtins",
    *_durability,
    *_events,
    *_invocation,
    *_lease,
    *_process,
    *_tool,
]
__all__ = sorted(set(__all__))
