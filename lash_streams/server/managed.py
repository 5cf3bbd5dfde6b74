"""The context-manager surface every local server set shares: ``with`` and
``async with`` around a blocking ``start()``/``stop()`` (the async forms run
them in a thread, so an event loop keeps serving while a server boots)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self


class Managed:
    def start(self, timeout: float = 15.0) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def astart(self, timeout: float | None = None) -> Self:
        """``start()`` in a thread (``timeout``: the class's own default when None)."""
        if timeout is None:
            await asyncio.to_thread(self.start)
        else:
            await asyncio.to_thread(self.start, timeout)
        return self

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()
