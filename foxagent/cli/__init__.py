"""The ``foxagent`` command line (``foxagent.cli:main`` is the console script).

``_commands`` is the table of commands (name, flags from ``_arguments``, handler); ``_main``
builds the parser from it and dispatches. Each handler (``_tools``, ``_run``, ``_server``,
``_mcp_serve``) takes ``(flags, *, out, err)`` and returns an ``_exit.ExitCode``.
"""

from foxagent.cli._main import main

__all__ = ["main"]
