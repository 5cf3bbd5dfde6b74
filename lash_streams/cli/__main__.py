"""``python -m lash_streams.cli``: the same as the ``lash-streams`` command."""

from lash_streams.cli.app import main

main()
