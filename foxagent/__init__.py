"""foxagent: tool-calling agents for FoxBrain (Llama 3.1) served by vLLM."""

from foxagent._exceptions import (
    ArgumentProblem,
    FoxagentError,
    RunError,
    ToolArgumentsError,
    ToolCallError,
    ToolError,
    UserError,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "ArgumentProblem",
    "FoxagentError",
    "RunError",
    "ToolArgumentsError",
    "ToolCallError",
    "ToolError",
    "UserError",
    "__version__",
]
