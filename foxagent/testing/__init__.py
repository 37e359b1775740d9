"""Test doubles: test foxagent agents without a GPU.

- ``ScriptedModel``: answers from a queue of raw model texts, optionally as a vLLM parser
  generation would hand them over; records requests; ``assert_complete()``.
- ``FunctionModel``: answers with whatever a function of the request returns.
- ``FakeVLLMServer``: a real HTTP server on 127.0.0.1 that answers like vLLM with the llama3_json
  tool parser, from a script of raw model texts (``Reply``), with fault injection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foxagent._facade import lazy_exports

if TYPE_CHECKING:
    from foxagent.testing._fake_vllm import (
        FakeVLLMServer as FakeVLLMServer,
        Reply as Reply,
    )
    from foxagent.testing._models import (
        FunctionModel as FunctionModel,
        ModelRequest as ModelRequest,
        ScriptedModel as ScriptedModel,
    )

__all__ = ["FakeVLLMServer", "FunctionModel", "ModelRequest", "Reply", "ScriptedModel"]

_EXPORTS = {
    "FakeVLLMServer": "foxagent.testing._fake_vllm",
    "FunctionModel": "foxagent.testing._models",
    "ModelRequest": "foxagent.testing._models",
    "Reply": "foxagent.testing._fake_vllm",
    "ScriptedModel": "foxagent.testing._models",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
