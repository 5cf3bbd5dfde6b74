"""A local Sentinel set (a primary, a replica, three sentinels), started per
test module: its tests fail over, so no other test shares it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lash_streams.server.sentinel import LocalSentinelSet


@pytest.fixture(scope="module")
def sentinel_set() -> Iterator[LocalSentinelSet]:
    with LocalSentinelSet(replicas=1, sentinels=3) as started:
        yield started
