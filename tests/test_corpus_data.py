"""The recovery corpus's data: shape, coverage, schemas, and up-to-date ``server`` fields.

This checks the corpus itself (``tests/corpus``), not foxagent's recovery; that is
``test_corpus_recovery.py``. Run with ``-s`` to see the per-family/per-language table.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import jsonschema
import pytest

from tests.corpus import (
    FAMILIES,
    GENERATIONS,
    KINDS,
    LANGS,
    Case,
    case_file,
    load_cases,
    load_tools,
    regenerate,
    stale_case_ids,
)

CASES = load_cases()
TOOLS = {tool["function"]["name"]: tool["function"] for tool in load_tools()}
FIXED_TOOLS = {
    "get_weather",
    "calculator",
    "search_web",
    "send_email",
    "get_stock_price",
    "create_event",
    "get_current_time",
    "translate",
}
CASE_KEYS = {
    "id",
    "family",
    "lang",
    "source",
    "based_on",
    "model_text",
    "engine_finish_reason",
    "server",
    "server_override",
    "expect",
    "expect_by_generation",
    "must_not_run",
}
EXPECT_KEYS = {"calls", "rejected", "text_contains", "text_excludes"}
URL = re.compile(r"https?://[^\s/]+\.[^\s/]+/\S*")


def count_table(cases: list[Case]) -> str:
    """Cases per family and language, with totals."""
    counts = Counter((case["family"], case["lang"]) for case in cases)
    header = f"{'family':<16}" + "".join(f"{lang:>9}" for lang in LANGS) + f"{'total':>9}"
    rows = [header]
    for family in FAMILIES:
        per_lang = [counts[family, lang] for lang in LANGS]
        rows.append(f"{family:<16}" + "".join(f"{n:>9}" for n in per_lang) + f"{sum(per_lang):>9}")
    totals = [sum(counts[family, lang] for family in FAMILIES) for lang in LANGS]
    rows.append(f"{'all':<16}" + "".join(f"{n:>9}" for n in totals) + f"{sum(totals):>9}")
    return "\n".join(rows)


def test_corpus_counts_per_family_and_language() -> None:
    print("\n" + count_table(CASES))
    per_family = Counter(case["family"] for case in CASES)
    assert len(CASES) >= 130
    assert 3 * sum(case["lang"] == "zh-Hant" for case in CASES) >= len(CASES)
    thin = {family: per_family[family] for family in FAMILIES if per_family[family] < 8}
    assert not thin, f"families with fewer than 8 cases: {thin}"


def test_server_fields_match_the_emulator() -> None:
    stale = stale_case_ids(CASES)
    assert not stale, f"stale server fields (run python -m tests.corpus.regenerate): {stale}"


def test_regenerate_check_passes_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert regenerate.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_case_ids_are_unique_and_follow_their_family() -> None:
    ids = [case["id"] for case in CASES]
    duplicates = [case_id for case_id, n in Counter(ids).items() if n > 1]
    assert not duplicates
    for family in FAMILIES:
        for case in load_cases(family):
            assert case["family"] == family, f"{case['id']} is stored in {case_file(family).name}"
            assert re.fullmatch(rf"{family}-\d{{3}}", case["id"]), case["id"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case_shape(case: Case) -> None:
    assert set(case) == CASE_KEYS
    assert case["family"] in FAMILIES
    assert case["lang"] in LANGS
    assert case["engine_finish_reason"] in ("stop", "length")
    assert URL.fullmatch(case["source"]), case["source"]
    assert case["based_on"].strip() and "\n" not in case["based_on"]
    assert isinstance(case["model_text"], str) and case["model_text"]
    assert set(case["server"]) == set(GENERATIONS)
    if case["server_override"] is not None:
        assert_server_view(case["server_override"])
    assert_expect(case["expect"], complete=True)
    assert set(case["expect_by_generation"]) <= set(GENERATIONS)
    for override in case["expect_by_generation"].values():
        assert override and set(override) <= EXPECT_KEYS
        assert_expect(override, complete=False)
    assert case["must_not_run"] is (not case["expect"]["calls"])
    for needle in case["expect"]["text_contains"]:
        assert needle in case["model_text"], f"{needle!r} is not in the reply"


def assert_server_view(view: Any) -> None:
    assert set(view) == {"message", "finish_reason"}
    message = view["message"]
    assert message["role"] == "assistant"
    assert message["content"] is None or isinstance(message["content"], str)
    for call in message["tool_calls"]:
        assert call["type"] == "function"
        assert isinstance(call["function"]["name"], str)
        assert isinstance(call["function"]["arguments"], str)


def assert_expect(expect: dict[str, Any], *, complete: bool) -> None:
    if complete:
        assert set(expect) == EXPECT_KEYS
    for call in expect.get("calls", []):
        assert set(call) == {"name", "arguments"}
        assert isinstance(call["arguments"], dict)
    for rejected in expect.get("rejected", []):
        assert set(rejected) == {"name", "kind"}
        assert rejected["kind"] in KINDS
        assert rejected["name"] is None or isinstance(rejected["name"], str)
    for key in ("text_contains", "text_excludes"):
        assert all(isinstance(needle, str) and needle for needle in expect.get(key, []))


def expected_calls(case: Case) -> list[dict[str, Any]]:
    calls = list(case["expect"]["calls"])
    for override in case["expect_by_generation"].values():
        calls.extend(override.get("calls", []))
    return calls


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_expected_calls_fit_the_tool_schemas(case: Case) -> None:
    for call in expected_calls(case):
        assert call["name"] in TOOLS, f"{call['name']} is not in tools.json"
        jsonschema.validate(call["arguments"], TOOLS[call["name"]]["parameters"])
    for rejected in case["expect"]["rejected"]:
        if rejected["kind"] == "invalid_arguments":
            assert rejected["name"] in TOOLS


def test_tools_json_holds_the_fixed_set_plus_at_most_three() -> None:
    assert FIXED_TOOLS <= set(TOOLS)
    assert len(TOOLS) <= len(FIXED_TOOLS) + 3
    for tool in load_tools():
        assert tool["type"] == "function"
        function = tool["function"]
        assert function["description"]
        jsonschema.Draft202012Validator.check_schema(function["parameters"])
        assert function["parameters"]["type"] == "object"
        assert set(function["parameters"]["required"]) <= set(function["parameters"]["properties"])
