"""The Llama 3.1 JSON tool-calling chat template foxagent ships, and a renderer for it.

FoxBrain's guide tells users to start vLLM with ``--chat-template llama31_chattemplate.jinja``.
`template_path` finds foxagent's copy; `render_chat` renders it the way transformers'
``apply_chat_template`` and vLLM do, so tests (and the in-process Python API) see the exact prompt
the model gets. jinja2 is imported only inside the functions: ``import foxagent`` does not need it.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

__all__ = ["BOS_TOKEN", "EOS_TOKEN", "TEMPLATE_NAME", "render_chat", "template_path"]

TEMPLATE_NAME = "llama31_chattemplate.jinja"
BOS_TOKEN = "<|begin_of_text|>"
EOS_TOKEN = "<|eot_id|>"

# In a checkout the templates live in `templates/` beside the `foxagent/` package.
_CHECKOUT_TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / TEMPLATE_NAME


def template_path() -> Path:
    """Return the path of ``llama31_chattemplate.jinja``, the file to pass to ``--chat-template``.

    The installed copy (package ``foxagent.templates``) wins; a checkout without that package
    mapping falls back to the repository's ``templates/`` folder.

    Raises:
        FileNotFoundError: neither copy exists.
    """
    try:
        installed = importlib.resources.files("foxagent.templates") / TEMPLATE_NAME
    except ModuleNotFoundError:
        installed = None
    if isinstance(installed, Path) and installed.is_file():
        return installed
    if _CHECKOUT_TEMPLATE.is_file():
        return _CHECKOUT_TEMPLATE
    raise FileNotFoundError(
        f"chat template {TEMPLATE_NAME!r} not found: neither the package 'foxagent.templates' "
        f"nor {_CHECKOUT_TEMPLATE} has it"
    )


def render_chat(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
    date_string: str | None = None,
) -> str:
    """Render OpenAI-style chat messages into FoxBrain's Llama 3.1 prompt text.

    Args:
        messages: ``{"role": ..., "content": ...}`` mappings, assistant ones optionally with
            ``tool_calls`` (arguments as a mapping or a JSON string).
        tools: OpenAI tool schemas (``{"type": "function", "function": {...}}``), or None.
        add_generation_prompt: end with an open assistant header for the model to complete.
        date_string: the ``Today Date`` line (e.g. ``"26 Jul 2024"``); None means today.

    Returns:
        The prompt, starting with ``<|begin_of_text|>``.

    Raises:
        jinja2.exceptions.TemplateError: the template rejected the input (an unknown role).

    Example:
        >>> prompt = render_chat([{"role": "user", "content": "你好"}], date_string="26 Jul 2024")
        >>> prompt.endswith("你好<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n")
        True
    """
    context = _context(messages, tools, add_generation_prompt, date_string)
    return _compiled_template(template_path()).render(**context)


def render_with(
    template: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
) -> str:
    """Render with any chat template's text, the way `render_chat` renders foxagent's."""
    context = _context(messages, tools, add_generation_prompt, None)
    return _environment().from_string(template).render(**context)


def _context(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    add_generation_prompt: bool,
    date_string: str | None,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "messages": [dict(message) for message in messages],
        "tools": None if tools is None else [dict(tool) for tool in tools],
        "add_generation_prompt": add_generation_prompt,
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
    }
    if date_string is not None:
        context["date_string"] = date_string
    return context


@functools.lru_cache(maxsize=4)
def _compiled_template(path: Path) -> jinja2.Template:
    return _environment().from_string(path.read_text(encoding="utf-8"))


def _environment() -> jinja2.Environment:
    """The Jinja environment transformers (``chat_template_utils``) and vLLM render templates in."""
    import jinja2.exceptions
    import jinja2.ext
    import jinja2.sandbox

    def raise_exception(message: str) -> str:
        raise jinja2.exceptions.TemplateError(message)

    def strftime_now(format: str) -> str:
        return datetime.now().strftime(format)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def _tojson(
    x: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # transformers' override of Jinja's tojson: no HTML escaping, no key sorting, raw Unicode.
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )
