"""The local suite: everyday questions the embedded model must get right (issue 17).

The cases live in ``local_suite.json`` beside this module: English and Traditional Chinese
questions in five categories (``arithmetic``, ``weather``, ``units``, ``no_tool``, ``chat``), each
with the stock tools offered, the tool the model must call (or none) and the answers that count.

`judge` decides one run, from the tools it called and its final answer:

1. **Tool choice.** The names of the tools the run called, as a set, must be exactly
   ``{expect_tool}``, or empty when ``expect_tool`` is None. Calling a tool twice is fine;
   calling an unneeded tool, or one more than the needed tool, is wrong.
2. **The answer** must not be empty. Then:

   - ``expect_answer`` not empty: right when any of them appears in the answer. An expected
     number (``391``, ``12.5``) is compared by value with every number written in the answer
     (full-width digits and thousands separators read too; ``17 * 23 = 391`` holds 391),
     within half a unit of its last digit (``37.8`` accepts 37.78, ``8.05`` accepts 8.04672).
     Anything else is a case-insensitive substring (``Paris``, ``玉山``).
   - ``expect_answer`` empty (chit-chat): any answer that is not only a number or arithmetic
     (``34`` as the answer to "Tell me a joke" is wrong).

Tools are named short: ``calculator`` and ``weather`` (the stock ``get_weather``); `judge` takes
either name in ``called``. The weather cases need fixed readings, not today's weather:
`suite_tools` builds the stock ``get_weather`` over `FIXED_WEATHER` (no network), and their
expected answers are those temperatures. With the real Open-Meteo tool only their tool choice
can be judged.
"""

from __future__ import annotations

import importlib
import json
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any

from foxagent._exceptions import ToolError, UserError
from foxagent._tools import Tool

__all__ = [
    "CATEGORIES",
    "FIXED_WEATHER",
    "LANGUAGES",
    "STOCK_NAMES",
    "FixedWeather",
    "LocalCase",
    "judge",
    "load_local_suite",
    "suite_tools",
]

CATEGORIES = ("arithmetic", "weather", "units", "no_tool", "chat")
LANGUAGES = ("en", "zh-TW")
_SUITE_FILE = "local_suite.json"

#: The suite's short tool names -> the stock tools' names (``foxagent_tools.STOCK_TOOLS``).
STOCK_NAMES: dict[str, str] = {"calculator": "calculator", "weather": "get_weather"}
_SHORT = {stock: short for short, stock in STOCK_NAMES.items()}

#: The readings the weather cases expect: a place (lower case, 臺 as 台, no 市/縣) ->
#: (label, temperature in °C, WMO weather code, description).
FIXED_WEATHER: dict[str, tuple[str, float, int, str]] = {
    "taipei": ("Taipei, Taiwan", 28.0, 2, "Partly cloudy"),
    "台北": ("Taipei, Taiwan", 28.0, 2, "Partly cloudy"),
    "london": ("London, England, United Kingdom", 12.0, 61, "Slight rain"),
    "倫敦": ("London, England, United Kingdom", 12.0, 61, "Slight rain"),
    "tokyo": ("Tokyo, Japan", 18.0, 1, "Mainly clear"),
    "東京": ("Tokyo, Japan", 18.0, 1, "Mainly clear"),
    "paris": ("Paris, Île-de-France, France", 15.0, 3, "Overcast"),
    "巴黎": ("Paris, Île-de-France, France", 15.0, 3, "Overcast"),
    "kaohsiung": ("Kaohsiung, Taiwan", 30.0, 0, "Clear sky"),
    "高雄": ("Kaohsiung, Taiwan", 30.0, 0, "Clear sky"),
    "hsinchu": ("Hsinchu, Taiwan", 26.0, 2, "Partly cloudy"),
    "新竹": ("Hsinchu, Taiwan", 26.0, 2, "Partly cloudy"),
}

_NUMBER = re.compile(r"[-−]?\d+(?:,\d{3})*(?:\.\d+)?|[-−]?\.\d+")
_EXPECTED_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# An answer that is only numbers and arithmetic: no words at all.
_ONLY_NUMBERS = re.compile(r"[\d\s.,+\-−*/×÷=()%^]+")


@dataclass(frozen=True)
class LocalCase:
    """One question of the local suite.

    Attributes:
        id: stable and unique (``arith-01``).
        question: what the user types.
        lang: ``"en"`` or ``"zh-TW"``.
        category: one of `CATEGORIES`.
        tools: the stock tools offered, by short name (``"calculator"``, ``"weather"``: the
            stock ``get_weather``; see `STOCK_NAMES`), maybe none.
        expect_tool: the tool it must call (a short name); None: it must call none.
        expect_answer: right if any of these appears in the final answer (module docstring);
            empty: any answer that is not only a number.
    """

    id: str
    question: str
    lang: str
    category: str
    tools: tuple[str, ...]
    expect_tool: str | None
    expect_answer: tuple[str, ...]


def load_local_suite() -> list[LocalCase]:
    """The suite's cases, in file order.

    Raises:
        UserError: the file is malformed (a case without a field, an unknown category or
            language, a duplicate id, an expected tool that is not offered).
    """
    text = resources.files(__package__ or "foxagent.eval").joinpath(_SUITE_FILE).read_text("utf-8")
    cases: list[LocalCase] = []
    for raw in json.loads(text)["cases"]:
        try:
            case = LocalCase(
                id=str(raw["id"]),
                question=str(raw["question"]),
                lang=str(raw["lang"]),
                category=str(raw["category"]),
                tools=tuple(str(name) for name in raw["tools"]),
                expect_tool=None if raw["expect_tool"] is None else str(raw["expect_tool"]),
                expect_answer=tuple(str(answer) for answer in raw["expect_answer"]),
            )
        except (KeyError, TypeError) as error:
            raise UserError(f"{_SUITE_FILE}: a case lacks a field ({error}): {raw!r}") from None
        _check(case, cases)
        cases.append(case)
    return cases


