"""Signatures foxagent cannot express are refused when decorated, naming function and parameter."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from foxagent import UserError, tool


class Opaque:
    """A class pydantic knows nothing about."""


def varargs(*numbers: int) -> int:
    return sum(numbers)


def untyped_kwargs(**options: Any) -> None:
    return None


def missing_annotation(city, unit: str = "c") -> None:  # type: ignore[no-untyped-def]
    return None


def opaque_type(thing: Opaque) -> None:
    return None


def unresolvable(thing: DoesNotExist) -> None:  # type: ignore[name-defined] # noqa: F821
    return None


def untyped_object_default(options=None) -> None:  # type: ignore[no-untyped-def]
    return None


@pytest.mark.parametrize(
    ("function", "pattern"),
    [
        (varargs, r"test_user_errors\.varargs: parameter '\*numbers' cannot be a tool argument"),
        (
            untyped_kwargs,
            r"test_user_errors\.untyped_kwargs: parameter '\*\*options' accepts anything",
        ),
        (missing_annotation, r"missing_annotation: parameter 'city' has no type annotation"),
        (opaque_type, r"opaque_type: parameter 'thing' has type .*Opaque.*cannot turn into a JSON"),
        (unresolvable, r"Cannot read the signature of .*unresolvable: name 'DoesNotExist'"),
        (untyped_object_default, r"untyped_object_default: parameter 'options' has no type"),
    ],
)
def test_inexpressible_signatures_raise_user_error(
    function: Callable[..., Any], pattern: str
) -> None:
    with pytest.raises(UserError) as caught:
        tool(function)
    assert re.search(pattern, str(caught.value)), str(caught.value)


def test_not_a_function() -> None:
    with pytest.raises(UserError, match="@tool needs a function, got 42"):
        tool(42)  # type: ignore[call-overload]
