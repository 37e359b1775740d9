"""foxagent's port of partial-json-parser (``partial_json_loads``) against the real library.

`FakeVLLMServer` streams through
`foxagent.testing._vllm_llama3_stream.partial_json_loads`, a port of
what vLLM calls on partial-json-parser. Here every prefix of every corpus text (after the
``<|python_tag|>`` the parser skips), as is and with blanks in front, goes through both, with
and without partial strings. Where the library raises, the port must raise too (vLLM skips the
step whichever error it is); otherwise the value and the end offset must be equal.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from foxagent.testing._vllm_llama3_json import BOT_TOKEN
from foxagent.testing._vllm_llama3_stream import partial_json_loads
from tests.corpus import load_cases

ORACLE = Path(__file__).with_name("partial_json_oracle.py")


def _texts() -> list[str]:
    texts: set[str] = set()
    for case in load_cases():
        body = case["model_text"].removeprefix(BOT_TOKEN)
        for variant in (body, " " + body.lstrip(), "\n " + body.lstrip()):
            texts.update(variant[:end] for end in range(1, len(variant) + 1))
    return sorted(texts)


def _port(text: str, allow_partial_strings: bool) -> Any:
    try:
        value, end = partial_json_loads(text, allow_partial_strings)
    except ValueError:
        return "raised"
    return [value, end]


@pytest.fixture(scope="module")
def library(vllm_python: Path) -> tuple[list[str], list[Any]]:
    texts = _texts()
    done = subprocess.run(
        [str(vllm_python), str(ORACLE)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
    )
    return texts, json.loads(done.stdout)


def test_every_corpus_prefix_completes_like_the_library(
    library: tuple[list[str], list[Any]],
) -> None:
    texts, results = library
    assert len(texts) > 20_000  # every prefix of 155 texts in three variants
    mismatches = []
    for text, (with_strings, without_strings) in zip(texts, results, strict=True):
        for allow, real in ((True, with_strings), (False, without_strings)):
            expected = real if isinstance(real, list) else "raised"
            # The JSON round trip turns tuples into lists and keeps everything else.
            if json.loads(json.dumps(_port(text, allow))) != expected:
                mismatches.append(f"{text!r} allow_str={allow}: library {real!r}")
    assert not mismatches, f"{len(mismatches)} differ, e.g.\n" + "\n".join(mismatches[:10])
