"""The public surface: every facade's table, ``__all__`` and type-checking imports agree, every
backend and test double is exported, and the exception tree drawn in ``_exceptions`` is the real
one. (Import layers and cycles are import-linter's job: ``make lint``, contracts in pyproject.)"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import foxagent
from foxagent import _exceptions
from foxagent.models import Model

FACADES = [
    "foxagent",
    "foxagent.models",
    "foxagent.sessions",
    "foxagent.events",
    "foxagent.testing",
]


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions and dunders.
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def _type_checking_imports(module: ModuleType) -> dict[str, str]:
    """Name to module of the imports under ``if TYPE_CHECKING:`` in ``module``'s source."""
    tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module
                for alias in statement.names:
                    # `X as X` is an explicit re-export for type checkers.
                    assert alias.asname == alias.name, f"{module.__name__}: {alias.name}"
                    found[alias.name] = statement.module
    return found


@pytest.mark.parametrize("name", FACADES)
def test_facade_table_all_and_type_checking_imports_agree(name: str) -> None:
    module = importlib.import_module(name)
    exports: dict[str, str] = module._EXPORTS
    public = list(module.__all__)
    assert public == sorted(public, key=_isort_key), f"{name}.__all__ is not sorted"
    assert len(public) == len(set(public))
    assert set(public) - {"__version__"} == set(exports)
    assert _type_checking_imports(module) == exports
    for export, home in exports.items():
        value = getattr(module, export)
        assert value is getattr(importlib.import_module(home), export), f"{name}.{export}"
    assert set(public) <= set(dir(module))


@pytest.mark.parametrize("name", FACADES)
def test_unknown_attribute_raises_attribute_error(name: str) -> None:
    module = importlib.import_module(name)
    with pytest.raises(AttributeError, match=f"module '{name}' has no attribute 'nope'"):
        module.nope  # noqa: B018


def test_events_have_one_home_and_foxagent_re_exports_the_same_objects() -> None:
    import foxagent.events as events

    for name in set(foxagent.__all__) & set(events.__all__):
        assert getattr(foxagent, name) is getattr(events, name)
        assert foxagent._EXPORTS[name] == "foxagent.events"


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_backend_and_test_double_is_exported() -> None:
    import foxagent.models as models
    import foxagent.testing as testing

    for info in pkgutil.iter_modules(models.__path__, "foxagent.models."):
        importlib.import_module(info.name)  # backends import their heavy dependencies lazily
    testing.ScriptedModel  # noqa: B018 - imports the doubles
    for cls in _subclasses(Model):
        if cls.__name__.startswith("_") or not cls.__module__.startswith("foxagent."):
            continue
        home = models if cls.__module__.startswith("foxagent.models") else testing
        assert cls.__name__ in home.__all__, f"{cls.__module__}.{cls.__name__} is not exported"
    assert "LocalGGUFModel" in models.__all__


def _drawn_tree() -> dict[str, str | None]:
    """Class name to its parent's name, as the ``_exceptions`` docstring draws them."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []  # (column, name) of the open branches
    for line in (_exceptions.__doc__ or "").splitlines():
        match = re.match(r"^[\s│├└─]*([A-Z]\w*Error)\b", line)
        if match is None:
            continue
        column, name = match.start(1), match.group(1)
        while stack and stack[-1][0] >= column:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((column, name))
    return parents


def test_the_exception_tree_in_the_docstring_is_the_real_one() -> None:
    drawn = _drawn_tree()
    real = {
        cls.__name__: cls
        for cls in vars(_exceptions).values()
        if inspect.isclass(cls) and issubclass(cls, _exceptions.FoxagentError)
    }
    assert set(drawn) == set(real)
    for name, parent in drawn.items():
        base = real[name].__bases__[0]
        expected = None if real[name] is _exceptions.FoxagentError else base.__name__
        assert parent == expected, f"{name}: drawn under {parent}, really under {expected}"
    assert set(_exceptions.__all__) - {"ArgumentProblem"} == set(real)
    assert all(name in foxagent.__all__ for name in real)


def test_every_exception_belongs_to_a_family() -> None:
    families = (_exceptions.UserError, _exceptions.ToolCallError, _exceptions.RunError)
    for name in _exceptions.__all__:
        cls = getattr(_exceptions, name)
        if cls is _exceptions.FoxagentError or not issubclass(cls, Exception):
            continue
        assert issubclass(cls, families), f"{name} belongs to no family"


def test_importing_foxagent_loads_no_implementation_module() -> None:
    code = (
        "import sys, foxagent, foxagent.models, foxagent.sessions, foxagent.events, "
        "foxagent.testing; "
        "print(sorted(m for m in sys.modules if m.startswith('foxagent.') or m == 'pydantic'))"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(ast.literal_eval(out))
    assert loaded == {
        "foxagent._facade",
        "foxagent.events",
        "foxagent.models",
        "foxagent.sessions",
        "foxagent.testing",
    }


def test_modules_stay_small_and_the_loop_readable() -> None:
    # Issue 13's bar: the loop reads in one sitting, and no module grows past ~800 lines
    # (split it by job instead, as _json_spans was split from _call_syntax).
    package = Path(foxagent.__file__).parent
    sizes = {
        str(path.relative_to(package)): len(path.read_text(encoding="utf-8").splitlines())
        for path in package.rglob("*.py")
    }
    assert sizes["_agent.py"] <= 500
    assert {name: size for name, size in sizes.items() if size > 800} == {}
