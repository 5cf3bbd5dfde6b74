"""The demo fleet behind ``lash-streams demo``: workers, wake consumers and a
sweeper as OS processes on one bus; one worker is killed mid-run and the
sweeper turns its started owner-bound job into a written ``abandoned`` fact."""

from lash_streams.demo.fleet import DemoConfig, DemoFailed, Outcome
from lash_streams.demo.run import run_demo

__all__ = ["DemoConfig", "DemoFailed", "Outcome", "run_demo"]
