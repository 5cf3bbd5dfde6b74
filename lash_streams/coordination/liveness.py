"""Death evidence (LV-1..LV-3): the "definitely dead" predicate of lash's
``LeaseOwnerLiveness``. Elapsed time is never evidence; only a holder on this
very host, boot and PID namespace whose pid is gone or whose start time
changed is dead.

A pid means one process only inside one PID namespace: containers that share
the host name and boot id (Kubernetes ``hostNetwork``, ``--uts host``) do not
share ``/proc``. So the ``host_id`` we write names the namespace too
(``<hostname>/pid:[<inode>]``), and a holder whose namespace this process
cannot read gets no local identity at all (opaque: never dead by LV-2). A Rust
lash worker on the same host writes the bare host name, which never equals
ours, so neither side can take the other for dead."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from lash_streams.model import LeaseOwnerIdentity, LivenessLocalProcess, LivenessOpaque

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def parse_process_start(stat: str) -> str | None:
    """Field 22 of /proc/<pid>/stat (starttime), robust to spaces in comm."""
    _, sep, after = stat.rpartition(") ")
    if not sep:
        return None
    fields = after.split()
    return fields[19] if len(fields) > 19 else None


def process_start(pid: int) -> str | None:
    try:
        return parse_process_start(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return None


def pid_namespace() -> str | None:
    """This process's PID namespace, ``pid:[<inode>]``, or None if unreadable."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def local_host_id() -> str | None:
    """The ``host_id`` of a local-process identity: host name and PID namespace."""
    namespace = pid_namespace()
    return None if namespace is None else f"{socket.gethostname()}/{namespace}"


def current_liveness(host_id: str) -> LivenessLocalProcess | None:
    try:
        boot_id = _BOOT_ID.read_text().strip()
    except OSError:
        return None
    pid = os.getpid()
    start = process_start(pid)
    if not boot_id or start is None:
        return None
    return LivenessLocalProcess(host_id=host_id, boot_id=boot_id, pid=pid, process_start=start)


def owner_identity(owner_id: str, *, local: bool = True) -> LeaseOwnerIdentity:
    """A fresh incarnation of ``owner_id``: local-process liveness when
    ``local`` and this host can tell (a claimant on the same host and boot can
    then prove it dead once its pid is gone, LV-2), opaque otherwise."""
    host_id = local_host_id() if local else None
    liveness = current_liveness(host_id) if host_id is not None else None
    return LeaseOwnerIdentity(
        owner_id=owner_id, incarnation_id=uuid.uuid4().hex, liveness=liveness or LivenessOpaque()
    )


def _pid_is_live(pid: int, expected_start: str) -> bool | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return None
    start = parse_process_start(stat)
    return None if start is None else start == expected_start


def is_definitely_dead_for_claimant(
    holder: LeaseOwnerIdentity, claimant: LeaseOwnerIdentity
) -> bool:
    h, c = holder.liveness, claimant.liveness
    if not isinstance(h, LivenessLocalProcess) or not isinstance(c, LivenessLocalProcess):
        return False
    if h.host_id != c.host_id or h.boot_id != c.boot_id:
        return False
    return _pid_is_live(h.pid, h.process_start) is False
