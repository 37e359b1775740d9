"""One docstring markup throughout: Google-style sections with Markdown code spans.

Sphinx/reST roles (``:class:`X```, ``:func:`f```...) render as literal noise in Markdown-based
references (mkdocstrings) and in editors' hovers, so they are refused here, like pydantic-ai's
hook does. Write `Name` or ``Name`` instead; sections are ``Args:``, ``Returns:``, ``Raises:``,
``Attributes:``, ``Example:`` (Google style), never reST field lists (``:param x:``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "foxagent").rglob("*.py"), *(ROOT / "tools").rglob("*.py")])
REST_ROLE = re.compile(r":(?:class|func|mod|data|meth|attr|exc|obj|ref|py:\w+):`")
REST_FIELD = re.compile(r"^\s*:(?:param|type|returns?|rtype|raises?)\b[^:]*:", re.MULTILINE)


def _docstrings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and (
            text := ast.get_docstring(node, clean=False)
        ):
            line = node.body[0].lineno if node.body else 1
            found.append((line, text))
    return found


def _violations(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for line, text in _docstrings(path):
        for pattern, what in ((REST_ROLE, "reST role"), (REST_FIELD, "reST field list")):
            for match in pattern.finditer(text):
                problems.append(f"{path.relative_to(root)}:{line}: {what} {match.group(0)!r}")
    return problems


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docstrings_use_google_sections_and_markdown(path: Path) -> None:
    assert _violations(path) == []


def test_the_rule_catches_what_it_is_meant_to(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""See :class:`~foxagent.Agent`."""\n\n'
        "def f(x):\n"
        '    """Do it.\n\n    :param x: the thing\n    """\n',
        encoding="utf-8",
    )
    found = _violations(sample, root=tmp_path)
    assert len(found) == 2 and "reST role" in found[0] and "reST field list" in found[1]
