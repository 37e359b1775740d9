"""Where ``foxagent run`` gets its settings: flags, then environment, then a config file.

Precedence, highest first: command-line flags; ``FOXAGENT_*`` environment variables (falling back
to the ``OPENAI_*`` names); the ``[tool.foxagent]`` table of ``./pyproject.toml``, or
``./foxagent.toml`` (top-level keys); built-in defaults. Config-file keys: ``base_url``,
``model``, ``tools`` (list), ``mcp`` (list of MCP server command lines or URLs),
``system_prompt``, ``max_steps``, ``temperature``, ``max_tokens``, ``stream``, ``tool_choice``,
``strict_tools``, ``request_timeout`` (seconds; also ``FOXAGENT_REQUEST_TIMEOUT``). The API key
is never read from a config file (files get committed; keys must not).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foxagent._environment import first_env
from foxagent._exceptions import UserError

__all__ = ["RunConfig", "load_file_config"]

_ALLOWED = {
    "base_url",
    "model",
    "tools",
    "mcp",
    "system_prompt",
    "max_steps",
    "temperature",
    "max_tokens",
    "stream",
    "tool_choice",
    "strict_tools",
    "request_timeout",
}


@dataclass(kw_only=True)
class RunConfig:
    """Everything ``foxagent run`` needs to build an agent (``None`` = not set anywhere)."""

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    tools: list[str] = field(default_factory=lambda: ["stock"])
    mcp: list[str] = field(default_factory=list)
    system_prompt: str | None = None
    no_system_prompt: bool = False
    max_steps: int = 8
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = False
    tool_choice: str = "auto"
    strict_tools: bool = False
    request_timeout: float | None = None  # None: VLLMModel's defaults
    source: str = "defaults"

    @classmethod
    def resolve(cls, flags: Mapping[str, Any], directory: Path | None = None) -> RunConfig:
        """Merge config file, environment and flags (flags win)."""
        directory = directory or Path.cwd()
        file_values, source = load_file_config(directory)
        config = cls(source=source)
        for key, value in file_values.items():
            setattr(config, key, value)
        config.base_url = first_env("FOXAGENT_BASE_URL", "OPENAI_BASE_URL") or config.base_url
        config.api_key = first_env("FOXAGENT_API_KEY", "OPENAI_API_KEY")
        config.model = first_env("FOXAGENT_MODEL", "OPENAI_MODEL") or config.model
        if (timeout := first_env("FOXAGENT_REQUEST_TIMEOUT")) is not None:
            try:
                config.request_timeout = float(timeout)
            except ValueError:
                raise UserError(
                    f"FOXAGENT_REQUEST_TIMEOUT must be a number of seconds, got {timeout!r}."
                ) from None
        for key, value in flags.items():
            if value is not None and hasattr(config, key):
                setattr(config, key, value)
        return config


def load_file_config(directory: Path) -> tuple[dict[str, Any], str]:
    """``(values, where they came from)`` from ``foxagent.toml`` or ``pyproject.toml``."""
    for name, table in (("foxagent.toml", None), ("pyproject.toml", ("tool", "foxagent"))):
        path = directory / name
        if not path.is_file():
            continue
        data = _read_toml(path)
        for key in table or ():
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if not data:
            continue
        unknown = sorted(set(data) - _ALLOWED)
        if unknown:
            allowed = ", ".join(sorted(_ALLOWED))
            raise UserError(f"{path}: unknown setting(s) {', '.join(unknown)}; allowed: {allowed}.")
        return dict(data), str(path)
    return {}, "defaults"


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with path.open("rb") as handle:
            return dict(tomllib.load(handle))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UserError(f"Cannot read {path}: {error}") from None
