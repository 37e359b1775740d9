"""The exit codes of every ``foxagent`` command, defined once.

Scripts branch on these numbers, so a value never changes meaning once released. argparse
exits with 2 on bad flags on its own; `ExitCode.USAGE` keeps that meaning for the errors a
command finds after parsing.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What a command's exit status means.

    Attributes:
        OK: the command did what it was asked (``run`` answered, every ``doctor`` check passed).
        FAILED: the command ran but found a problem (``doctor``: a check failed).
        USAGE: bad flags, tools that do not load, an unreadable config file, vLLM not installed.
        UNREACHABLE: no server at the URL or it timed out, or an MCP server did not start or
            answer.
        MODEL: the server or the model misbehaved (HTTP error, bad reply, tools kept failing).
        STEP_LIMIT: no final answer within ``--max-steps``.
    """

    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    MODEL = 4
    STEP_LIMIT = 5