def _check(case: LocalCase, earlier: list[LocalCase]) -> None:
    problem = ""
    if case.category not in CATEGORIES:
        problem = f"unknown category {case.category!r}"
    elif case.lang not in LANGUAGES:
        problem = f"unknown language {case.lang!r}"
    elif any(other.id == case.id for other in earlier):
        problem = "duplicate id"
    elif case.expect_tool is not None and case.expect_tool not in case.tools:
        problem = f"expects {case.expect_tool!r}, which is not offered"
    if problem:
        raise UserError(f"{_SUITE_FILE}: case {case.id}: {problem}.")


def judge(case: LocalCase, called: list[str], answer: str) -> tuple[bool, str]:
    """Whether a run got ``case`` right, and why (module docstring for the rules).

    Args:
        case: the question.
        called: the names of the tools the run called, in order (repeats allowed); short
            names (``weather``) or the stock names (``get_weather``) alike.
        answer: the run's final answer.

    Returns:
        ``(right, why)``: ``why`` is one short sentence either way.
    """
    ok, why = tool_choice_right(case, called)
    if not ok:
        return False, why
    text = _normal(answer)
    if not text:
        return False, "the answer is empty"
    if not case.expect_answer:
        if _ONLY_NUMBERS.fullmatch(text):
            return False, f"the answer {answer.strip()!r} is only a number"
        return True, f"{why}; any answer counts, and it is not only a number"
    for expected in case.expect_answer:
        if _found(expected, text):
            return True, f"{why}; the answer holds {expected!r}"
    wanted = " or ".join(repr(e) for e in case.expect_answer)
    return False, f"{why}, but the answer holds none of {wanted}"


def tool_choice_right(case: LocalCase, called: list[str]) -> tuple[bool, str]:
    """Rule 1 of `judge` alone: whether the run called exactly the expected tool (or none)."""
    names = {_SHORT.get(name, name) for name in called}
    if case.expect_tool is None:
        if names:
            return False, f"called {', '.join(sorted(names))} where no tool was needed"
        return True, "called no tool, as it should"
    if case.expect_tool not in names:
        return False, f"did not call {case.expect_tool}" + (
            f" (called {', '.join(sorted(names))})" if names else ""
        )
    others = names - {case.expect_tool}
    if others:
        return False, f"called {case.expect_tool} but also {', '.join(sorted(others))}"
    return True, f"called {case.expect_tool}"


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _found(expected: str, text: str) -> bool:
    if _EXPECTED_NUMBER.fullmatch(expected):
        return any(_close(expected, value) for value in _numbers(text))
    return _normal(expected).casefold() in text.casefold()


def _numbers(text: str) -> list[Decimal]:
    values = []
    for match in _NUMBER.finditer(text):
        # A digit just before the match: part of something else (a date's "2026-05").
        if match.start() > 0 and text[match.start() - 1].isdigit():
            continue
        try:
            values.append(Decimal(match.group().replace(",", "").replace("−", "-")))
        except InvalidOperation:
            continue
    return values


def _close(expected: str, value: Decimal) -> bool:
    """``value`` rounds to ``expected``: within half a unit of its last digit."""
    decimals = len(expected.partition(".")[2])
    tolerance = Decimal(5) / Decimal(10) ** (decimals + 1)
    return abs(value - Decimal(expected)) <= tolerance


def suite_tools(names: tuple[str, ...] | list[str]) -> list[Tool[..., Any]]:
    """The stock tools called ``names`` (short or stock names), with ``weather``
    (``get_weather``) answering from `FIXED_WEATHER` (no network; the weather cases expect
    its readings).

    The stock tools are imported by module name: foxagent never imports ``foxagent_tools``.

    Raises:
        UserError: a name is not a stock tool.
    """
    stock: Any = importlib.import_module("foxagent_tools")
    tools: list[Tool[..., Any]] = []
    for short in names:
        name = STOCK_NAMES.get(short, short)
        if name == "get_weather":
            weather: Any = importlib.import_module("foxagent_tools.weather")
            tools.append(weather.make_weather_tool(FixedWeather()))
        else:
            tools.append(stock.load_stock_tool(name))
    return tools


class FixedWeather:
    """Stands in for ``OpenMeteoClient``: the same answer shape, readings from `FIXED_WEATHER`."""

    async def current_weather(self, location: str, unit: str = "celsius") -> dict[str, object]:
        """The fixed reading at ``location``, like the real client's (a ``ToolError``, the
        real client's refusal, for a place the table does not hold)."""
        key = _place_key(location)
        found = FIXED_WEATHER.get(key)
        if found is None:
            raise ToolError(f"No place called '{location}' was found.")
        label, celsius, code, description = found
        fahrenheit = unit == "fahrenheit"
        temperature = celsius * 9 / 5 + 32 if fahrenheit else celsius
        return {
            "location": label,
            "temperature": round(temperature, 1),
            "feels_like": round(temperature, 1),
            "unit": "fahrenheit" if fahrenheit else "celsius",
            "humidity_percent": 70,
            "wind_speed": 6.2 if fahrenheit else 10.0,
            "wind_speed_unit": "mph" if fahrenheit else "km/h",
            "weather_code": code,
            "description": description,
        }


def _place_key(location: str) -> str:
    name = re.split(r"[,，、]", _normal(location))[0].strip().casefold().replace("臺", "台")
    for suffix in ("市", "縣"):
        if len(name) > 2 and name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith(" city"):
        name = name[: -len(" city")]
    return name
