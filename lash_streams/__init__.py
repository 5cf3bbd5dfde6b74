"""lash-streams: lash's durable process layer on Redis Streams.

import lash_streams as ls
async with ls.connect() as bus:          # no URL: a private embedded server
    rec = await bus.register_process(ls.ProcessRegistration.external("job-1"))
    ...
"""

from lash_streams import errors
from lash_streams.bus import Bus, Health
from lash_streams.connection import connect
from lash_streams.coordination.jobs import (
    Job,
    JobFailed,
    JobOutcome,
    JobRetry,
    handler,
    job_registration,
    wake_on_terminal,
)
from lash_streams.coordination.liveness import owner_identity
from lash_streams.coordination.worker import Worker
from lash_streams.model import *  # noqa: F403 - lash's type names are the public surface
from lash_streams.model import __all__ as _model_all
from lash_streams.store.retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "Bus",
    "Health",
    "Job",
    "JobFailed",
    "JobOutcome",
    "JobRetry",
    "Worker",
    "handler",
    "job_registration",
    "wake_on_terminal",
    "RetryPolicy",
    "__version__",
    "connect",
    "errors",
    "owner_identity",
    *_model_all,
]
