"""When the server's tool parser threw the model's text away, ask again with it off.

vLLM's ``llama3_json`` parser (0.11 to 0.32) keeps only the JSON objects it finds in a reply and
drops the rest. So a JSON example inside an ``<answer>`` comes back as a call to a real tool,
and the prose around a call vanishes. The message alone then looks like a clean call. The
usage says otherwise: ``completion_tokens`` counts everything the model generated.

`dropped_text` compares that count with what came back. When far more was generated than
returned, or a reply with tools on came back empty, or the server answered 5xx after the
backend's retries (a parse failure can discard a finished generation: seen on llama.cpp 2026
builds), the agent asks the same request again, once, with
``tool_choice: "none"``. vLLM then returns the raw text, and with the same prompt and the
guide's ``seed`` it regenerates the same text from its prefix cache. foxagent's own ladder then
decides from the whole text. Calls recovered that way carry the repair label ``reasked_raw``.

Token counts of what came back are estimated (``foxagent._tokens``): ASCII / 4, one per other
character, plus `_ENVELOPE` tokens per call for the ``{"name": ..., "parameters": ...}``
around the arguments. A re-ask needs ``completion_tokens > returned * _RATIO + _MARGIN``.
Those margins keep clean calls, whose envelope and special tokens vLLM counts too, from
triggering a re-ask; a false alarm costs one request, never a wrong call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from foxagent._messages import ModelResponse, ModelSettings
from foxagent._recovery import Recovery, was_cut
from foxagent._tokens import estimate_tokens

__all__ = ["dropped_text", "mark_reasked", "reaskable"]

_RATIO = 1.2
_MARGIN = 6
_ENVELOPE = 10


def dropped_text(response: ModelResponse, settings: ModelSettings, *, tools: bool) -> str | None:
    """Why the server's parse of ``response`` cannot be trusted (it dropped generated text),
    or ``None`` when what came back accounts for what was generated.

    Only with ``tool_choice: "auto"`` and tools offered: forced calls are constrained by the
    server, and with ``"none"`` there is no parser to drop anything.
    """
    generated = response.usage.completion_tokens
    if not reaskable(settings, tools=tools) or generated <= 0:
        return None
    if response.finish_reason == "length" or was_cut(generated, settings.max_tokens):
        return None  # a cut reply: its calls are refused as truncated anyway
    message = response.message
    content = message.get("content")
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, Mapping)]
    if not calls:
        if isinstance(content, str) and content.strip():
            return None
        return f"the server returned an empty reply for {generated} generated tokens"
    returned = estimate_tokens(content) if isinstance(content, str) else 0
    returned += sum(_ENVELOPE + _call_tokens(call) for call in calls)
    if generated <= returned * _RATIO + _MARGIN:
        return None
    return (
        f"the server returned {len(calls)} call(s) and about {returned} tokens of text for "
        f"{generated} generated tokens, so its parser dropped the rest"
    )


def reaskable(settings: ModelSettings, *, tools: bool) -> bool:
    """A request whose reply may be asked again with the parser off: tools offered and
    ``tool_choice: "auto"`` (forced calls are constrained; ``"none"`` has no parser)."""
    return tools and settings.tool_choice == "auto"


def mark_reasked(recovery: Recovery) -> Recovery:
    """``recovery`` with every call labelled as recovered from the re-asked raw text."""
    calls = tuple(replace(c, repairs=(*c.repairs, "reasked_raw")) for c in recovery.calls)
    return replace(recovery, calls=calls)


def _call_tokens(call: Mapping[str, Any]) -> int:
    function = call.get("function")
    if not isinstance(function, Mapping):
        return 0
    name, arguments = function.get("name"), function.get("arguments")
    text = (name if isinstance(name, str) else "") + (
        arguments if isinstance(arguments, str) else str(arguments or "")
    )
    return estimate_tokens(text)
