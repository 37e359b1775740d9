"""vLLM's ``partial_json_loads`` (on the real partial-json-parser) for each text on stdin.

Runs inside the vLLM venv. Input: a JSON list of strings. Output: a JSON list with, per text,
``[result with partial strings allowed, result without]``; a result is ``[value, end]`` or the
name of the exception raised.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from partial_json_parser.core.options import Allow
from vllm.tool_parsers.utils import partial_json_loads


def _one(text: str, flags: Allow) -> Any:
    try:
        value, end = partial_json_loads(text, flags)
    except Exception as exc:  # the caller compares which calls raise, not the messages
        return type(exc).__name__
    return [value, end]


def main() -> None:
    texts = json.load(sys.stdin)
    without_strings = Allow.ALL & ~Allow.STR
    results = [[_one(t, Allow.ALL), _one(t, without_strings)] for t in texts]
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
