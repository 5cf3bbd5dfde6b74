"""An in-process bus on ``fakeredis`` for users' unit tests.

Same scripts, same key layout, same API as a real server: our conformance
suite runs against it (tests/conformance), so what passes here passes on
Redis. Install the ``testing`` extra (``pip install lash-streams[testing]``).

    from lash_streams.testing import fake_bus
    async with fake_bus() as bus:
        ...

Buses created with the same ``server`` share data, like two clients of one
Redis (use it to test "another worker" scenarios).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from lash_streams.bus import Bus
from lash_streams.model import DurabilityTier


class FakeServer:
    """One in-memory server; share it between buses to simulate many clients."""

    def __init__(self) -> None:
        try:
            import fakeredis
        except ImportError as err:  # pragma: no cover - depends on the extra
            raise ImportError(
                "lash_streams.testing needs fakeredis with Lua: pip install 'lash-streams[testing]'"
            ) from err
        self._server = fakeredis.FakeServer()

    def client(self) -> Any:
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=self._server, decode_responses=False)


class _FakeConnecting:
    def __init__(self, namespace: str, server: FakeServer | None) -> None:
        self._namespace = namespace
        self._server = server or FakeServer()
        self._bus: Bus | None = None

    async def _open(self) -> Bus:
        bus = Bus(
            self._server.client(),
            self._server.client(),
            namespace=self._namespace,
            cluster=False,
            durability=DurabilityTier.INLINE,
        )
        await bus.scripts.load()
        return bus

    def __await__(self) -> Any:
        return self._open().__await__()

    async def __aenter__(self) -> Bus:
        self._bus = await self._open()
        return self._bus

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bus is not None:
            await self._bus.aclose()


def fake_bus(namespace: str = "lash", *, server: FakeServer | None = None) -> _FakeConnecting:
    """A bus on an in-memory fake server (a fresh one unless ``server`` is given)."""
    return _FakeConnecting(namespace, server)
