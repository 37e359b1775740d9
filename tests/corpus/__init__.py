"""The tool-call recovery corpus: real-world Llama 3.x outputs and what recovery must make of them.

Layout:

* ``tools.json``: the OpenAI tool schemas every case is written against.
* ``cases/<family>.json``: one JSON list of cases per failure family (see `FAMILIES`).
* ``regenerate.py``: rewrites each case's ``server`` field with
  ``foxagent.testing._vllm_llama3_json`` (``--check`` only reports stale cases).

Each case carries the raw ``model_text``, what the three generations of vLLM's
``llama3_json`` parser hand the client (``server``, tool-call ids replaced by
``"<id>"``), an optional ``server_override`` (for servers or modes that are not
vLLM's auto parser), and ``expect``: the calls, rejections and text that
``recover_tool_calls`` must produce for every view, unless ``expect_by_generation``
overrides a key for one generation.

Import it as ``corpus`` (pytest puts ``tests/`` on ``sys.path`` when ``tests`` has no
``__init__.py``) or as ``tests.corpus``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

from foxagent.testing._vllm_llama3_json import Generation, server_message

__all__ = [
    "CASES_DIR",
    "FAMILIES",
    "GENERATIONS",
    "KINDS",
    "LANGS",
    "TOOLS_PATH",
    "Case",
    "Expect",
    "ExpectedCall",
    "Rejected",
    "ServerView",
    "case_file",
    "expected_server",
    "load_cases",
    "load_tools",
    "stale_case_ids",
]

CORPUS_DIR = Path(__file__).resolve().parent
TOOLS_PATH = CORPUS_DIR / "tools.json"
CASES_DIR = CORPUS_DIR / "cases"

FAMILIES: tuple[str, ...] = (
    "content",
    "special_tokens",
    "multiple",
    "text_around",
    "malformed",
    "encoding",
    "other_syntax",
    "truncation",
    "wrong_name",
    "plain_text",
    "foxbrain_tags",
    "server_calls",
    "reports_2026",
)
LANGS: tuple[str, ...] = ("en", "zh-Hant")
KINDS: tuple[str, ...] = (
    "unknown_tool",
    "invalid_arguments",
    "placeholder",
    "truncated",
    "unparseable",
    "example",
)
GENERATIONS: tuple[Generation, ...] = ("prefix", "regex", "brace")

#: Stands in for vLLM's random ``chatcmpl-tool-<hex>`` ids in stored server messages.
PLACEHOLDER_ID = "<id>"


class ExpectedCall(TypedDict):
    """A call recovery must return: canonical tool name, arguments after coercion."""

    name: str
    arguments: dict[str, Any]


class Rejected(TypedDict):
    """A candidate recovery must refuse, and why."""

    name: str | None
    kind: Literal["unknown_tool", "invalid_arguments", "truncated", "unparseable", "example"]


class Expect(TypedDict):
    """What must hold for a view (text checks only where the view's content is not null)."""

    calls: list[ExpectedCall]
    rejected: list[Rejected]
    text_contains: list[str]
    text_excludes: list[str]


class ServerView(TypedDict):
    """The assistant message and finish_reason a server hands the client."""

    message: dict[str, Any]
    finish_reason: str


class Case(TypedDict):
    """One corpus case (see the module docstring)."""

    id: str
    family: str
    lang: Literal["en", "zh-Hant"]
    source: str
    based_on: str
    model_text: str
    engine_finish_reason: Literal["stop", "length"]
    server: dict[str, ServerView]
    server_override: ServerView | None
    expect: Expect
    expect_by_generation: dict[str, dict[str, Any]]
    must_not_run: bool


def load_tools() -> list[dict[str, Any]]:
    """The OpenAI tool schemas (``{"type": "function", "function": {...}}``) of the corpus."""
    return cast("list[dict[str, Any]]", json.loads(TOOLS_PATH.read_text(encoding="utf-8")))


def case_file(family: str) -> Path:
    """Where the cases of one family are stored."""
    return CASES_DIR / f"{family}.json"


def load_cases(family: str | None = None) -> list[Case]:
    """All cases in `FAMILIES` order (or one family's), each file in stored order."""
    families = FAMILIES if family is None else (family,)
    cases: list[Case] = []
    for name in families:
        path = case_file(name)
        if path.exists():
            cases.extend(cast("list[Case]", json.loads(path.read_text(encoding="utf-8"))))
    return cases


def expected_server(case: Case) -> dict[str, ServerView]:
    """What each parser generation hands the client for ``case["model_text"]``."""
    views: dict[str, ServerView] = {}
    for generation in GENERATIONS:
        message, finish_reason = server_message(
            case["model_text"],
            generation=generation,
            engine_finish_reason=case["engine_finish_reason"],
            id_factory=lambda: PLACEHOLDER_ID,
        )
        views[generation] = {"message": message, "finish_reason": finish_reason}
    return views


def stale_case_ids(cases: list[Case]) -> list[str]:
    """Ids of the cases whose stored ``server`` differs from `expected_server`."""
    return [case["id"] for case in cases if case.get("server") != expected_server(case)]
