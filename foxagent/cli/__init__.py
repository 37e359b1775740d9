"""The ``foxagent`` command line (``foxagent.cli:main`` is the console script)."""

from foxagent.cli._main import main

__all__ = ["main"]
