"""foxagent's exceptions.

Three families, so callers can tell *who* has to act::

    FoxagentError
    ├── UserError                 the developer misused foxagent (bad tool signature, name clash,
    │                             a tools file that does not load); raised at definition time
    ├── ToolCallError             one tool call cannot go ahead or failed; its message is written
    │   │                         to be sent back to the model as the tool's result
    │   ├── ToolArgumentsError    the arguments the model sent do not fit the tool's schema
    │   ├── ToolError             raised by a tool on purpose ("no such city", "division by zero")
    │   └── ToolThreadsExhaustedError  every sync-tool thread is held by a hung call
    └── RunError                  a run could not go on; carries the transcript so far
        ├── ModelError            the model server failed
        │   ├── ModelHTTPError        it answered with an error status (after retries)
        │   ├── ModelConnectionError  it could not be reached, or the connection broke
        │   │   └── ModelTimeoutError it did not answer in time
        │   └── ModelResponseError    its answer was not a chat completion
        ├── MCPServerError        an MCP server the tools come from could not be started, reached
        │                         or listed (when the agent or toolset opens: no transcript yet)
        ├── ApproverError         the approver raised instead of deciding; the call did not run
        ├── RunTimeoutError       the run passed its deadline (run_timeout)
        ├── SessionBusyError      another run holds the session (any process), past the wait
        ├── SessionStoreError     the session store failed (disk full, read-only, corrupt...)
        ├── StepLimitError        max_steps model requests without a final answer
        └── ToolRetryError        the model kept making calls that fail, past the retry budget

This module imports nothing from foxagent: everything else may import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApproverError",
    "ArgumentProblem",
    "FoxagentError",
    "MCPServerError",
    "ModelConnectionError",
    "ModelError",
    "ModelHTTPError",
    "ModelResponseError",
    "ModelTimeoutError",
    "RunError",
    "RunTimeoutError",
    "SessionBusyError",
    "SessionStoreError",
    "StepLimitError",
    "ToolArgumentsError",
    "ToolCallError",
    "ToolError",
    "ToolRetryError",
    "ToolThreadsExhaustedError",
    "UserError",
]


class FoxagentError(Exception):
    """Base class of every exception foxagent raises on purpose."""


class UserError(FoxagentError):
    """The developer used foxagent in a way it cannot support.

    Raised early (at decoration or load time) and names the function, parameter or file at fault.
    """


class ToolCallError(FoxagentError):
    """A tool call failed in a way the model can fix; ``str(error)`` is the text sent back to it."""


class ToolError(ToolCallError):
    """Raise this from a tool to tell the model what went wrong, e.g. ``ToolError("unknown city")``.

    Its message is sent back to the model as the tool result, so keep it short and actionable.
    """


class ToolThreadsExhaustedError(ToolCallError):
    """Every thread for sync tools is held by a call that timed out and never returned."""


@dataclass(frozen=True, slots=True)
class ArgumentProblem:
    """One reason why an argument was refused.

    Attributes:
        argument: dotted path of the argument (``"location"``, ``"items.2.price"``), or ``""``
            when the problem concerns the arguments as a whole.
        problem: what is wrong, phrased for the model (``"expected an integer, got 'five'"``).
    """

    argument: str
    problem: str

    def __str__(self) -> str:
        return f"'{self.argument}': {self.problem}" if self.argument else self.problem


class ToolArgumentsError(ToolCallError):
    """The arguments of a call do not fit the tool's parameters.

    Attributes:
        tool_name: the tool the call was meant for.
        problems: every problem found, one per argument at most.
    """

    def __init__(self, tool_name: str, problems: Sequence[ArgumentProblem]) -> None:
        self.tool_name = tool_name
        self.problems = tuple(problems)
        details = "; ".join(str(p) for p in self.problems)
        super().__init__(f"Invalid arguments for tool '{tool_name}': {details}.")


class RunError(FoxagentError):
    """A run could not continue (server error, unreachable server, step limit, ...).

    Attributes:
        messages: the conversation up to the failure (nothing is lost: a later run can continue
            from it).
    """

    def __init__(self, message: str, *, messages: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.messages: list[Any] = list(messages)


class MCPServerError(RunError):
    """An MCP server could not be started, reached or listed (the message names the server)."""


class ModelError(RunError):
    """The model server failed."""


class ModelHTTPError(ModelError):
    """The server answered with an error status.

    Attributes:
        status: the HTTP status code.
        body: the server's error message (never contains request headers or keys).
        retry_after: seconds the server asked to wait (``Retry-After``), if it did.
    """

    def __init__(
        self,
        status: int,
        body: str,
        *,
        retry_after: float | None = None,
        messages: Sequence[Any] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after
        super().__init__(f"Model server answered HTTP {status}: {body}", messages=messages)


class ModelConnectionError(ModelError):
    """The server could not be reached, or the connection broke mid-answer.

    Attributes:
        mid_stream: the connection broke after a stream had begun (the backend could not retry
            it; the agent asks for the reply again).
    """

    mid_stream: bool = False


class ModelTimeoutError(ModelConnectionError):
    """The server did not answer within the timeout."""


class ModelResponseError(ModelError):
    """The server's answer is not a chat completion (malformed JSON, no choices, ...)."""


class ApproverError(RunError):
    """The approver raised instead of deciding on a call; the call did not run."""


class RunTimeoutError(RunError):
    """The run passed its deadline (``Agent(run_timeout=...)`` or ``arun(timeout=...)``); the
    model request or tools in progress were stopped."""


class SessionBusyError(RunError):
    """Another run holds the session's lease (in this process or another) and did not let go
    within the session's ``busy_timeout``; nothing of this run was stored."""


class SessionStoreError(RunError):
    """The session's store failed (full disk, read-only file, corrupt database, lost server).

    What the run did is in ``messages``; what the store had committed before stays committed.
    """


class StepLimitError(RunError):
    """The run reached ``max_steps`` model requests without a final answer."""


class ToolRetryError(RunError):
    """The model kept making failing calls past the per-call retry budget."""
