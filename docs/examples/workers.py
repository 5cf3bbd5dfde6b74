"""Jobs on workers: a typed handler, dispatch to a free worker, retries with
backoff, a delayed start, and a job's terminal waking its session.

Runs against ``LASH_STREAMS_URL`` when set, else a private embedded server;
``LASH_STREAMS_NAMESPACE`` picks the key namespace (default ``lash-examples``).
"""

import asyncio
import os

import msgspec

import lash_streams as ls

URL = os.environ.get("LASH_STREAMS_URL")
NAMESPACE = os.environ.get("LASH_STREAMS_NAMESPACE", "lash-examples")


class Search(msgspec.Struct):
    query: str
    pages: int = 2


async def web_search(job: ls.Job[Search]) -> dict[str, object]:
    """A handler: its payload arrives as a Search; its return value is the
    job's AwaitSuccess; raising is retried per the worker's JobRetry."""
    done = await job.done_steps()  # what an earlier run of this job appended
    hits: list[str] = []
    for page in range(1, job.payload.pages + 1):
        step = f"page-{page}"
        if step in done:  # a rerun after a crash skips the pages it has
            hits += done[step]["hits"]
            continue
        found = [f"{job.payload.query} result {page}"]  # call the real tool here
        await job.append("job.progress", {"hits": found}, replay_key=step)
        hits += found
    return {"hits": hits, "attempt": job.attempt}


async def main() -> None:
    async with ls.connect(URL, namespace=NAMESPACE) as bus:
        worker = bus.worker(
            ls.owner_identity("worker-1"),  # one identity per pod (docs/kubernetes.md)
            {"web_search": web_search},
            concurrency=8,  # jobs this worker runs at once
            retry=ls.JobRetry(attempts=3, backoff_s=0.5),
        )
        stop = asyncio.Event()
        serving = asyncio.create_task(worker.run(stop=stop))

        # Any process can submit; a free worker of the kind starts it at once.
        job = await bus.submit("web_search", Search(query="redis streams"), session="sess-1")
        print("output:", await bus.await_terminal(job.id, timeout=30))

        later = await bus.submit("web_search", Search(query="later", pages=1), delay_s=1.0)
        print("delayed:", await bus.await_terminal(later.id, timeout=30))

        # The job's terminal woke its session ("job web_search completed").
        scope = ls.SessionScope(session_id="sess-1")
        async with bus.wake_consumer(group="agents", consumer="pod-1", scopes=[scope]) as wakes:
            message = await wakes.next(timeout=10)
            assert message is not None
            print("wake:", message.delivery.input)
            await message.ack()

        stop.set()
        await serving  # running jobs are handed back unfinished, no terminal


if __name__ == "__main__":
    asyncio.run(main())
