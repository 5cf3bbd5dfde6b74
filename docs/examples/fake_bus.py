"""Unit-testing your code against the in-memory test double (no server).

Needs the ``testing`` extra: ``pip install 'lash-streams[testing]'``. Works as a
pytest test (``pytest docs/examples/fake_bus.py`` with pytest-asyncio) and as a
script.
"""

import asyncio

import lash_streams as ls
from lash_streams.testing import FakeServer, fake_bus


async def test_a_second_worker_sees_the_first_ones_lease() -> None:
    server = FakeServer()  # one in-memory server; buses on it share data
    async with fake_bus(server=server) as one, fake_bus(server=server) as two:
        await one.register_process(ls.ProcessRegistration.external("job-1"))
        a = ls.LeaseOwnerIdentity.opaque("worker-a", "1")
        b = ls.LeaseOwnerIdentity.opaque("worker-b", "1")
        assert isinstance(await one.claim_process_lease("job-1", a, 30_000), ls.LeaseAcquired)
        assert isinstance(await two.claim_process_lease("job-1", b, 30_000), ls.LeaseBusy)
        await two.complete_process("job-1", ls.AwaitSuccess(value="done"))
        assert await one.await_terminal("job-1", timeout=5) == ls.AwaitSuccess(value="done")


if __name__ == "__main__":
    asyncio.run(test_a_second_worker_sees_the_first_ones_lease())
    print("ok")
