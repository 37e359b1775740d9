"""foxagent: tool-calling agents for FoxBrain (Llama 3.1) served by vLLM.

Public names are re-exported here; the modules behind them are private.
"""

from foxagent._answer import FoxBrainAnswer, parse_answer
from foxagent._exceptions import (
    ArgumentProblem,
    FoxagentError,
    RunError,
    ToolArgumentsError,
    ToolCallError,
    ToolError,
    UserError,
)
from foxagent._recovery import RecoveredCall, Recovery, RejectedCall, recover_tool_calls
from foxagent._schema_tool import SchemaTool
from foxagent._tools import Tool, ToolContext, tool
from foxagent._toolset import Toolset

__version__ = "0.1.0.dev0"

__all__ = [
    "ArgumentProblem",
    "FoxBrainAnswer",
    "FoxagentError",
    "RecoveredCall",
    "Recovery",
    "RejectedCall",
    "RunError",
    "SchemaTool",
    "Tool",
    "ToolArgumentsError",
    "ToolCallError",
    "ToolContext",
    "ToolError",
    "Toolset",
    "UserError",
    "__version__",
    "parse_answer",
    "recover_tool_calls",
    "tool",
]
