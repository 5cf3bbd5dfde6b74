"""The store layer: Redis state and the scripts that change it (DESIGN layer 3).

:class:`Store` is lash's ``ProcessRegistry`` composed from sibling parts over
one core (``registry`` lists them). It imports the model, the semantics and
observability, never coordination or surfaces.
"""

from lash_streams.store.registry import Store

__all__ = ["Store"]
