"""foxagent: tool-calling agents for FoxBrain (Llama 3.1) served by vLLM.

Public names are re-exported here; the modules behind them are private. They are imported on
first use, so ``import foxagent.cli`` (and ``foxagent --help``) does not pay for pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from foxagent._agent import Agent
    from foxagent._answer import FoxBrainAnswer, parse_answer
    from foxagent._events import (
        FinalAnswer,
        ModelRetry,
        StepStarted,
        ToolCallDetected,
        ToolFinished,
        ToolStarted,
    )
    from foxagent._exceptions import (
        ArgumentProblem,
        FoxagentError,
        MCPServerError,
        ModelConnectionError,
        ModelError,
        ModelHTTPError,
        ModelResponseError,
        ModelTimeoutError,
        RunError,
        RunTimeoutError,
        StepLimitError,
        ToolArgumentsError,
        ToolCallError,
        ToolError,
        ToolRetryError,
        UserError,
    )
    from foxagent._messages import ModelResponse, ModelSettings, TextDelta, ToolCallDelta, Usage
    from foxagent._prompts import DEFAULT_SYSTEM_PROMPT
    from foxagent._recovery import RecoveredCall, Recovery, RejectedCall, recover_tool_calls
    from foxagent._run import RunResult, Timings, ToolCallRecord
    from foxagent._schema_tool import SchemaTool
    from foxagent._tools import Tool, ToolContext, tool
    from foxagent._toolset import Toolset

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "Agent",
    "ArgumentProblem",
    "FinalAnswer",
    "FoxBrainAnswer",
    "FoxagentError",
    "MCPServerError",
    "ModelConnectionError",
    "ModelError",
    "ModelHTTPError",
    "ModelResponse",
    "ModelResponseError",
    "ModelRetry",
    "ModelSettings",
    "ModelTimeoutError",
    "RecoveredCall",
    "Recovery",
    "RejectedCall",
    "RunError",
    "RunResult",
    "RunTimeoutError",
    "SchemaTool",
    "StepLimitError",
    "StepStarted",
    "TextDelta",
    "Timings",
    "Tool",
    "ToolArgumentsError",
    "ToolCallDelta",
    "ToolCallDetected",
    "ToolCallError",
    "ToolCallRecord",
    "ToolContext",
    "ToolError",
    "ToolFinished",
    "ToolRetryError",
    "ToolStarted",
    "Toolset",
    "Usage",
    "UserError",
    "__version__",
    "parse_answer",
    "recover_tool_calls",
    "tool",
]

_HOMES = {
    "Agent": "_agent",
    "ArgumentProblem": "_exceptions",
    "DEFAULT_SYSTEM_PROMPT": "_prompts",
    "FinalAnswer": "_events",
    "FoxBrainAnswer": "_answer",
    "FoxagentError": "_exceptions",
    "MCPServerError": "_exceptions",
    "ModelConnectionError": "_exceptions",
    "ModelError": "_exceptions",
    "ModelHTTPError": "_exceptions",
    "ModelResponse": "_messages",
    "ModelResponseError": "_exceptions",
    "ModelRetry": "_events",
    "ModelSettings": "_messages",
    "ModelTimeoutError": "_exceptions",
    "RecoveredCall": "_recovery",
    "Recovery": "_recovery",
    "RejectedCall": "_recovery",
    "RunError": "_exceptions",
    "RunResult": "_run",
    "RunTimeoutError": "_exceptions",
    "SchemaTool": "_schema_tool",
    "StepLimitError": "_exceptions",
    "StepStarted": "_events",
    "TextDelta": "_messages",
    "Timings": "_run",
    "Tool": "_tools",
    "ToolArgumentsError": "_exceptions",
    "ToolCallDelta": "_messages",
    "ToolCallDetected": "_events",
    "ToolCallError": "_exceptions",
    "ToolCallRecord": "_run",
    "ToolContext": "_tools",
    "ToolError": "_exceptions",
    "ToolFinished": "_events",
    "ToolRetryError": "_exceptions",
    "ToolStarted": "_events",
    "Toolset": "_toolset",
    "Usage": "_messages",
    "UserError": "_exceptions",
    "parse_answer": "_answer",
    "recover_tool_calls": "_recovery",
    "tool": "_tools",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'foxagent' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"foxagent.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
