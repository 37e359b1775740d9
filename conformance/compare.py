"""Compare two vLLM JSON answers field by field, ignoring what is random or tokenizer-made."""

from __future__ import annotations

import re
from typing import Any

TOOL_ID_PREFIX = "chatcmpl-tool-"
TOOL_ID = re.compile(r"chatcmpl-tool-[0-9a-f]+")


def normalise(value: Any) -> Any:
    """Drop what is random or tokenizer-dependent; keep everything else.

    Response ids and ``created`` go; a tool-call id keeps its shape (``chatcmpl-tool-`` and as
    many ``h`` as it has hex digits); ``usage`` keeps its keys.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "created" or (key == "id" and not TOOL_ID.fullmatch(str(item))):
                continue
            out[key] = (
                sorted(item) if key == "usage" and isinstance(item, dict) else normalise(item)
            )
        return out
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, str) and TOOL_ID.fullmatch(value):
        return TOOL_ID_PREFIX + "h" * (len(value) - len(TOOL_ID_PREFIX))
    return value


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
