"""``connect()``: build a bus for a URL, or for a private embedded server.

Clients are created with redis-py's own retries disabled: its defaults re-send
a blocking read until it fails and can re-send an ``XADD`` (DESIGN "Known
facts"). Retries are ours (``store/retry.py``), idempotent operations only.
The blocking client used by waiters has its own, longer socket timeout.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from lash_streams.bus import Bus
from lash_streams.errors import AuthenticationFailed, ConnectionFailed, InvalidValue
from lash_streams.model import Durability
from lash_streams.model.durability import assess
from lash_streams.pool import BoundedCluster, BoundedPool, BoundedSentinelPool
from lash_streams.replication import ReplicatedCluster, ReplicatedRedis
from lash_streams.semantics.inputs import require_at_least
from lash_streams.sentinel import SCHEMES as SENTINEL_SCHEMES
from lash_streams.sentinel import parse_sentinel_url, sentinel_client
from lash_streams.store.retry import RetryPolicy

_SOCKET_TIMEOUT_S = 10.0
_MAX_CONNECTIONS = 64
_POOL_WAIT_S = 30.0
# Longer than the longest XREAD BLOCK slice (5 s) plus a round trip.
_BLOCKING_SOCKET_TIMEOUT_S = 15.0


def redact_url(url: str | None) -> str:
    """``url`` without its passwords (the URL's own and a sentinel's in the
    query), for messages and logs."""
    if url is None:
        return "the embedded server"
    parts = urlsplit(url)
    credentials, at, hosts = parts.netloc.rpartition("@")
    if ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    query = "&".join(
        f"{k}=***" if k.endswith("password") else f"{k}={v}"
        for k, _, v in (item.partition("=") for item in parts.query.split("&") if item)
    )
    if "***" not in credentials + query:
        return url
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}{hosts}", query=query))


#: The longest wake dedupe window (about 31 years).
_MAX_WINDOW_MS = 10**12


def _client(
    url: str, *, cluster: bool, socket_timeout: float, durability: Durability | None = None
) -> Any:
    if durability is not None and durability.waits:
        # A write's reply comes after its wait: the socket must outlast it.
        socket_timeout = max(socket_timeout, durability.timeout_ms / 1000 + 5.0)
    options: dict[str, Any] = {
        "decode_responses": False,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5.0,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 30,
    }
    waits = durability if durability is not None and durability.waits else None
    if cluster:
        plain = url.replace("redis+cluster://", "redis://").replace(
            "rediss+cluster://", "rediss://"
        )
        if waits:
            replicated: Any = ReplicatedCluster.from_url(
                plain, max_connections=_MAX_CONNECTIONS, **options
            )
            replicated.durability = waits
            return replicated
        return BoundedCluster.from_url(plain, max_connections=_MAX_CONNECTIONS, **options)
    if url.startswith(SENTINEL_SCHEMES):
        managed = {
            "connection_pool_class": BoundedSentinelPool,
            "max_connections": _MAX_CONNECTIONS,
            "timeout": _POOL_WAIT_S,
        }
        client = sentinel_client(url, options, ReplicatedRedis if waits else Redis, managed)
        if waits:
            client.durability = waits
        return client
    pool = BoundedPool.from_url(
        url,
        max_connections=_MAX_CONNECTIONS,
        timeout=_POOL_WAIT_S,
        **{k: v for k, v in options.items() if k != "retry"},
    )
    if waits:
        single = ReplicatedRedis(connection_pool=pool, retry=options["retry"])
        single.durability = waits
        return single
    return Redis(connection_pool=pool, retry=options["retry"])


async def _settings(client: Any) -> dict[str, Any]:
    """The server settings a durability report needs; None where refused
    (managed servers often rename or refuse ``CONFIG``)."""
    found: dict[str, Any] = {"appendonly": None, "appendfsync": None, "save": None}
    try:
        config = await client.config_get("appendonly")
        config.update(await client.config_get("appendfsync"))
        config.update(await client.config_get("save"))
    except (RedisError, AttributeError):
        config = {}
    if isinstance(config, dict) and config:
        found["appendonly"] = _text(config.get("appendonly")) == "yes"
        found["appendfsync"] = _text(config.get("appendfsync"))
        found["save"] = bool(_text(config.get("save")))
    try:
        info = await client.info("replication")
        found["replicas"] = int(info.get("connected_slaves", 0))
    except (RedisError, AttributeError, TypeError, ValueError):
        found["replicas"] = None
    return found


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


async def _check_waits(client: Any, durability: Durability, url: str) -> None:
    """Refuse at connect a wait the server cannot do, rather than fail every write."""
    if not durability.fsync:
        return
    try:
        await client.execute_command("WAITAOF", 1, 0, 1)
    except ResponseError as err:
        text = str(err)
        if "appendonly" in text:
            raise InvalidValue(
                f"durability fsync=True needs `appendonly yes` on {redact_url(url)}: {text}"
            ) from err
        raise InvalidValue(
            f"durability fsync=True needs WAITAOF (Redis 7.2+ or Valkey 8+); "
            f"{redact_url(url)} refused it: {text}"
        ) from err


_CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", *SENTINEL_SCHEMES)


def _check_url(url: object) -> None:
    """A URL redis-py can open, or a one-line typed error (not its traceback)."""
    if not isinstance(url, str):
        raise InvalidValue(f"the URL must be a string, got {type(url).__name__}")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in SENTINEL_SCHEMES:
        parse_sentinel_url(url)  # each part checked, with a message per mistake
        return
    if scheme not in _SCHEMES:
        shown = redact_url(url) if scheme else url.split("@")[-1]
        raise InvalidValue(
            f"URL `{shown}` must start with one of "
            + ", ".join(f"{s}://" for s in _SCHEMES)
            + (f" (e.g. redis://{shown})" if not scheme else "")
        )


def _refused_credentials(err: BaseException) -> bool:
    text = str(err)
    return isinstance(err, AuthenticationError) or any(
        word in text for word in ("WRONGPASS", "NOAUTH", "invalid username-password")
    )


async def _index_shards(client: Any, namespace: str, requested: int | None) -> int:
    """The namespace's index shards: recorded by the first client that chose
    more than one; absent, one (the layout before sharding)."""
    from lash_streams.store.keys import Keyspace

    meta = Keyspace(namespace).meta
    try:
        stored = await client.hget(meta, "index_shards")
    except NoPermissionError:
        # A user without access to the namespace: every call will say so
        # (errors.PermissionDenied), not the connect.
        return requested or 1
    if stored is None and requested is not None and requested != 1:
        single = Keyspace(namespace)
        if await client.exists(single.index("all"), single.index("run")):
            raise InvalidValue(
                f"namespace `{namespace}` already holds processes in one index shard; "
                f"it cannot be split into {requested} (use a new namespace)"
            )
        await client.hsetnx(meta, "index_shards", requested)
        stored = await client.hget(meta, "index_shards")
    shards = int(stored) if stored is not None else 1
    if requested is not None and requested != shards:
        raise InvalidValue(
            f"namespace `{namespace}` uses {shards} index shard(s); connect with "
            f"index_shards={shards} or leave it out"
        )
    return shards


async def _open(
    url: str | None = None,
    *,
    namespace: str = "lash",
    cluster: bool | None = None,
    data_dir: str | Path | None = None,
    persistence: str = "aof",
    retry: RetryPolicy | None = None,
    wake_dedupe_window_ms: int | None = None,
    index_shards: int | None = None,
    durability: Durability | None = None,
) -> Bus:
    from lash_streams.store.keys import validate_index_shards, validate_namespace

    validate_namespace(namespace)  # before any connection or server exists
    if url is not None:
        _check_url(url)
    if index_shards is not None:
        validate_index_shards(index_shards)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidValue(f"retry must be a lash_streams.RetryPolicy, got {type(retry).__name__}")
    if wake_dedupe_window_ms is not None:
        window = require_at_least(wake_dedupe_window_ms, 1, "wake_dedupe_window_ms")
        if window > _MAX_WINDOW_MS:  # the dedupe key's PX: Redis refuses more, late
            raise InvalidValue(f"wake_dedupe_window_ms must be at most {_MAX_WINDOW_MS}")
    if cluster is not None and not isinstance(cluster, bool):
        raise InvalidValue(f"cluster must be True, False or None, got {cluster!r}")
    wanted = _wanted(durability)
    server = None
    if url is None:
        from lash_streams.server import LocalServer

        server = LocalServer(data_dir=data_dir, persistence=persistence)
        await server.astart()
        url = server.url
    is_cluster = bool(cluster) or url.startswith(_CLUSTER_SCHEMES)
    try:
        client = _client(
            url, cluster=is_cluster, socket_timeout=_SOCKET_TIMEOUT_S, durability=wanted
        )
    except (ValueError, TypeError, RedisClusterException) as err:  # redis-py: the URL's options
        if server is not None:
            server.stop()
        raise InvalidValue(f"the URL {redact_url(url)} is not usable: {err}") from None
    blocking = _client(url, cluster=is_cluster, socket_timeout=_BLOCKING_SOCKET_TIMEOUT_S)
    try:
        await client.ping()
        await _check_waits(client, wanted, url)
        report = assess(
            wanted,
            appendonly=(settings := await _settings(client))["appendonly"],
            appendfsync=settings["appendfsync"],
            save=settings["save"],
            replicas_connected=settings["replicas"],
        )
        shards = await _index_shards(client, namespace, index_shards)
    except (RedisError, RedisClusterException, OSError, InvalidValue) as err:
        for c in (client, blocking):
            await c.aclose()
        if server is not None:
            server.stop()
        if isinstance(err, InvalidValue):
            raise
        if _refused_credentials(err):
            raise AuthenticationFailed(
                f"the server at {redact_url(url)} refused the credentials: {err}"
            ) from err
        raise ConnectionFailed(f"cannot reach Redis at {redact_url(url)}: {err}") from err
    bus = Bus(
        client,
        blocking,
        namespace=namespace,
        cluster=is_cluster,
        durability=report.tier,
        retry=retry,
        index_shards=shards,
    )
    bus._owned_server = server
    bus.durability_report = report
    if isinstance(client, ReplicatedCluster):
        client.probe_prefix = f"{namespace}:durability"
    bus.shares_waits = not is_cluster
    try:
        await bus.scripts.load()
    except (RedisError, OSError) as err:
        await bus.aclose()
        raise ConnectionFailed(f"cannot load scripts on {redact_url(url)}: {err}") from err
    if wake_dedupe_window_ms is not None:
        bus.wake_dedupe_window_ms = int(wake_dedupe_window_ms)
    return bus


def _wanted(durability: object) -> Durability:
    if durability is None:
        return Durability()
    if not isinstance(durability, Durability):
        raise InvalidValue(
            "durability must be a lash_streams.Durability (e.g. Durability(replicas=1)), "
            f"got {type(durability).__name__}"
        )
    return durability


class Connecting:
    """What ``connect()`` returns: await it for a bus, or use it with
    ``async with`` to have the bus closed (and its embedded server stopped)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._bus: Bus | None = None

    def __await__(self) -> Generator[Any, None, Bus]:
        return _open(**self._options).__await__()

    async def __aenter__(self) -> Bus:
        self._bus = await _open(**self._options)
        return self._bus

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bus is not None:
            await self._bus.aclose()


