"""JSON as UTF-8 that never fails on a lone surrogate.

Characters are written as themselves (Chinese text stays readable and a third the size). A lone
surrogate, which a model's or a tool's broken text can hold, cannot be encoded as UTF-8; then
the whole value is written with JSON escapes instead, which every JSON parser reads back as the
same string. One place for the request bodies sent to vLLM and the rows session stores write.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["utf8_json"]


def utf8_json(value: Any, **options: Any) -> bytes:
    """``value`` as UTF-8 JSON bytes (``options`` go to ``json.dumps``)."""
    try:
        return json.dumps(value, ensure_ascii=False, **options).encode()
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, **options).encode()
