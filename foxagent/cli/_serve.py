"""``foxagent serve``: start vLLM the way FoxBrain's guide tested it, with foxagent's template.

The guide's tested command is ``vllm serve PATH --dtype auto --api-key KEY --port 8883
--enable-auto-tool-choice --tool-call-parser llama3_json --chat-template PATH --max-model-len 32768
--tensor-parallel-size 2 --gpu-memory-utilization 0.97``. We start the same server through
``python -m vllm.entrypoints.openai.api_server`` (the guide's method 2 entry point: it exists in
every vLLM release, where the ``vllm serve`` script is missing from some CPU builds), bind
127.0.0.1 unless told otherwise (the guide warns that 0.0.0.0 exposes the server), and hand the
API key over in the ``VLLM_API_KEY`` environment variable, which vLLM reads, so it never shows
in ``ps`` output or in the printed command.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from foxagent._environment import DEFAULT_PORT
from foxagent._exceptions import UserError

__all__ = ["ServeOptions", "printable", "server_environment", "start_server", "vllm_command"]


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """The knobs of ``foxagent serve`` (defaults from the guide's tested command)."""

    model_path: str
    chat_template: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # the guide's 8883, the port every client looks on by default
    tensor_parallel_size: int = 1
    max_model_len: int = 32768
    gpu_memory_utilization: float = 0.97
    dtype: str = "auto"
    served_model_name: str | None = None
    extra: Sequence[str] = ()


def vllm_command(options: ServeOptions) -> list[str]:
    """The vLLM command line for ``options`` (without the API key, which goes by environment)."""
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        options.model_path,
        "--host",
        options.host,
        "--port",
        str(options.port),
        "--dtype",
        options.dtype,
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "llama3_json",
        "--chat-template",
        str(options.chat_template),
        "--max-model-len",
        str(options.max_model_len),
        "--tensor-parallel-size",
        str(options.tensor_parallel_size),
        "--gpu-memory-utilization",
        str(options.gpu_memory_utilization),
    ]
    if options.served_model_name:
        command += ["--served-model-name", options.served_model_name]
    return command + list(options.extra)


def printable(command: Sequence[str], env: Mapping[str, str]) -> str:
    """The command as a shell line; the key is named, never shown."""
    line = shlex.join(command)
    return f"VLLM_API_KEY=*** {line}" if env.get("VLLM_API_KEY") else line


def server_environment(api_key: str | None) -> dict[str, str]:
    """The child's environment: ours, plus the API key where vLLM looks for it."""
    env = dict(os.environ)
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return env


def start_server(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run vLLM in the foreground until it exits (Ctrl-C stops it); return its exit code.

    Raises:
        UserError: vLLM is not installed in this Python.
    """
    if importlib.util.find_spec("vllm") is None:
        raise UserError(
            "vLLM is not installed in this Python. Install it with `pip install 'foxagent[vllm]'` "
            "on a machine with a GPU (FoxBrain needs ~80 GB of GPU memory in FP8)."
        )
    try:
        return subprocess.run(list(command), env=dict(env), check=False).returncode
    except KeyboardInterrupt:
        return 130