def connect(
    url: str | None = None,
    *,
    namespace: str = "lash",
    cluster: bool | None = None,
    data_dir: str | Path | None = None,
    persistence: str = "aof",
    retry: RetryPolicy | None = None,
    wake_dedupe_window_ms: int | None = None,
    index_shards: int | None = None,
    durability: Durability | None = None,
) -> Connecting:
    """Connect to ``url`` (``redis://``, ``rediss://``, ``unix://``,
    ``redis+cluster://``, ``rediss+cluster://``,
    ``redis+sentinel://host:26379[,host:port]/service``,
    ``rediss+sentinel://``), or with no URL start a private embedded Valkey
    (AOF ``everysec`` in ``data_dir``, a temporary folder by default) that the
    bus stops when it closes.

    ``wake_dedupe_window_ms``: a wake id is delivered to a scope at most once
    within this window (default one hour, server clock).

    ``index_shards``: how many slots the namespace's indexes are split over,
    so a cluster spreads registrations, terminals, lease renewals and wake
    marks (docs/keys.md). Set once, by the first client that gives it to a
    new namespace, and recorded there; later clients may omit it (they read
    it) and are refused if they give another. Default 1 (the layout of
    versions before sharding).

    ``durability``: what each write waits for before the call returns
    (``Durability(replicas=1)``: one replica holds it; ``fsync=True``: the
    primary fsynced it, WAITAOF). A wait not met raises
    ``errors.DurabilityNotMet``; ``bus.durability()`` reports what an
    acknowledged write survives (docs/guarantees.md).

    ``async with connect() as bus: ...`` or ``bus = await connect(...)``."""
    return Connecting(
        url=url,
        namespace=namespace,
        cluster=cluster,
        data_dir=data_dir,
        persistence=persistence,
        retry=retry,
        wake_dedupe_window_ms=wake_dedupe_window_ms,
        index_shards=index_shards,
        durability=durability,
    )
