"""What a worker needs is importable from the package root (issue 16:
``owner_identity()`` was not exported, ``connect(retry=...)`` undocumented and
unchecked)."""

from __future__ import annotations

import pytest

import lash_streams as ls


def test_worker_building_blocks_are_exported():
    identity = ls.owner_identity("worker-0")
    assert identity.owner_id == "worker-0" and identity.incarnation_id
    assert ls.owner_identity("worker-0").incarnation_id != identity.incarnation_id
    assert ls.RetryPolicy(attempts=8, max_delay_s=30).max_delay_s == 30.0
    assert {"RetryPolicy", "owner_identity", "Health"} <= set(ls.__all__)


@pytest.mark.parametrize(
    ("attempts", "max_delay_s"),
    [(0, 1), (True, 1), ("3", 1), (3, -1), (3, float("inf")), (3, "10")],
)
def test_a_bad_retry_policy_is_refused(attempts, max_delay_s):
    with pytest.raises(ls.errors.InvalidValue):
        ls.RetryPolicy(attempts=attempts, max_delay_s=max_delay_s)


async def test_connect_refuses_a_retry_that_is_not_a_policy():
    with pytest.raises(ls.errors.InvalidValue, match="RetryPolicy"):
        await ls.connect("redis://127.0.0.1:1", retry=5)
