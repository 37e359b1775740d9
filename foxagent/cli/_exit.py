"""The exit codes of every ``foxagent`` command, defined once.

Scripts branch on these numbers, so a value never changes meaning once released. argparse
exits with 2 on bad flags on its own; `ExitCode.USAGE` keeps that meaning for the errors a
command finds after parsing.
"""

from __future__ import annotations

import enum
import json

__all__ = ["ExitCode", "json_error"]


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
        INTERRUPTED: stopped by Ctrl-C (SIGINT): 128 + 2, as shells report it.
    """

    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    MODEL = 4
    STEP_LIMIT = 5
    INTERRUPTED = 130


def json_error(kind: str, message: str, exit_code: int) -> str:
    """The one JSON object a ``--json`` command prints on stdout when it fails:
    ``{"error": {"type": ..., "message": ..., "exit_code": ...}}`` (no newline)."""
    error = {"type": kind, "message": message, "exit_code": int(exit_code)}
    return json.dumps({"error": error}, ensure_ascii=False)
