"""Schemas built by @tool: one exact expected schema per supported type."""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Any, Literal, Optional

import pydantic
import pytest
from typing_extensions import NotRequired, TypedDict, Unpack

from foxagent import Tool, ToolContext, tool


def params(t: Tool[..., Any]) -> dict[str, Any]:
    return t.parameters


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(pydantic.BaseModel):
    city: str = pydantic.Field(description="City name")
    postcode: str | None = None


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Person(TypedDict):
    name: str
    age: int


class Options(TypedDict):
    query: str
    limit: NotRequired[int]


class Tree(pydantic.BaseModel):
    value: int
    children: list[Tree] = []


def test_scalars_and_defaults() -> None:
    @tool
    def f(s: str, i: int, x: float, b: bool, n: int = 3, flag: bool = False) -> None:
        """Scalars."""

    assert params(f) == {
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "x": {"type": "number"},
            "b": {"type": "boolean"},
            "n": {"default": 3, "type": "integer"},
            "flag": {"default": False, "type": "boolean"},
        },
        "required": ["s", "i", "x", "b"],
        "type": "object",
    }
    assert f.openai_schema() == {
        "type": "function",
        "function": {"name": "f", "description": "Scalars.", "parameters": params(f)},
    }


def test_optional_both_spellings_become_nullable_types() -> None:
    @tool
    def f(a: Optional[int] = None, b: str | None = None, c: int | None = 5) -> None:  # noqa: UP045
        """Optional."""

    assert params(f)["properties"] == {
        "a": {"type": ["integer", "null"], "default": None},
        "b": {"type": ["string", "null"], "default": None},
        "c": {"type": ["integer", "null"], "default": 5},
    }
    assert "required" not in params(f)


def test_literal_and_enum_keep_their_values() -> None:
    @tool
    def f(unit: Literal["celsius", "fahrenheit"] = "celsius", color: Color = Color.RED) -> None:
        """Enums."""

    assert params(f)["properties"] == {
        "unit": {"default": "celsius", "enum": ["celsius", "fahrenheit"], "type": "string"},
        "color": {"enum": ["red", "green"], "type": "string", "default": "red"},
    }


def test_optional_enum_admits_null_in_its_enum() -> None:
    @tool
    def f(color: Color | None = None) -> None:
        """Nullable enum."""

    assert params(f)["properties"]["color"] == {
        "enum": ["red", "green", None],
        "type": ["string", "null"],
        "default": None,
    }


def test_containers() -> None:
    @tool
    def f(tags: list[str], scores: dict[str, int], pair: tuple[int, str]) -> None:
        """Containers."""

    assert params(f)["properties"] == {
        "tags": {"items": {"type": "string"}, "type": "array"},
        "scores": {"additionalProperties": {"type": "integer"}, "type": "object"},
        "pair": {
            "maxItems": 2,
            "minItems": 2,
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "type": "array",
        },
    }


def test_models_dataclasses_and_typeddicts_are_inlined_without_titles() -> None:
    @tool
    def f(address: Address, point: Point, person: Person, home: Address | None = None) -> None:
        """Structured."""

    assert params(f)["properties"] == {
        "address": {
            "properties": {
                "city": {"description": "City name", "type": "string"},
                "postcode": {"type": ["string", "null"], "default": None},
            },
            "required": ["city"],
            "type": "object",
        },
        "point": {
            "properties": {"x": {"type": "number"}, "y": {"default": 0.0, "type": "number"}},
            "required": ["x"],
            "type": "object",
        },
        "person": {
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
            "type": "object",
        },
        "home": {
            "properties": {
                "city": {"description": "City name", "type": "string"},
                "postcode": {"type": ["string", "null"], "default": None},
            },
            "required": ["city"],
            "type": ["object", "null"],
            "default": None,
        },
    }
    assert "$defs" not in params(f)
    assert "title" not in repr(params(f))


