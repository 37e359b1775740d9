"""The package's public surface: __all__ matches what is exported, and modules import one way."""

from __future__ import annotations

import ast
from pathlib import Path

import foxagent

PACKAGE = Path(foxagent.__file__).parent


def test_all_is_sorted_and_matches_exports() -> None:
    assert len(foxagent.__all__) == len(set(foxagent.__all__))
    for name in foxagent.__all__:
        assert getattr(foxagent, name) is not None
    assert set(foxagent.__all__) - {"__version__"} == set(foxagent._HOMES)
    for name, home in foxagent._HOMES.items():
        value = getattr(foxagent, name)
        if hasattr(value, "__module__") and not isinstance(value, str):
            assert value.__module__ == f"foxagent.{home}", name


def test_unknown_attribute_raises_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        foxagent.nope  # noqa: B018


def test_leaf_modules_import_nothing_from_foxagent() -> None:
    for leaf in ("_exceptions.py", "_answer.py", "_vllm_llama3_json.py"):
        path = PACKAGE / leaf
        if not path.exists():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        inside = {m for m in imported if m.startswith("foxagent") and m != "foxagent._exceptions"}
        assert not inside, f"{leaf} imports {inside}"


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = "foxagent." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("foxagent.")
        }
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        assert node not in visiting, f"import cycle: {' -> '.join([*trail, node])}"
        if node in done:
            return
        visiting.add(node)
        for target in graph.get(node, ()):
            visit(target, [*trail, node])
        visiting.discard(node)
        done.add(node)

    for module in graph:
        if module != "foxagent":
            visit(module, [])


def test_models_package_exports_every_backend() -> None:
    import foxagent.models as models

    for name in models.__all__:
        assert getattr(models, name).__name__ == name
