"""What the demo shows: the fleet's state, rendered with rich."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from lash_streams.coordination.fleet_liveness import worker_of
from lash_streams.demo.jobs import Job
from lash_streams.model import (
    AwaitAbandoned,
    AwaitSuccess,
    ProcessLease,
    ProcessRecord,
    status_label,
)

_STATUS_STYLE = {
    "running": "yellow",
    "completed": "green",
    "abandoned": "bold magenta",
    "failed": "red",
    "cancelled": "red",
}


@dataclass
class Member:
    name: str
    role: str
    pid: int = 0
    state: str = "starting"
    did: Counter[str] = field(default_factory=Counter)


@dataclass
class JobState:
    job: Job
    record: ProcessRecord | None = None
    lease: ProcessLease | None = None
    seq: int = 0
    last_event: str = ""

    @property
    def status(self) -> str:
        return "registering" if self.record is None else status_label(self.record.status)

    @property
    def terminal(self) -> bool:
        return self.record is not None and self.record.is_terminal()

    def outcome(self) -> tuple[str, str]:
        """(terminal status, who wrote it)."""
        output = None if self.record is None else self.record.await_output()
        if isinstance(output, AwaitAbandoned):
            owner = output.evidence.owner
            who = worker_of(owner)[0] if owner else ""  # the worker, not its attempt
            return f"abandoned{{{output.evidence.writer.value}}}", who
        if isinstance(output, AwaitSuccess) and isinstance(output.value, dict):
            return self.status, str(output.value.get("by"))
        return self.status, ""


def holder_name(lease: ProcessLease | None, now_ms: int) -> str:
    if lease is None:
        return ""
    owner = lease.owner.owner_id
    name, _, attempt = owner.partition(":recovery:")
    label = f"{name} (recovery)" if attempt else name
    if lease.expires_at_epoch_ms <= now_ms:
        return f"[dim]{label}, lapsed[/dim]"
    return f"{label} ({lease.fencing_token})"


@dataclass
class DemoState:
    title: str
    jobs: list[JobState]
    members: dict[str, Member]
    log: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    wakes_seen: dict[str, str] = field(default_factory=dict)  # wake id -> consumer
    wake_deliveries: int = 0
    now_ms: int = 0
    elapsed_s: float = 0.0

    def render(self) -> Group:
        return Group(
            Text.from_markup(f"[bold]{self.title}[/bold]  [dim]{self.elapsed_s:4.1f} s[/dim]"),
            self.jobs_table(),
            self.fleet_table(),
            Panel("\n".join(self.log) or "…", title="what happened", title_align="left"),
        )

    def jobs_table(self) -> Table:
        table = Table(title="processes", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("process", "disposition", "lease (fence)", "seq", "status", "by"):
            table.add_column(column, no_wrap=True)
        for js in self.jobs:
            style = _STATUS_STYLE.get(js.status, "")
            status, by = js.outcome() if js.terminal else (js.last_event or js.status, "")
            table.add_row(
                js.job.short,
                js.job.disposition.value.replace("_", "-"),
                holder_name(js.lease, self.now_ms),
                str(js.seq or ""),
                f"[{style}]{status}[/{style}]" if style else status,
                by,
            )
        return table

    def fleet_table(self) -> Table:
        table = Table(title="fleet (OS processes)", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("member", "pid", "state", "did"):
            table.add_column(column, no_wrap=column != "did")
        for m in self.members.values():
            style = {"killed": "bold red", "up": "green", "exited": "dim"}.get(m.state, "")
            state = f"[{style}]{m.state}[/{style}]" if style else m.state
            did = ", ".join(f"{what} {n}" for what, n in sorted(m.did.items()))
            table.add_row(m.name, str(m.pid or ""), state, did)
        return table
