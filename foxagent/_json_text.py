"""JSON as UTF-8 that never fails on a lone surrogate, and the fast codec of the hot path.

Characters are written as themselves (Chinese text stays readable and a third the size). A lone
surrogate, which a model's or a tool's broken text can hold, cannot be encoded as UTF-8; then
the whole value is written with JSON escapes instead, which every JSON parser reads back as the
same string. `utf8_json` serves the rows session stores write.

The request bodies sent to vLLM and the replies read back use orjson (`compact_json`,
`loads_json`): about 10× faster than the standard library on a chat request, and it writes
UTF-8 straight from the string, so a Chinese system prompt no longer turns the whole body into
a UCS-2 string first. Whatever orjson refuses (a lone surrogate, an integer past 64 bits, a
non-string key, nesting past 254 levels) goes to the standard library, which writes or reads
the same JSON it always did. Two values come out differently: a float may be spelled
another way (``1e-7`` for ``1e-07``), and NaN is written as ``null`` (the standard library
writes ``NaN``, which is not JSON and which vLLM refuses); `loads_json` says where reading differs.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["JSON_ERRORS", "compact_json", "loads_json", "utf8_json"]

#: What `compact_json` raises when neither codec can write a value (as ``json.dumps`` would).
JSON_ERRORS = (TypeError, ValueError)


def utf8_json(value: Any, **options: Any) -> bytes:
    """``value`` as UTF-8 JSON bytes (``options`` go to ``json.dumps``)."""
    try:
        return json.dumps(value, ensure_ascii=False, **options).encode()
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, **options).encode()


def compact_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON: the bytes ``json.dumps(value, ensure_ascii=False,
    separators=(",", ":"))`` writes, from orjson when it can (a lone surrogate: escapes)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return utf8_json(value, separators=(",", ":"))


def loads_json(raw: bytes | str) -> Any:
    """``json.loads(raw)``, from orjson when it can (``ValueError`` when it is not JSON).

    One difference: orjson reads an integer past 64 bits as a float. The bodies read with it
    are a server's replies, whose numbers are counts and scores; a call's arguments arrive as
    a string, which recovery decodes itself.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson refuses some JSON the standard library reads (an escaped lone surrogate, NaN,
        # Infinity): those get the answer they always got.
        return json.loads(raw)
