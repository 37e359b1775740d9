"""Argument validation: what is coerced, and the exact messages for what is refused."""

from __future__ import annotations

import enum
from typing import Any, Literal

import pydantic
import pytest

from foxagent import ToolArgumentsError, tool


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(pydantic.BaseModel):
    city: str
    postcode: str | None = None


@tool
def book(
    city: str,
    nights: int = 1,
    breakfast: bool = False,
    price: float = 0.0,
    guests: list[str] | None = None,
    extras: dict[str, int] | None = None,
    unit: Literal["celsius", "fahrenheit"] = "celsius",
    color: Color = Color.RED,
    address: Address | None = None,
) -> dict[str, Any]:
    """Book a room."""
    return {"city": city, "nights": nights, "breakfast": breakfast, "guests": guests}


@pytest.mark.parametrize(
    ("sent", "coerced"),
    [
        ({"city": "Taipei", "nights": "5"}, {"city": "Taipei", "nights": 5}),
        ({"city": "Taipei", "nights": 5.0}, {"city": "Taipei", "nights": 5}),
        ({"city": "Taipei", "breakfast": "true"}, {"city": "Taipei", "breakfast": True}),
        ({"city": "Taipei", "breakfast": "False"}, {"city": "Taipei", "breakfast": False}),
        ({"city": "Taipei", "price": "12.5"}, {"city": "Taipei", "price": 12.5}),
        (
            {"city": "Taipei", "guests": '["Ann", "李"]'},
            {"city": "Taipei", "guests": ["Ann", "李"]},
        ),
        ({"city": "Taipei", "guests": "Ann"}, {"city": "Taipei", "guests": ["Ann"]}),
        ({"city": "Taipei", "extras": '{"bed": 1}'}, {"city": "Taipei", "extras": {"bed": 1}}),
        ({"city": "Taipei", "unit": "Celsius"}, {"city": "Taipei", "unit": "celsius"}),
        ({"city": "Taipei", "unit": " FAHRENHEIT "}, {"city": "Taipei", "unit": "fahrenheit"}),
        ({"city": "Taipei", "color": "Green"}, {"city": "Taipei", "color": "green"}),
        ({"city": 10023}, {"city": "10023"}),
        ({"city": "Taipei", "nights": None}, {"city": "Taipei"}),
        (
            {"city": "Taipei", "address": {"city": "Hsinchu", "postcode": 300}},
            {"city": "Taipei", "address": {"city": "Hsinchu", "postcode": "300"}},
        ),
        ('{"city": "台北"}', {"city": "台北"}),
    ],
)
def test_clear_mistakes_are_coerced(sent: Any, coerced: dict[str, Any]) -> None:
    assert book.validate_arguments(sent) == coerced


@pytest.mark.parametrize("empty", [None, "", "  ", "null", {}])
def test_empty_arguments_mean_no_arguments(empty: Any) -> None:
    @tool
    def now() -> str:
        """Now."""
        return "now"

    assert now.validate_arguments(empty) == {}


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        ({}, "Invalid arguments for tool 'book': 'city': required argument is missing."),
        (
            {"city": "Taipei", "nights": "five"},
            "Invalid arguments for tool 'book': 'nights': expected an integer, got 'five'.",
        ),
        (
            {"city": "Taipei", "breakfast": "maybe"},
            "Invalid arguments for tool 'book': 'breakfast': expected true or false, got 'maybe'.",
        ),
        (
            {"city": "Taipei", "unit": "kelvin"},
            "Invalid arguments for tool 'book': 'unit': expected one of 'celsius', 'fahrenheit', "
            "got 'kelvin'.",
        ),
        (
            {"city": "Taipei", "color": "blue"},
            "Invalid arguments for tool 'book': 'color': expected one of 'red', 'green', "
            "got 'blue'.",
        ),
        (
            {"city": "Taipei", "guests": [1, {"a": 1}]},
            "Invalid arguments for tool 'book': 'guests.1': expected a string, got {\"a\": 1}.",
        ),
        (
            {"city": "Taipei", "address": {"postcode": "300"}},
            "Invalid arguments for tool 'book': 'address.city': required argument is missing.",
        ),
        (
            {"location": "Taipei"},
            "Invalid arguments for tool 'book': 'city': required argument is missing; "
            "'location': unknown argument (known: city, nights, breakfast, price, guests, extras, "
            "unit, color, address).",
        ),
        (
            "{not json",
            "Invalid arguments for tool 'book': arguments are not valid JSON: '{not json'.",
        ),
        ([1, 2], "Invalid arguments for tool 'book': expected an object of arguments, got [1, 2]."),
        (
            {"city": "x" * 10, "nights": "y" * 100},
            "Invalid arguments for tool 'book': 'nights': expected an integer, got '"
            + "y" * 56
            + "....",
        ),
    ],
)
def test_refusals_name_tool_argument_received_and_expected(sent: Any, message: str) -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        book.validate_arguments(sent)
    assert str(caught.value) == message
    assert caught.value.tool_name == "book"


def test_constraint_violation_message() -> None:
    @tool
    def rate(stars: int = pydantic.Field(ge=1, le=5)) -> int:
        """Rate."""
        return stars

    with pytest.raises(ToolArgumentsError) as caught:
        rate.validate_arguments({"stars": 9})
    assert str(caught.value) == (
        "Invalid arguments for tool 'rate': 'stars': should be less than or equal to 5, got 9."
    )


def test_strict_tool_does_not_coerce() -> None:
    @tool(strict=True)
    def count(n: int) -> int:
        """Count."""
        return n

    assert count.validate_arguments({"n": 3}) == {"n": 3}
    with pytest.raises(ToolArgumentsError, match="'n': expected an integer, got '3'"):
        count.validate_arguments({"n": "3"})


async def test_invoke_passes_python_values_and_keeps_function_defaults() -> None:
    result = await book.invoke({"city": "Taipei", "nights": "2", "guests": '["Ann"]'})
    assert result == {"city": "Taipei", "nights": 2, "breakfast": False, "guests": ["Ann"]}


async def test_invoke_builds_models_and_enums() -> None:
    seen: dict[str, Any] = {}

    @tool
    def paint(color: Color, address: Address) -> None:
        """Paint."""
        seen.update(color=color, address=address)

    await paint.invoke({"color": "GREEN", "address": {"city": "Taipei"}})
    assert seen == {"color": Color.GREEN, "address": Address(city="Taipei")}
