"""Which model ``foxagent run`` talks to, and how to tell a user why a server cannot be reached.

The choice, in order (stderr gets one line saying which was taken, and why):

1. ``--model-file`` or ``--context-size``: the embedded local model (llama.cpp in this process).
   Either one with ``--base-url`` is a usage error: the run cannot use both.
2. A server URL from ``--base-url``, ``FOXAGENT_BASE_URL``/``OPENAI_BASE_URL`` or a config file.
3. Nothing configured: the default server (`DEFAULT_BASE_URL`, where ``foxagent serve`` and
   FoxBrain's guide put it) if one answers there within half a second (`probe`), else the
   embedded local model.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from foxagent._environment import DEFAULT_BASE_URL, first_env
from foxagent._exceptions import UserError
from foxagent.cli._config import RunConfig

__all__ = [
    "PROBE_TIMEOUT",
    "Backend",
    "announce_backend",
    "choose_backend",
    "connect_problem",
    "probe",
]

#: Seconds the default server has to accept a connection and answer ``GET /v1/models``.
PROBE_TIMEOUT = 0.5


def _local_name() -> str:
    """The embedded default model, as stderr names it (the cache module is imported late: the
    CLI's start-up does not pay for it)."""
    from foxagent.models._gguf_cache import DEFAULT_MODEL

    return f"{DEFAULT_MODEL.name} on llama.cpp"


@dataclass(frozen=True, kw_only=True)
class Backend:
    """Where the run's model is.

    Attributes:
        url: the server's ``/v1`` URL; ``None`` for the embedded local model.
        model_file: the local GGUF file given (``None``: the default model).
        context_size: the local model's context window, when given.
        line: what stderr says about the choice (one line, no newline).
    """

    url: str | None
    model_file: str | None = None
    context_size: int | None = None
    line: str

    @property
    def local(self) -> bool:
        """Whether the run uses the embedded local model."""
        return self.url is None


def announce_backend(
    command: str, flags: Mapping[str, Any], config: RunConfig, err: TextIO
) -> Backend:
    """`choose_backend` for a command's flags and resolved settings, said on ``err`` (one line:
    which model ``foxagent COMMAND`` uses, and why)."""
    backend = choose_backend(
        flag_url=flags.get("base_url"),
        configured_url=config.base_url,
        config_source=config.source,
        model_file=flags.get("model_file"),
        context_size=flags.get("context_size"),
        api_key=config.api_key,
    )
    err.write(f"foxagent {command}: {backend.line}\n")
    err.flush()
    return backend


def choose_backend(
    *,
    flag_url: str | None,
    configured_url: str | None,
    config_source: str,
    model_file: str | None,
    context_size: int | None,
    api_key: str | None,
    default_url: str | None = None,
) -> Backend:
    """The backend for a run (module docstring).

    Args:
        flag_url: ``--base-url``.
        configured_url: the URL from the flag, the environment or a config file, if any.
        config_source: the config file the settings came from (named in the stderr line).
        model_file: ``--model-file``.
        context_size: ``--context-size``.
        api_key: sent with the default server's probe.
        default_url: where to look when nothing is configured (default: `DEFAULT_BASE_URL`).

    Raises:
        UserError: a local-model flag together with ``--base-url``, or a context size below 1.
    """
    if context_size is not None and context_size < 1:
        raise UserError(f"--context-size must be at least 1 token, got {context_size}.")
    if model_file is not None or context_size is not None:
        used = "--model-file" if model_file is not None else "--context-size"
        if flag_url is not None:
            raise UserError(
                f"{used} is for the embedded local model and --base-url for a server; "
                "give one of them."
            )
        if model_file is not None and not Path(model_file).is_file():
            raise UserError(f"--model-file {model_file} does not exist.")
        size = f"context {context_size} tokens" if context_size is not None else ""
        if model_file is not None:
            line = f"using the local model file {model_file}" + (f" ({size})" if size else "")
        else:
            line = f"using the embedded model ({_local_name()}" + (f", {size})" if size else ")")
        return Backend(url=None, model_file=model_file, context_size=context_size, line=line)
    if configured_url is not None:
        url = configured_url.rstrip("/")
        source = _url_source(flag_url, config_source)
        return Backend(url=url, line=f"using the server at {url} (from {source})")
    default_url = default_url or DEFAULT_BASE_URL
    problem = probe(default_url, api_key)
    if problem is None:
        return Backend(url=default_url, line=f"using the vLLM server at {default_url}")
    return Backend(
        url=None,
        line=f"no server at {default_url} ({problem}); using the embedded model ({_local_name()}). "
        "Start a server with `foxagent serve MODEL_PATH` or point --base-url at one.",
    )


def _url_source(flag_url: str | None, config_source: str) -> str:
    if flag_url is not None:
        return "--base-url"
    for name in ("FOXAGENT_BASE_URL", "OPENAI_BASE_URL"):
        if first_env(name):
            return name
    return config_source


def probe(url: str, api_key: str | None, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Whether an OpenAI-compatible server answers at ``url`` (its ``/v1`` URL) right now.

    One TCP connection and one ``GET /models``, each within ``timeout`` seconds. A server that
    refuses the key (401/403) counts as a server: the run then says what is wrong with the key.

    Returns:
        ``None`` when a server answers; otherwise why not, in a few words.
    """
    parts = urllib.parse.urlsplit(url)
    problem = connect_problem(url, timeout)
    if problem is not None:
        return problem
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        connection.request("GET", parts.path.rstrip("/") + "/models", headers=headers)
        response = connection.getresponse()
        status, body = response.status, response.read(1 << 20)
    except (OSError, http.client.HTTPException) as error:
        return _reason(error, timeout)
    finally:
        connection.close()
    if status in (401, 403):
        return None
    with contextlib.suppress(ValueError, TypeError, KeyError):
        if status == 200 and isinstance(json.loads(body)["data"], list):
            return None
    return f"something answers there, but GET /models gave HTTP {status}, not a model list"


def connect_problem(url: str, timeout: float = 2.0) -> str | None:
    """Why a TCP connection to ``url``'s host and port fails (``None``: it opens)."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "the URL's port is not a number"
    if not parts.hostname:
        return "the URL has no host"
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as error:
        return _reason(error, timeout)
    return None


def _reason(error: BaseException, timeout: float) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "no such host"
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return type(error).__name__
