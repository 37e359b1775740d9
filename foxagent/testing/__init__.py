"""Test doubles: test foxagent agents without a GPU.

``FakeVLLMServer`` is a real HTTP server on 127.0.0.1 that answers like vLLM with the
llama3_json tool parser, from a script of raw model texts (`Reply`).
"""

from __future__ import annotations

from foxagent.testing._fake_vllm import FakeVLLMServer, Reply

__all__ = ["FakeVLLMServer", "Reply"]
