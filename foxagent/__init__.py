"""foxagent: tool-calling agents for FoxBrain (Llama 3.1) served by vLLM.

Public names are re-exported here; the modules behind them are private (events live in
`foxagent.events`, the most used of them are re-exported here too). They are imported on first
use, so ``import foxagent.cli`` (and ``foxagent --help``) does not pay for pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foxagent._facade import lazy_exports

if TYPE_CHECKING:
    from foxagent._agent import (
        Agent as Agent,
    )
    from foxagent._answer import (
        FoxBrainAnswer as FoxBrainAnswer,
        parse_answer as parse_answer,
    )
    from foxagent._exceptions import (
        ApproverError as ApproverError,
        ArgumentProblem as ArgumentProblem,
        FoxagentError as FoxagentError,
        MCPServerError as MCPServerError,
        ModelConnectionError as ModelConnectionError,
        ModelError as ModelError,
        ModelHTTPError as ModelHTTPError,
        ModelResponseError as ModelResponseError,
        ModelTimeoutError as ModelTimeoutError,
        RunError as RunError,
        RunTimeoutError as RunTimeoutError,
        SessionBusyError as SessionBusyError,
        SessionStoreError as SessionStoreError,
        StepLimitError as StepLimitError,
        ToolArgumentsError as ToolArgumentsError,
        ToolCallError as ToolCallError,
        ToolError as ToolError,
        ToolRetryError as ToolRetryError,
        ToolThreadsExhaustedError as ToolThreadsExhaustedError,
        UserError as UserError,
    )
    from foxagent._messages import (
        ModelResponse as ModelResponse,
        ModelSettings as ModelSettings,
        Usage as Usage,
    )
    from foxagent._prompts import (
        DEFAULT_SYSTEM_PROMPT as DEFAULT_SYSTEM_PROMPT,
    )
    from foxagent._recovery import (
        RecoveredCall as RecoveredCall,
        Recovery as Recovery,
        RejectedCall as RejectedCall,
        recover_tool_calls as recover_tool_calls,
    )
    from foxagent._run import (
        RunResult as RunResult,
        Timings as Timings,
        ToolCallRecord as ToolCallRecord,
    )
    from foxagent._schema_tool import (
        SchemaTool as SchemaTool,
    )
    from foxagent._tools import (
        Tool as Tool,
        ToolContext as ToolContext,
        tool as tool,
    )
    from foxagent._toolset import (
        Toolset as Toolset,
    )
    from foxagent.events import (
        FinalAnswer as FinalAnswer,
        ModelRetry as ModelRetry,
        StepStarted as StepStarted,
        TextDelta as TextDelta,
        ToolCallDelta as ToolCallDelta,
        ToolCallDetected as ToolCallDetected,
        ToolFinished as ToolFinished,
        ToolStarted as ToolStarted,
    )

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "Agent",
    "ApproverError",
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
    "SessionBusyError",
    "SessionStoreError",
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
    "ToolThreadsExhaustedError",
    "Toolset",
    "Usage",
    "UserError",
    "__version__",
    "parse_answer",
    "recover_tool_calls",
    "tool",
]

_EXPORTS = {
    "Agent": "foxagent._agent",
    "ApproverError": "foxagent._exceptions",
    "ArgumentProblem": "foxagent._exceptions",
    "DEFAULT_SYSTEM_PROMPT": "foxagent._prompts",
    "FinalAnswer": "foxagent.events",
    "FoxBrainAnswer": "foxagent._answer",
    "FoxagentError": "foxagent._exceptions",
    "MCPServerError": "foxagent._exceptions",
    "ModelConnectionError": "foxagent._exceptions",
    "ModelError": "foxagent._exceptions",
    "ModelHTTPError": "foxagent._exceptions",
    "ModelResponse": "foxagent._messages",
    "ModelResponseError": "foxagent._exceptions",
    "ModelRetry": "foxagent.events",
    "ModelSettings": "foxagent._messages",
    "ModelTimeoutError": "foxagent._exceptions",
    "RecoveredCall": "foxagent._recovery",
    "Recovery": "foxagent._recovery",
    "RejectedCall": "foxagent._recovery",
    "RunError": "foxagent._exceptions",
    "RunResult": "foxagent._run",
    "RunTimeoutError": "foxagent._exceptions",
    "SchemaTool": "foxagent._schema_tool",
    "SessionBusyError": "foxagent._exceptions",
    "SessionStoreError": "foxagent._exceptions",
    "StepLimitError": "foxagent._exceptions",
    "StepStarted": "foxagent.events",
    "TextDelta": "foxagent.events",
    "Timings": "foxagent._run",
    "Tool": "foxagent._tools",
    "ToolArgumentsError": "foxagent._exceptions",
    "ToolCallDelta": "foxagent.events",
    "ToolCallDetected": "foxagent.events",
    "ToolCallError": "foxagent._exceptions",
    "ToolCallRecord": "foxagent._run",
    "ToolContext": "foxagent._tools",
    "ToolError": "foxagent._exceptions",
    "ToolFinished": "foxagent.events",
    "ToolRetryError": "foxagent._exceptions",
    "ToolStarted": "foxagent.events",
    "ToolThreadsExhaustedError": "foxagent._exceptions",
    "Toolset": "foxagent._toolset",
    "Usage": "foxagent._messages",
    "UserError": "foxagent._exceptions",
    "parse_answer": "foxagent._answer",
    "recover_tool_calls": "foxagent._recovery",
    "tool": "foxagent._tools",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
