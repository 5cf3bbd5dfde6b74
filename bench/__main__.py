"""``python -m bench [options]`` is ``lash-streams bench [options]`` (the
harness lives in ``lash_streams.bench`` so an installed package has it too)."""

import sys

from lash_streams.cli import app

if __name__ == "__main__":
    app(["bench", *sys.argv[1:]])
