"""The ``lash-streams`` command line (a surface): ``app`` holds the commands,
``ops`` the operator commands and their one-line error mapping, ``bench`` the
benchmark command."""

from lash_streams.cli.app import app, main

__all__ = ["app", "main"]
