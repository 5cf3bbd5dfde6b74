"""``redis+sentinel://`` and ``rediss+sentinel://`` URLs: the primary is
found through Sentinel, and found again after a failover.

``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``
``[?sentinel_username=...&sentinel_password=...]``

The credentials before ``@`` are the data nodes'; sentinels often have none
or their own (the query). ``rediss+sentinel://`` uses TLS for both, with the
same ``ssl_*`` query options as ``rediss://`` (``ssl_ca_certs``,
``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``).

Every client the bus opens (the main one and the blocking one) asks the
sentinels for the primary when it connects, and redis-py's sentinel pool
drops connections to a primary that was demoted (``READONLY``), so the next
attempt of a retried call reaches the new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from lash_streams.errors import InvalidValue

__all__ = ["SCHEMES", "SentinelTarget", "parse_sentinel_url", "sentinel_client"]

SCHEMES = ("redis+sentinel", "rediss+sentinel")
_SSL_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_ca_path")


@dataclass(frozen=True)
class SentinelTarget:
    hosts: list[tuple[str, int]]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls: bool = False
    ssl: dict[str, str] = field(default_factory=dict)


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The parts of a sentinel URL, or ``InvalidValue`` saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InvalidValue(f"not a sentinel URL: `{parts.scheme}://`")
    credentials, _, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if credentials:
        user, has_password, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:
            host, port = item.strip(), "26379"
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidValue(
                f"sentinel address `{item}` must be host:port "
                "(redis+sentinel://host:26379,host2:26379/service)"
            )
        hosts.append((host, int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise InvalidValue(
            "a sentinel URL names its service (the master name) after the hosts: "
            "redis+sentinel://host:26379/mymaster[/db]"
        )
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise InvalidValue(f"database `{path[1]}` in the sentinel URL must be a number")
        db = int(path[1])
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"sentinel_username", "sentinel_password", *_SSL_OPTIONS}
    if unknown:
        raise InvalidValue(
            f"unknown sentinel URL option(s) {sorted(unknown)}: use sentinel_username, "
            "sentinel_password or " + ", ".join(_SSL_OPTIONS)
        )
    return SentinelTarget(
        hosts=hosts,
        service=unquote(path[0]),
        db=db,
        username=username,
        password=password,
        sentinel_username=query.get("sentinel_username"),
        sentinel_password=query.get("sentinel_password"),
        tls=parts.scheme == "rediss+sentinel",
        ssl={k: v for k, v in query.items() if k in _SSL_OPTIONS},
    )


def sentinel_client(
    url: str,
    options: dict[str, Any],
    redis_class: type[Redis] = Redis,
    pool: dict[str, Any] | None = None,
) -> Any:
    """A client of the service's primary, built with ``options`` (the same
    connection options as ``connect()``'s other clients) and ``pool`` (the
    pool class and its options). Closing it closes its sentinel clients too
    (``aclose``)."""
    target = parse_sentinel_url(url)
    tls: dict[str, Any] = {"ssl": True, **target.ssl} if target.tls else {}
    node_options = {
        **options,
        **tls,
        "db": target.db,
        "username": target.username,
        "password": target.password,
    }
    sentinel_options = {
        "socket_timeout": 5.0,
        "socket_connect_timeout": 5.0,
        "username": target.sentinel_username,
        "password": target.sentinel_password,
        **tls,
    }
    sentinel = Sentinel(target.hosts, sentinel_kwargs=sentinel_options, **node_options)
    client = sentinel.master_for(target.service, redis_class=redis_class, **(pool or {}))
    client.lash_sentinel = sentinel
    return client
