"""Reading a tool's description and parameter descriptions from its docstring.

We use ``docstring_parser`` rather than griffe: it is a small pure-Python package with no
dependencies that parses a docstring *string* (no source files or module loading needed, so it
works on functions defined in notebooks, ``exec``-ed files and closures), and its ``AUTO`` style
tries Google, NumPy, Sphinx (reST) and Epydoc and keeps the reading that found the most, which is
the auto-detection we need.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

import docstring_parser

__all__ = ["DocInfo", "parse_docstring"]


@dataclass(frozen=True, slots=True)
class DocInfo:
    """What a docstring says about a tool.

    Attributes:
        description: the summary plus the long description, without the parameter sections.
        params: parameter name → its description.
    """

    description: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> DocInfo:
    """Split a docstring (any of Google, NumPy or Sphinx style) into description and params."""
    if not doc or not doc.strip():
        return DocInfo()
    text = inspect.cleandoc(doc)
    try:
        parsed = docstring_parser.parse(text, style=docstring_parser.DocstringStyle.AUTO)
    except docstring_parser.ParseError:
        # A docstring that none of the styles can read is still a fine description.
        return DocInfo(description=text)
    parts = [p for p in (parsed.short_description, parsed.long_description) if p]
    # A summary wrapped over two lines is one paragraph, not a summary plus a body.
    separator = "\n\n" if parsed.blank_after_short_description else "\n"
    params = {
        p.arg_name.lstrip("*"): _one_line(p.description)
        for p in parsed.params
        if p.description and p.description.strip()
    }
    return DocInfo(description=_reflow(separator.join(parts)), params=params)


_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s")


def _reflow(text: str) -> str:
    """Undo the docstring's hard line wrapping: the model reads paragraphs, not source lines.

    Lists keep one item per line; paragraphs stay separated by a blank line.
    """
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        if any(_LIST_ITEM.match(line) for line in lines):
            paragraphs.append("\n".join(lines))
        else:
            paragraphs.append(" ".join(lines))
    return "\n\n".join(p for p in paragraphs if p)


def _one_line(text: str | None) -> str:
    # Parameter descriptions wrapped over several docstring lines read as one sentence.
    return " ".join((text or "").split())
