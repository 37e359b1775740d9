"""Model backends: one module per way of reaching FoxBrain, and wrappers that work with any.

- `VLLMModel`: a vLLM (OpenAI-compatible) server over a lean aiohttp client (the default);
- `OpenAIClientModel`: a user's own ``openai.AsyncOpenAI`` client (``foxagent[openai]``);
- `InProcessVLLMModel`: ``vllm.LLM`` in this process, concurrent runs batched per step;
- `LocalGGUFModel`: a small GGUF model on llama.cpp, the embedded default (``foxagent[local]``);
- `RetryingModel`, `ConcurrencyLimitedModel` (on `WrapperModel`): retries and a cap on requests
  in flight for any backend; `RetryPolicy` and `report_retry` for backends that retry
  themselves.

Every backend implements `Model`. Backends are imported on first use, so choosing one never
loads the others' dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foxagent._facade import lazy_exports

if TYPE_CHECKING:
    from foxagent.models._base import Model as Model
    from foxagent.models._retry import (
        RetryPolicy as RetryPolicy,
        report_retry as report_retry,
    )
    from foxagent.models._wrapper import (
        ConcurrencyLimitedModel as ConcurrencyLimitedModel,
        RetryingModel as RetryingModel,
        WrapperModel as WrapperModel,
    )
    from foxagent.models.local import LocalGGUFModel as LocalGGUFModel
    from foxagent.models.openai_client import OpenAIClientModel as OpenAIClientModel
    from foxagent.models.vllm import VLLMModel as VLLMModel
    from foxagent.models.vllm_inprocess import InProcessVLLMModel as InProcessVLLMModel

__all__ = [
    "ConcurrencyLimitedModel",
    "InProcessVLLMModel",
    "LocalGGUFModel",
    "Model",
    "OpenAIClientModel",
    "RetryPolicy",
    "RetryingModel",
    "VLLMModel",
    "WrapperModel",
    "report_retry",
]

_EXPORTS = {
    "ConcurrencyLimitedModel": "foxagent.models._wrapper",
    "InProcessVLLMModel": "foxagent.models.vllm_inprocess",
    "LocalGGUFModel": "foxagent.models.local",
    "Model": "foxagent.models._base",
    "OpenAIClientModel": "foxagent.models.openai_client",
    "RetryPolicy": "foxagent.models._retry",
    "RetryingModel": "foxagent.models._wrapper",
    "VLLMModel": "foxagent.models.vllm",
    "WrapperModel": "foxagent.models._wrapper",
    "report_retry": "foxagent.models._retry",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
