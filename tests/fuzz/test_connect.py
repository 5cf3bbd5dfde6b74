"""``connect`` with hostile arguments, against the embedded Valkey (a URL is
given, so no private server is started): a bus, or a ``LashStreamsError``
with a plain message; nothing is left under the namespace it tried."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lash_streams as ls
from lash_streams.errors import LashStreamsError

from .conftest import FUZZ
from .harness import plain_message
from .strategies import id_text, numbers

namespaces = st.one_of(
    st.just("ok"),
    id_text,
    st.sampled_from(["", "a b", "x{y}", "n:s", "n" * 65, "*", "\ud800", b"ns", 5, None]),
)


@pytest.fixture
def url(servers: Any) -> str:
    return str(servers.get("valkey")[0])


@FUZZ
@given(
    namespace=namespaces,
    cluster=st.sampled_from([None, False, "yes", 1]),
    persistence=st.sampled_from(["aof", "none", "rdb", "", 5, None]),
    retry=st.sampled_from([None, 5, "x", ls.RetryPolicy(attempts=2, max_delay_s=0.1)]),
    window=st.none() | numbers,
    shards=st.none() | numbers,
    query=st.sampled_from(["", "?max_connections=x", "?timeout=-1", "?timeout=nan", "?db=99"]),
)
async def test_connect_returns_a_bus_or_a_typed_error(
    url, namespace, cluster, persistence, retry, window, shards, query
):
    if isinstance(namespace, str) and namespace:
        namespace = f"{namespace}{uuid.uuid4().hex[:6]}"  # fresh per example
    try:
        bus = await ls.connect(
            url + query,
            namespace=namespace,
            cluster=cluster,
            persistence=persistence,
            retry=retry,
            wake_dedupe_window_ms=window,
            index_shards=shards,
        )
    except LashStreamsError as err:
        plain_message(err)
        return
    except BaseException as err:
        raise AssertionError(f"untyped {type(err).__name__}: {err}") from err
    try:
        assert bus.keys.namespace == namespace
        assert (await bus.health(1.0)).ok
    finally:
        async for key in bus.redis.scan_iter(match=f"{namespace}:*"):
            await bus.redis.delete(key)
        await bus.aclose()
