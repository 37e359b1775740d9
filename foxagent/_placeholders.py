"""Placeholders are not values: a call whose argument only stands in for one is refused.

Models that do not know a value often write a stand-in, and JSON repair can turn a lost value
into ``null`` or ``""``. Running such a call (``send_email(to="<recipient>")``,
``get_weather(location="?")``) is worse than not calling at all. So before an argument is
validated, recovery asks `placeholder_problem`, and a call with a stand-in is refused with a
reason the model can act on: name the argument, and say to ask the user for the value.

What counts as a stand-in (the whole string, after trimming blanks; case does not matter):

* question marks or dots only: ``?``, ``??``, ``...``, ``…``;
* ``TODO``, ``TBD``, ``FIXME``, ``placeholder``, ``unknown`` or ``N/A``;
* a name in angle, double curly or square brackets: ``<value>``, ``<city name>``,
  ``{{email}}``, ``[recipient]``, ``[INSERT CITY]``. Up to 40 characters, letters, digits,
  ``_``, ``-`` and blanks only; ``<b>`` inside longer text is fine;
* ``null`` or an empty string for a *required* argument (a value the call cannot go without
  is missing).

Lists and objects are searched too, down to `_MAX_DEPTH` levels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["placeholder_problem"]

_MAX_DEPTH = 8
_STAND_IN_WORDS = frozenset({"todo", "tbd", "fixme", "placeholder", "unknown", "n/a"})
_ONLY_MARKS = re.compile(r"[?？.…。]+")
_BRACKETED = re.compile(r"<[\w\- ]{1,40}>|\{\{[\w\- ]{1,40}\}\}|\[[\w\- ]{1,40}\]")
# The first characters `_ONLY_MARKS` and `_BRACKETED` can match, so most values skip both.
_STAND_IN_STARTS = frozenset("?？.…。<{[")
_LONGEST_WORD = max(map(len, _STAND_IN_WORDS))


def placeholder_problem(tool: str, schema: Mapping[str, Any], arguments: Any) -> str | None:
    """Why ``arguments`` for ``tool`` hold a stand-in instead of a value, or ``None``."""
    if not isinstance(arguments, Mapping):
        return None
    required = schema.get("required") or ()
    for key, value in arguments.items():
        if key in required and (value is None or (isinstance(value, str) and not value.strip())):
            shown = "null" if value is None else "empty"
            return (
                f"Tool '{tool}': the required argument '{key}' is {shown}. Call it again with "
                "its real value, or ask the user for it."
            )
        found = _stand_in(value, 0)
        if found is not None:
            return (
                f"Tool '{tool}': argument '{key}' holds a placeholder ({found!r}), not a value. "
                "Call it again with the real value, or ask the user for it."
            )
    return None


def _stand_in(value: Any, depth: int) -> str | None:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[0] in _STAND_IN_STARTS:  # marks only, or a name in brackets
            marked = bool(_ONLY_MARKS.fullmatch(text) or _BRACKETED.fullmatch(text))
        else:  # lower() never shortens a text: a longer one is no word
            marked = len(text) <= _LONGEST_WORD and text.lower() in _STAND_IN_WORDS
        return text if marked else None
    if depth >= _MAX_DEPTH:
        return None
    items = value.values() if isinstance(value, Mapping) else value
    if isinstance(value, (Mapping, list, tuple)):
        for item in items:
            found = _stand_in(item, depth + 1)
            if found is not None:
                return found
    return None
