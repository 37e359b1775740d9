"""A griffe extension: an ``Example:`` section is read as Google's ``Examples:`` section.

foxagent's docstrings follow Google's style, which spells the section both ways. griffe's
Google parser knows only ``Examples:`` as doctest examples and renders ``Example:`` as an
admonition, where ``>>>`` lines become nested block quotes. This extension renames the section
in the loaded docstrings (not in the source), so both render as code.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_EXAMPLE = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(Extension):
    """Rename ``Example:`` to ``Examples:`` in every docstring griffe loads."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None and "Example:" in obj.docstring.value:
            obj.docstring.value = _EXAMPLE.sub(r"\g<indent>Examples:", obj.docstring.value)
