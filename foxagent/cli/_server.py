"""``foxagent serve``, ``foxagent doctor`` and ``foxagent template``: printing and exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from foxagent._environment import first_env
from foxagent._exceptions import UserError

__all__ = ["doctor_command", "models_command", "serve_command", "template_command"]


def serve_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    from foxagent._templates import template_path
    from foxagent.cli._serve import (
        ServeOptions,
        printable,
        server_environment,
        start_server,
    )
    from foxagent.cli._serve import serve_command as build

    extra = list(flags.get("extra") or ())
    options = ServeOptions(
        model_path=str(flags["model_path"]),
        chat_template=Path(flags.get("chat_template") or template_path()),
        host=str(flags["host"]),
        port=int(flags["port"]),
        tensor_parallel_size=int(flags["tensor_parallel_size"]),
        max_model_len=int(flags["max_model_len"]),
        gpu_memory_utilization=float(flags["gpu_memory_utilization"]),
        dtype=str(flags["dtype"]),
        served_model_name=flags.get("served_model_name"),
        extra=extra,
    )
    command = build(options)
    env = server_environment(flags.get("api_key") or first_env("FOXAGENT_API_KEY", "VLLM_API_KEY"))
    if options.host == "0.0.0.0":
        err.write("foxagent serve: warning: 0.0.0.0 exposes the server to the network.\n")
    if flags.get("dry_run"):
        out.write(printable(command, env) + "\n")
        return 0
    if not env.get("VLLM_API_KEY"):
        err.write("foxagent serve: warning: no API key set; anyone who can reach it can use it.\n")
    err.write(f"foxagent serve: {printable(command, env)}\n")
    try:
        return start_server(command, env)
    except UserError as error:
        err.write(f"foxagent serve: {error}\n")
        return 2


def doctor_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    from foxagent.cli._doctor import run_checks
    from foxagent.models.vllm import resolve_endpoint

    base_url, api_key = resolve_endpoint(flags.get("base_url"), flags.get("api_key"))
    findings = asyncio.run(run_checks(base_url, api_key))
    for finding in findings:
        out.write(finding.line() + "\n")
    return 0 if all(finding.ok for finding in findings) else 1


def template_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    from foxagent._templates import template_path

    path = template_path()
    if flags["action"] == "path":
        out.write(f"{path}\n")
    else:
        out.write(path.read_text(encoding="utf-8"))
    return 0


def models_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    from foxagent.models import _gguf_cache

    if flags["action"] == "pull":
        try:
            path = _gguf_cache.pull(progress=lambda message: err.write(f"{message}\n"))
        except UserError as error:
            err.write(f"foxagent models: {error}\n")
            return 2
        out.write(f"{path}\n")
        return 0
    for path, size in _gguf_cache.list_models():
        out.write(f"{path}  {size / 1e6:.1f} MB\n")
    return 0
