"""History hygiene: a conversation handed back to the model is one it can continue.

A history comes from the caller (``history=``), a session store, or an earlier run, and any of
them may hold what a model or another client wrote. Three things break later requests or teach
the model bad habits, so `clean_history` fixes them before a request is built:

* **Arguments that are not a JSON object.** vLLM's chat template renders ``tool_calls``
  arguments as a JSON object. A string that is not one (cut JSON, a list, plain text) made
  every later request of the conversation fail. Such arguments become the object they decode
  to, or ``{}``.
* **ASCII-escaped CJK** (``"\\u53f0\\u5317"``). Shown its own calls that way, FoxBrain starts
  writing ``\\uXXXX`` itself. Arguments are re-serialised with the characters as they are.
* **Special tokens** (``<|python_tag|>``, ``<|eom_id|>``...) left in assistant text are
  stripped: the template adds its own, and a stray one ends a turn early.

Messages are copied; the caller's history is never changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["clean_history"]

_SPECIAL_TOKEN = re.compile(r"<\|[a-z_]{2,40}\|>")


def clean_history(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` copied, with call arguments as JSON objects and no special tokens."""
    cleaned = []
    for message in messages:
        copy = dict(message)
        if copy.get("role") == "assistant":
            content = copy.get("content")
            if isinstance(content, str) and "<|" in content:
                copy["content"] = _SPECIAL_TOKEN.sub("", content)
            calls = copy.get("tool_calls")
            if isinstance(calls, list) and calls:
                copy["tool_calls"] = [_clean_call(call) for call in calls]
        cleaned.append(copy)
    return cleaned


def _clean_call(call: Any) -> Any:
    if not isinstance(call, Mapping) or not isinstance(call.get("function"), Mapping):
        return call
    function = dict(call["function"])
    function["arguments"] = _object_text(function.get("arguments"))
    return {**call, "function": function}


def _object_text(arguments: Any) -> str:
    """``arguments`` as the text of a JSON object, characters unescaped; ``{}`` otherwise."""
    value = arguments
    if isinstance(arguments, str):
        try:
            value = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            value = {}
    if not isinstance(value, dict):
        value = {}
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return "{}"
