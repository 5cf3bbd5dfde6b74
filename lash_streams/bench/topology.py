"""What the bench measures on: one server, a cluster or a Sentinel-managed
primary. The raw baselines get a client as a raw redis-py user of that shape
writes it (``Redis.from_url``, ``RedisCluster.from_url``,
``Sentinel(...).master_for``); FastStream, which has one plain connection,
gets the one node its stream lives on."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel

from lash_streams.bench.env import facts_per_master, server_facts
from lash_streams.sentinel import SCHEMES as SENTINEL_SCHEMES
from lash_streams.sentinel import parse_sentinel_url

CLUSTER_SCHEME = "redis+cluster://"


def kind_of(url: str) -> str:
    if url.startswith(CLUSTER_SCHEME):
        return "cluster"
    if url.startswith(tuple(f"{s}://" for s in SENTINEL_SCHEMES)):
        return "sentinel"
    return "single"


def _node_url(url: str, host: str, port: int) -> str:
    """``url`` (credentials, db and options kept) pointed at one node."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    at = "@" if credentials else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}{host}:{port}"))


class Topology:
    """Clients for the baselines and the facts ``meta`` records."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kind = kind_of(url)
        self._sentinel: Sentinel | None = None
        self._service = ""
        self._node_url = url
        if self.kind == "cluster":
            self._node_url = "redis://" + url.removeprefix(CLUSTER_SCHEME)
        elif self.kind == "sentinel":
            target = parse_sentinel_url(url)
            tls: dict[str, Any] = {"ssl": True, **target.ssl} if target.tls else {}
            sentinel_kwargs = {
                "username": target.sentinel_username,
                "password": target.sentinel_password,
                **tls,
            }
            # redis-py's defaults otherwise, as a raw Sentinel user has them.
            self._sentinel = Sentinel(
                target.hosts,
                sentinel_kwargs=sentinel_kwargs,
                username=target.username,
                password=target.password,
                db=target.db,
                **tls,
            )
            self._service = target.service
            scheme = "rediss" if target.tls else "redis"
            query = "&".join(f"{k}={v}" for k, v in target.ssl.items())
            self._node_url = urlunsplit(
                (scheme, urlsplit(url).netloc.split(",")[0], f"/{target.db}", query, "")
            )

    def fresh(self) -> Any:
        """A client as a raw redis-py user makes one (redis-py's defaults)."""
        if self.kind == "cluster":
            return RedisCluster.from_url(self._node_url)
        if self._sentinel is not None:
            return self._sentinel.master_for(self._service)
        return Redis.from_url(self.url)

    async def primary(self) -> tuple[str, int]:
        assert self._sentinel is not None
        host, port = await self._sentinel.discover_master(self._service)
        return str(host), int(port)

    async def faststream_target(self, stream: str) -> tuple[str, str]:
        """(URL, host:port) of the node that holds ``stream``: the only node
        FastStream's plain connection can use for it."""
        if self.kind == "cluster":
            probe = RedisCluster.from_url(self._node_url)
            try:
                await probe.initialize()
                node = probe.get_node_from_key(stream)
                if node is None:
                    raise RuntimeError(f"no cluster node holds the slot of {stream}")
                host, port = str(node.host), int(node.port)
            finally:
                await probe.aclose()
        elif self.kind == "sentinel":
            host, port = await self.primary()
        else:
            return self.url, "the server"
        return _node_url(self._node_url, host, port), f"{host}:{port}"

    async def meta(self, client: Any) -> dict[str, Any]:
        """``server_facts`` of the node ``client`` reaches (the first master
        on a cluster), plus ``topology``, ``nodes`` and, beyond one server,
        ``node_facts`` per node measured."""
        if self.kind == "cluster":
            per_node = await facts_per_master(client)
            first = dict(per_node[0])
            first.pop("address")
            servers = {f["server"] for f in per_node}
            persistence = {f["persistence"] for f in per_node}
            if len(servers) > 1 or len(persistence) > 1:
                first["server"] = " / ".join(sorted(servers))
                first["persistence"] = "mixed: " + " / ".join(sorted(persistence))
            return {**first, "topology": "cluster", "nodes": len(per_node), "node_facts": per_node}
        facts = await server_facts(client)
        if self.kind == "single":
            return {**facts, "topology": "single", "nodes": 1}
        assert self._sentinel is not None
        host, port = await self.primary()
        replicas = await self._sentinel.discover_slaves(self._service)
        return {
            **facts,
            "topology": "sentinel",
            "nodes": 1 + len(replicas),
            "primary": f"{host}:{port}",
            "replicas": [f"{h!s}:{p!s}" for h, p in replicas],
            "sentinel_service": self._service,
            "node_facts": [{"address": f"{host}:{port}", "role": "primary", **facts}],
        }

    async def aclose(self) -> None:
        if self._sentinel is not None:
            for sentinel in self._sentinel.sentinels:
                await sentinel.aclose()
