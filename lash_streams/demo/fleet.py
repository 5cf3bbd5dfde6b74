"""The demo's director: a private server, a fleet of OS processes (workers,
wake consumers, a sweeper), one worker killed on purpose, and what follows.

Everything shown comes from Redis (records, leases, events) or from the
members' own reports; the director never writes on a member's behalf.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from rich.console import Console

import lash_streams as ls
from lash_streams.demo.jobs import STEPS, plan
from lash_streams.demo.view import DemoState, JobState, Member
from lash_streams.errors import LashStreamsError
from lash_streams.model import AwaitAbandoned, AwaitSuccess, RecoveryDisposition
from lash_streams.server.proc import _child_setup


class DemoFailed(LashStreamsError):
    """The demo's story did not happen as it should (or not in time)."""

    kind = "demo_failed"


@dataclass(frozen=True)
class DemoConfig:
    workers: int = 3
    consumers: int = 2
    step_s: float = 0.5
    sweep_every_s: float = 0.5
    #: Progress events the victim's owner-bound job writes before the kill.
    kill_after: int = 2
    timeout_s: float = 90.0
    live: bool | None = None  # None: live view on a terminal, log lines otherwise


@dataclass
class Outcome:
    state: DemoState
    victim: str
    kill_ms: int
    abandoned_ms: int | None
    checks: list[tuple[bool, str]]

    @property
    def ok(self) -> bool:
        return all(passed for passed, _ in self.checks)


class _Child:
    def __init__(self, member: Member, proc: asyncio.subprocess.Process) -> None:
        self.member = member
        self.proc = proc
        self.ready = asyncio.Event()
        self.stderr: list[str] = []
        self.readers: list[asyncio.Task[None]] = []


