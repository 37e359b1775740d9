"""Test doubles: test foxagent agents without a GPU.

- ``ScriptedModel``: answers from a queue of raw model texts, optionally as a vLLM parser
  generation would hand them over; records requests; ``assert_complete()``.
- ``FunctionModel``: answers with whatever a function of the request returns.
- ``FakeVLLMServer``: a real HTTP server on 127.0.0.1 that answers like vLLM with the llama3_json
  tool parser, from a script of raw model texts (``Reply``), with fault injection.
"""

from __future__ import annotations

from foxagent.testing._fake_vllm import FakeVLLMServer, Reply
from foxagent.testing._models import FunctionModel, ModelRequest, ScriptedModel

__all__ = ["FakeVLLMServer", "FunctionModel", "ModelRequest", "Reply", "ScriptedModel"]
