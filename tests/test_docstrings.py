"""Descriptions from Google, NumPy and Sphinx docstrings, detected automatically."""

from __future__ import annotations

import pytest

from foxagent import tool


def google(location: str, unit: str = "celsius") -> str:
    """Get the current weather.

    Looks the place up first.

    Args:
        location: City name, in any language,
            for example 台北.
        unit: Temperature unit.

    Returns:
        A short report.
    """
    return location


def numpy(location: str, unit: str = "celsius") -> str:
    """Get the current weather.

    Looks the place up first.

    Parameters
    ----------
    location : str
        City name, in any language,
        for example 台北.
    unit : str
        Temperature unit.

    Returns
    -------
    str
        A short report.
    """
    return location


def sphinx(location: str, unit: str = "celsius") -> str:
    """Get the current weather.

    Looks the place up first.

    :param location: City name, in any language,
        for example 台北.
    :param unit: Temperature unit.
    :returns: A short report.
    """
    return location


@pytest.mark.parametrize("function", [google, numpy, sphinx], ids=["google", "numpy", "sphinx"])
def test_three_styles_give_the_same_tool(function: object) -> None:
    t = tool(function)  # type: ignore[call-overload]
    assert t.description == "Get the current weather.\n\nLooks the place up first."
    assert t.parameters["properties"] == {
        "location": {
            "description": "City name, in any language, for example 台北.",
            "type": "string",
        },
        "unit": {"default": "celsius", "description": "Temperature unit.", "type": "string"},
    }


def test_no_docstring_gives_empty_description() -> None:
    def bare(x: int) -> int:
        return x

    t = tool(bare)
    assert t.description == ""
    assert t.parameters["properties"] == {"x": {"type": "integer"}}


def test_plain_prose_docstring_is_the_description() -> None:
    def prose(x: int) -> int:
        """Double a number, which is useful
        when you need twice as much."""
        return 2 * x

    assert (
        tool(prose).description == "Double a number, which is useful when you need twice as much."
    )


def test_wrapped_paragraphs_are_reflowed_and_lists_kept() -> None:
    def wrapped() -> None:
        """Summary line.

        A long paragraph wrapped
        over two lines.

        - first item
        - second item
        """

    assert tool(wrapped).description == (
        "Summary line.\n\nA long paragraph wrapped over two lines.\n\n- first item\n- second item"
    )


def test_undocumented_parameter_has_no_description() -> None:
    def partly(a: int, b: int) -> int:
        """Add.

        Args:
            a: First.
        """
        return a + b

    assert tool(partly).parameters["properties"]["b"] == {"type": "integer"}