class Director:
    def __init__(self, bus: ls.Bus, url: str, config: DemoConfig, console: Console) -> None:
        self.bus = bus
        self.url = url
        self.config = config
        self.console = console
        self.run_id = "d" + uuid.uuid4().hex[:5]
        self.jobs = plan(self.run_id, config.workers)
        self.children: dict[str, _Child] = {}
        self.state = DemoState(title="", jobs=[JobState(job) for job in self.jobs], members={})
        self.started = time.monotonic()
        self.live = console.is_terminal if config.live is None else config.live
        self.unacked = 0
        self.kill_seq = 0

    # -- members -----------------------------------------------------------------

    def say(self, line: str) -> None:
        stamp = f"{time.monotonic() - self.started:5.1f}s"
        self.state.log.append(f"[dim]{stamp}[/dim] {line}")
        if not self.live:
            self.console.print(f"{stamp} {line}", highlight=False)

    async def spawn(self, name: str, role: str, *args: str) -> _Child:
        member = self.state.members.setdefault(name, Member(name, role))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lash_streams.demo.roles", role, self.url,
            self.bus.keys.namespace, name, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, preexec_fn=_child_setup(os.getpid()),
        )  # fmt: skip
        member.pid = proc.pid
        child = self.children[name] = _Child(member, proc)
        child.readers = [
            asyncio.create_task(self._read(child)),
            asyncio.create_task(self._read_errors(child)),
        ]
        return child

    async def _read(self, child: _Child) -> None:
        assert child.proc.stdout is not None
        async for raw in child.proc.stdout:
            try:
                line = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                continue
            self.on_report(child, line)
        if child.member.state not in ("killed", "exited"):
            child.member.state = "died"
            self.say(f"[red]{child.member.name} died unexpectedly[/red]")

    async def _read_errors(self, child: _Child) -> None:
        assert child.proc.stderr is not None
        async for raw in child.proc.stderr:
            child.stderr = [*child.stderr[-19:], raw.decode(errors="replace").rstrip()]

    def on_report(self, child: _Child, line: dict[str, object]) -> None:
        m, what, pid = child.member, str(line.get("what")), str(line.get("process", ""))
        short = pid.split("-", 1)[-1]
        if what == "ready":
            m.state = "up"
            child.ready.set()
        elif what == "exited":
            m.state = "exited"
        elif what == "started":
            m.did["jobs"] += 1
            self.say(f"{m.name} started [cyan]{short}[/cyan]")
        elif what == "progress":
            m.did["events"] += 1
            if line.get("wake"):
                m.did["wakes sent"] += 1
                self.say(f"{m.name}: {short} step {line.get('step')} wakes its session")
        elif what == "wake":
            m.did["wakes"] += 1
            wake_id = str(line.get("wake_id"))
            self.state.wake_deliveries += 1
            self.state.wakes_seen.setdefault(wake_id, m.name)
            self.say(
                f"{m.name} woke [blue]{line.get('session')}[/blue] for {short}#{line.get('seq')}"
            )

    async def wait_ready(self, names: list[str]) -> None:
        async with asyncio.timeout(30):
            for name in names:
                child = self.children[name]
                waiter = asyncio.create_task(child.ready.wait())
                exited = asyncio.create_task(child.proc.wait())
                await asyncio.wait([waiter, exited], return_when=asyncio.FIRST_COMPLETED)
                if not child.ready.is_set():
                    raise DemoFailed(
                        f"{name} exited before it was ready:\n" + "\n".join(child.stderr)
                    )

    async def stop_all(self) -> None:
        living = [c for c in self.children.values() if c.proc.returncode is None]
        for child in living:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        for child in living:
            try:
                await asyncio.wait_for(child.proc.wait(), 10)
            except TimeoutError:
                child.proc.kill()
                await child.proc.wait()

    # -- observing Redis ---------------------------------------------------------

    async def poll(self) -> None:
        bus, state = self.bus, self.state
        state.now_ms = await bus.server_time_ms()
        state.elapsed_s = time.monotonic() - self.started
        self.unacked = 0
        for js in state.jobs:
            was_terminal = js.terminal
            js.record = await bus.get_process(js.job.id)
            if js.terminal and not was_terminal:
                status, by = js.outcome()
                whose = "owner" if status.startswith("abandoned") else "by"
                self.say(f"{js.job.short} is [bold]{status}[/bold] ({whose} {by})")
                if status == "abandoned{sweep}" and "sweeper" in state.members:
                    state.members["sweeper"].did["abandoned"] += 1
            self.unacked += len(await bus.wake_events_after(js.job.id, 0))
            js.lease = await bus.get_process_lease(js.job.id)
            last = await bus.recent_events(js.job.id, 1)
            if last:
                event = last[-1]
                js.seq = event.sequence
                payload = event.payload if isinstance(event.payload, dict) else {}
                step = payload.get("step")
                js.last_event = (
                    f"{event.event_type} {step}/{STEPS}" if step is not None else event.event_type
                )

    async def until(self, what: str, done: Callable[[], bool], refresh: Callable[[], None]) -> None:
        deadline = time.monotonic() + self.config.timeout_s
        while True:
            await self.poll()
            refresh()
            if done():
                return
            if time.monotonic() > deadline:
                raise DemoFailed(f"timed out waiting until {what}")
            await asyncio.sleep(0.2)

    # -- the story ---------------------------------------------------------------

    async def run(self, refresh: Callable[[], None]) -> Outcome:
        cfg = self.config
        for job in self.jobs:
            await self.bus.register_process(job.registration())
        self.say(f"registered {len(self.jobs)} processes (owner-bound and rerunnable per worker)")
        consumers = [f"consumer-{i}" for i in range(1, cfg.consumers + 1)]
        for name in consumers:
            await self.spawn(name, "consumer")
        workers = sorted({job.worker for job in self.jobs})
        for name in workers:
            pids = ",".join(job.id for job in self.jobs if job.worker == name)
            await self.spawn(name, "worker", str(cfg.step_s), pids)
        await self.wait_ready(consumers + workers)
        self.say(f"{len(workers)} workers and {len(consumers)} wake consumers are up")
        await self.until(
            "every job started",
            lambda: all(js.record and js.record.first_started for js in self.state.jobs),
            refresh,
        )
        await self.spawn("sweeper", "sweeper", str(cfg.step_s), str(cfg.sweep_every_s))
        await self.wait_ready(["sweeper"])
        self.say(f"sweeper is up (every {cfg.sweep_every_s} s)")

        victim_name = workers[min(1, len(workers) - 1)]
        victim_ob = next(
            js
            for js in self.state.jobs
            if js.job.worker == victim_name
            and js.job.disposition is RecoveryDisposition.OWNER_BOUND
        )
        await self.until(
            f"{victim_ob.job.short} made progress", lambda: victim_ob.seq >= cfg.kill_after, refresh
        )
        victim = self.children[victim_name]
        victim.member.state = "killed"
        victim.proc.kill()
        await victim.proc.wait()  # reaped: its pid is gone from /proc (LV-2 evidence)
        kill_ms = await self.bus.server_time_ms()
        self.kill_seq = max(e.sequence for e in await self.bus.recent_events(victim_ob.job.id, 1))
        self.say(f"[bold red]SIGKILL {victim_name}[/bold red] (pid {victim.proc.pid}) mid-run")

        jobs = self.state.jobs
        await self.until("every job is terminal", lambda: all(js.terminal for js in jobs), refresh)
        await self.until("every wake is acknowledged", lambda: not self.unacked, refresh)
        return self.outcome(victim_name, kill_ms)

    def outcome(self, victim: str, kill_ms: int) -> Outcome:
        checks: list[tuple[bool, str]] = []
        abandoned_ms = None
        for js in self.state.jobs:
            output = js.record.await_output() if js.record else None
            done_by = None
            if isinstance(output, AwaitSuccess) and isinstance(output.value, dict):
                done_by = output.value.get("by")
            name = js.job.short
            if js.job.worker != victim:
                checks.append((done_by == js.job.worker, f"{name} completed by its worker"))
            elif js.job.disposition is RecoveryDisposition.OWNER_BOUND:
                swept = (
                    isinstance(output, AwaitAbandoned) and output.evidence.writer.value == "sweep"
                )
                if isinstance(output, AwaitAbandoned):
                    abandoned_ms = output.evidence.epoch_ms
                text = f"{name} (owner-bound, started by the dead worker) abandoned by the sweep"
                # Only the abandoned terminal follows the victim's last event.
                checks.append((swept and js.seq == self.kill_seq + 1, text + ", never re-run"))
            else:
                text = f"{name} (rerunnable) re-run to completion by {done_by or 'nobody'}"
                checks.append((done_by not in (None, victim), text))
        return Outcome(self.state, victim, kill_ms, abandoned_ms, checks)
