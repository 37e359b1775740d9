"""Model backends: one module per way of reaching FoxBrain.

- ``VLLMModel``: a vLLM (OpenAI-compatible) server over a lean aiohttp client (the default);
- ``OpenAIClientModel``: a user's own ``openai.AsyncOpenAI`` client;
- ``InProcessVLLMModel``: ``vllm.LLM`` in this process, concurrent runs batched per step.

Backends are imported on first use, so choosing one never loads the others' dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from foxagent.models._base import Model

if TYPE_CHECKING:
    from foxagent.models.openai_client import OpenAIClientModel
    from foxagent.models.vllm import VLLMModel
    from foxagent.models.vllm_inprocess import InProcessVLLMModel

__all__ = ["InProcessVLLMModel", "Model", "OpenAIClientModel", "VLLMModel"]

_HOMES = {
    "InProcessVLLMModel": "vllm_inprocess",
    "OpenAIClientModel": "openai_client",
    "VLLMModel": "vllm",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'foxagent.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"foxagent.models.{home}"), name)
    globals()[name] = value
    return value
