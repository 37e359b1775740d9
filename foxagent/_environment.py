"""Settings from the environment, and the default server address (a leaf: the CLI and the
backends both use it)."""

from __future__ import annotations

import os

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_PORT", "first_env"]

#: The port of the default vLLM server: the one FoxBrain's guide tested (``vllm serve ... --port
#: 8883``) and ``foxagent serve`` listens on. Defined here only: the backends, ``foxagent run``,
#: ``doctor`` and ``serve`` all take it from here.
DEFAULT_PORT = 8883

#: The server URL used when none is given (argument, ``FOXAGENT_BASE_URL``, ``OPENAI_BASE_URL``).
DEFAULT_BASE_URL = f"http://127.0.0.1:{DEFAULT_PORT}/v1"


def first_env(*names: str) -> str | None:
    """The value of the first of ``names`` that is set and not empty in the environment."""
    return next((os.environ[name] for name in names if os.environ.get(name)), None)
