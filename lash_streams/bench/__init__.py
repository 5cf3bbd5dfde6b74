"""The benchmark harness behind ``lash-streams bench`` (``pip install
'lash-streams[bench]'``): our paths beside raw redis-py and FastStream, measured
in the same run on the same server, written as JSON, markdown and PNG plots."""

from lash_streams.bench.config import BenchConfig

__all__ = ["BenchConfig"]
