"""LaTeX that JSON (or Python) decoding turned into control characters, restored.

A model writing ``{"expression": "\\frac{1}{2} + \\beta"}`` with *single* backslashes writes
valid JSON that means something else: ``\\f`` is a form feed, ``\\b`` a backspace, ``\\t`` a
tab (``\\r``, ``\\n`` likewise), so the decoded value is ``"\\x0crac{1}{2} + \\x08eta"``.
Nothing fails, so no repair runs; the tool gets garbage. The same happens to the string
literals of a pythonic call (``calculator(expression="\\frac{1}{2}")``).

`restore_latex` puts the backslash back where a control character stands right before the rest
of a LaTeX command name (``\\x0c`` + ``rac`` is ``\\frac``). Only these are restored:

* form feed and backspace before a command name from `_COMMANDS` (a tool argument has no use
  for either character, so the pair is LaTeX whatever else the string holds);
* tab, carriage return and newline before a command name, only when the string shows LaTeX
  elsewhere too (a backslash, ``$``, ``^``, ``_`` or ``{``): a real tab before "times" in a
  table must stay a tab.

A command name must end where the letters end (``\\t`` + ``heta`` restores ``\\theta``, but
``\\t`` + ``hetas`` stays). The scan is one regex pass per string, linear in its length.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["restore_latex"]

# Command names by the escape letter JSON turned into a control character (the rest of the name
# follows the control character). Names that are common English words after a line break
# ("right", "not", "to") are left out of the newline and tab lists.
_COMMANDS: Final = {
    "\x0c": (
        "frac",
        "forall",
        "flat",
        "frown",
        "footnote",
        "framebox",
        "fbox",
    ),
    "\x08": (
        "beta",
        "bar",
        "bf",
        "binom",
        "big",
        "bigg",
        "bigl",
        "bigr",
        "biggl",
        "biggr",
        "boldsymbol",
        "bmod",
        "bot",
        "backslash",
        "bullet",
        "begin",
        "boxed",
        "bigcup",
        "bigcap",
        "bigoplus",
        "bigotimes",
        "bigwedge",
        "bigvee",
        "because",
        "bmatrix",
        "brace",
        "bracket",
    ),
    "\t": (
        "theta",
        "times",
        "tau",
        "tan",
        "tanh",
        "text",
        "textbf",
        "textit",
        "textrm",
        "tfrac",
        "tilde",
        "triangle",
        "therefore",
        "top",
        "tbinom",
        "textstyle",
    ),
    "\r": ("rho", "rangle", "rceil", "rfloor", "rightarrow", "rbrace", "rVert", "rvert"),
    "\n": ("nabla", "neq", "notin", "neg", "nu", "ni", "nmid", "nleq", "ngeq", "newline"),
}
_ALWAYS: Final = "\x0c\x08"


def _pattern(chars: str) -> re.Pattern[str]:
    alternatives = []
    for char in chars:
        names = sorted((name[1:] for name in _COMMANDS[char]), key=len, reverse=True)
        alternatives.append(f"{re.escape(char)}(?:{'|'.join(names)})")
    return re.compile(f"(?:{'|'.join(alternatives)})(?![A-Za-z])")


_STRONG: Final = _pattern(_ALWAYS)
_ALL: Final = _pattern("".join(_COMMANDS))
_LATEX_SIGN: Final = re.compile(r"[\\$^_{]")
_CONTROL: Final = re.compile("[\x08\x0c\t\r\n]")
_ESCAPE_LETTER: Final = {"\x0c": "f", "\x08": "b", "\t": "t", "\r": "r", "\n": "n"}
_MAX_DEPTH: Final = 64


def _restore_text(text: str) -> str:
    if not _CONTROL.search(text):
        return text
    pattern = _ALL if _LATEX_SIGN.search(text) else _STRONG
    return pattern.sub(lambda m: "\\" + _ESCAPE_LETTER[m[0][0]] + m[0][1:], text)


def restore_latex(value: Any, depth: int = 0) -> tuple[Any, bool]:
    """``value`` with LaTeX command names restored in every string, and whether any changed.

    Dicts and lists are walked (keys too) down to 64 levels; a value without a changed string
    is returned as the same object.
    """
    if isinstance(value, str):
        restored = _restore_text(value)
        return restored, restored != value
    if depth >= _MAX_DEPTH:
        return value, False
    if isinstance(value, dict):
        changed = False
        items = []
        for key, item in value.items():
            new_key, key_changed = restore_latex(key, depth + 1)
            new_item, item_changed = restore_latex(item, depth + 1)
            changed = changed or key_changed or item_changed
            items.append((new_key, new_item))
        return (dict(items), True) if changed else (value, False)
    if isinstance(value, (list, tuple)):
        results = [restore_latex(item, depth + 1) for item in value]
        if any(changed for _, changed in results):
            items_restored = [item for item, _ in results]
            return (tuple(items_restored) if isinstance(value, tuple) else items_restored), True
        return value, False
    return value, False