def test_recursive_model_keeps_only_its_own_definition() -> None:
    @tool
    def f(tree: Tree) -> None:
        """Recursive."""

    schema = params(f)
    assert schema["properties"]["tree"] == {"$ref": "#/$defs/Tree"}
    assert schema["$defs"] == {
        "Tree": {
            "properties": {
                "value": {"type": "integer"},
                "children": {"default": [], "items": {"$ref": "#/$defs/Tree"}, "type": "array"},
            },
            "required": ["value"],
            "type": "object",
        }
    }


def test_annotated_field_description_and_constraints() -> None:
    @tool
    def f(
        n: Annotated[int, pydantic.Field(description="How many", ge=1, le=10)] = 1,
        q: Annotated[str, pydantic.Field(description="From Field")] = "",
    ) -> None:
        """Annotated.

        Args:
            q: From the docstring, loses to Field.
        """

    assert params(f)["properties"] == {
        "n": {
            "default": 1,
            "description": "How many",
            "maximum": 10,
            "minimum": 1,
            "type": "integer",
        },
        "q": {"default": "", "description": "From Field", "type": "string"},
    }


def test_explicit_title_survives() -> None:
    @tool
    def f(q: Annotated[str, pydantic.Field(title="Query")]) -> None:
        """Titled."""

    assert params(f)["properties"]["q"] == {"title": "Query", "type": "string"}


def test_context_parameter_is_not_in_the_schema() -> None:
    @tool
    def f(city: str, ctx: ToolContext) -> str:
        """Context."""
        return ctx.run_id

    assert params(f) == {
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "type": "object",
    }


def test_no_parameters() -> None:
    @tool
    def now() -> str:
        """Current time."""
        return ""

    assert params(now) == {"properties": {}, "type": "object"}


def test_unannotated_parameter_with_simple_default_is_inferred() -> None:
    @tool
    def f(city: str, unit="celsius", days=3) -> None:  # type: ignore[no-untyped-def]
        """Inferred."""

    assert params(f)["properties"]["unit"] == {"default": "celsius", "type": "string"}
    assert params(f)["properties"]["days"] == {"default": 3, "type": "integer"}


def test_unpacked_typeddict_kwargs_become_parameters() -> None:
    @tool
    def search(**kwargs: Unpack[Options]) -> dict[str, Any]:
        """Search."""
        return dict(kwargs)

    assert params(search) == {
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer"},
        },
        "required": ["query"],
        "type": "object",
    }


def test_decorator_options_and_plain_call() -> None:
    @tool(name="get-weather", description="Weather now.", timeout=2.5, strict=True)
    def weather(city: str) -> str:
        """Ignored docstring."""
        return f"sunny in {city}"

    assert weather.name == "get-weather"
    assert weather.description == "Weather now."
    assert weather.timeout == 2.5
    assert weather.strict is True
    assert weather("Taipei") == "sunny in Taipei"
    assert weather.__name__ == "weather"
    assert (
        repr(weather) == "Tool(name='get-weather', function=" + weather.function.__qualname__ + ")"
    )


async def test_async_tool_stays_async_when_called_directly() -> None:
    @tool
    async def fetch(n: int) -> int:
        """Fetch."""
        return n * 2

    assert fetch.is_async
    assert await fetch(4) == 8
    assert await fetch.invoke({"n": "5"}) == 10


@pytest.mark.parametrize("name", ["", "has space", "1starts_with_digit", "x" * 65])
def test_bad_tool_names_are_refused(name: str) -> None:
    from foxagent import UserError

    def f() -> None:
        """F."""

    with pytest.raises(UserError, match="is not usable"):
        tool(name=name)(f)


async def test_unpacked_kwargs_receive_only_what_was_sent() -> None:
    @tool
    def search(**kwargs: Unpack[Options]) -> dict[str, Any]:
        """Search."""
        return dict(kwargs)

    assert await search.invoke({"query": "fox"}) == {"query": "fox"}
    assert await search.invoke({"query": "fox", "limit": "2"}) == {"query": "fox", "limit": 2}
