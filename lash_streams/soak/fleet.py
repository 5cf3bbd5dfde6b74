"""The workload's OS processes: start, SIGKILL, restart, stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lash_streams.server.proc import _child_setup


@dataclass
class Member:
    name: str
    role: str
    inc: int = 0
    proc: asyncio.subprocess.Process | None = None
    #: Monotonic time of the latest kill, if any.
    killed_at: float | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


@dataclass
class Fleet:
    url: str
    namespace: str
    spec: str
    folder: Path
    members: dict[str, Member] = field(default_factory=dict)
    #: Every (name, incarnation) SIGKILLed, in order.
    kills: list[tuple[str, int]] = field(default_factory=list)

    async def start(self, name: str, role: str | None = None) -> Member:
        member = self.members.get(name)
        if member is None:
            assert role is not None
            member = self.members[name] = Member(name, role)
        elif member.proc is not None:
            member.inc += 1
        err = _log_file(self.folder / f"{name}.err")
        try:
            member.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "lash_streams.soak.role", member.role, self.url,
                self.namespace, name, str(member.inc), self.spec,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=err, preexec_fn=_child_setup(os.getpid()),
            )  # fmt: skip
        finally:
            err.close()
        return member

    def kill(self, name: str) -> None:
        member = self.members[name]
        if member.alive and member.proc is not None:
            member.proc.send_signal(signal.SIGKILL)
            member.killed_at = time.monotonic()
            self.kills.append((name, member.inc))

    async def wait(self, name: str, timeout: float) -> bool:
        member = self.members[name]
        if member.proc is None:
            return True
        try:
            await asyncio.wait_for(member.proc.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, names: list[str], timeout: float = 20.0) -> list[str]:
        """SIGTERM, then SIGKILL whoever did not exit in time (returned)."""
        for name in names:
            member = self.members[name]
            if member.alive and member.proc is not None:
                member.proc.send_signal(signal.SIGTERM)
        forced = []
        for name in names:
            if not await self.wait(name, timeout):
                forced.append(name)
                self.kill(name)
                await self.wait(name, 5.0)
        return forced

    async def stop_all(self) -> None:
        with contextlib.suppress(Exception):
            await self.stop(list(self.members), timeout=10.0)

    def killed(self) -> frozenset[tuple[str, int]]:
        return frozenset(self.kills)

    def crashed(self) -> list[str]:
        """Members that exited on their own with an error (not killed by us)."""
        out = []
        for member in self.members.values():
            proc = member.proc
            if proc is not None and proc.returncode not in (
                None,
                0,
                -signal.SIGKILL,
                -signal.SIGTERM,
            ):
                out.append(f"{member.name} (exit {proc.returncode})")
        return out

    def errors_of(self, name: str, lines: int = 15) -> str:
        path = self.folder / f"{name}.err"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _log_file(path: Path) -> IO[bytes]:
    return open(path, "ab")
