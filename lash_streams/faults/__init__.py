"""Fault injection for tests and soak runs (a surface): ``FaultProxy`` cuts,
stalls, delays or refuses the connections between clients and a server.
The servers' own faults (crash, replica promotion, memory limit, debug
sleeps) are options of ``lash_streams.server``."""

from lash_streams.faults.proxy import FaultProxy

__all__ = ["FaultProxy"]
