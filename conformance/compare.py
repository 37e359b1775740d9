"""Compare two vLLM JSON answers field by field, ignoring what is random or tokenizer-made."""

from __future__ import annotations

import json
import re
from typing import Any

# Random or config-made values, compared by shape: the hex digits become "h".
_END_OF_TURN = re.compile(r"<\|(?:im_end|eot_id|eom_id|end_of_text)\|>\Z")
_SHAPED = re.compile(r"(chatcmpl-tool-|chatcmpl-|vllm-[0-9.]+-)([0-9a-f]+)")


def sse_payloads(body: str) -> list[Any]:
    """The ``data:`` payloads of a server-sent-events body: parsed JSON, and ``"[DONE]"``."""
    events = [block[len("data: ") :] for block in body.split("\n\n") if block.startswith("data: ")]
    return [event if event == "[DONE]" else json.loads(event) for event in events]


def normalise(value: Any) -> Any:
    """Drop what is random or tokenizer-dependent; keep everything else.

    ``created`` goes; response and tool-call ids and the system fingerprint keep their shape
    (``chatcmpl-tool-`` and as many ``h`` as they have hex digits); ``usage`` keeps its keys.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "created":
                continue
            if key == "logprobs" and isinstance(item, dict) and "content" in item:
                out[key] = {"text": joined_tokens(item)}  # token boundaries are the tokenizer's
                continue
            out[key] = (
                sorted(item) if key == "usage" and isinstance(item, dict) else normalise(item)
            )
        return out
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, str) and (shaped := _SHAPED.fullmatch(value)):
        return shaped.group(1) + "h" * len(shaped.group(2))
    return value


def joined_tokens(logprobs: Any) -> str | None:
    """The generated tokens of a ``logprobs`` object, joined, with the model's own end-of-turn
    token spelt ``<end>`` (SmolLM2's ``<|im_end|>``, FoxBrain's ``<|eot_id|>``)."""
    if not isinstance(logprobs, dict) or not isinstance(logprobs.get("content"), list):
        return None
    text = "".join(entry["token"] for entry in logprobs["content"])
    return _END_OF_TURN.sub("<end>", text)


def differences(real: Any, fake: Any, path: str = "$") -> list[str]:
    """Every path where the two JSON values differ, with both values."""
    if isinstance(real, dict) and isinstance(fake, dict):
        found = []
        for key in real.keys() | fake.keys():
            if key not in fake:
                found.append(f"{path}.{key}: real {real[key]!r}, fake has no such key")
            elif key not in real:
                found.append(f"{path}.{key}: fake {fake[key]!r}, real has no such key")
            else:
                found.extend(differences(real[key], fake[key], f"{path}.{key}"))
        return sorted(found)
    if isinstance(real, list) and isinstance(fake, list) and len(real) == len(fake):
        pairs = enumerate(zip(real, fake, strict=True))
        return [found for i, (r, f) in pairs for found in differences(r, f, f"{path}[{i}]")]
    return [] if real == fake else [f"{path}: real {real!r}, fake {fake!r}"]
