"""Toolset: explicit collections, clashes, lookup, loading from files, modules and stock names."""

from __future__ import annotations

from pathlib import Path

import pytest

from foxagent import Tool, Toolset, UserError, tool

FIXTURES = Path(__file__).parent / "fixtures"


@tool
def ping() -> str:
    """Answer pong."""
    return "pong"


def test_lookup_order_and_membership() -> None:
    def echo(text: str) -> str:
        """Echo."""
        return text

    tools = Toolset([ping, echo])
    assert tools.names == ["ping", "echo"]
    assert isinstance(tools["echo"], Tool)
    assert "ping" in tools and "pong" not in tools
    assert tools.get("nope") is None
    assert len(tools) == 2
    assert [t["function"]["name"] for t in tools.openai_schemas()] == ["ping", "echo"]
    with pytest.raises(KeyError, match="No tool named 'nope'; tools: ping, echo"):
        tools["nope"]


def test_name_clash_names_both_functions() -> None:
    def other() -> str:
        """Another ping."""
        return ""

    with pytest.raises(UserError) as caught:
        Toolset([ping, tool(name="ping")(other)])
    message = str(caught.value)
    assert "Two tools are named 'ping'" in message
    assert "test_toolset.ping" in message and "other" in message


def test_adding_the_same_tool_twice_is_harmless() -> None:
    assert Toolset([ping, ping]).names == ["ping"]


def test_from_file() -> None:
    tools = Toolset.from_file(FIXTURES / "file_tools.py")
    assert tools.names == ["shout", "whisper"]
    assert tools["shout"]("hi") == "HI"


def test_from_module_and_single_object() -> None:
    assert Toolset.from_module("tests.fixtures.module_tools").names == ["reverse"]
    loaded = Toolset.load(["tests.fixtures.module_tools:plain_function"])
    assert loaded.names == ["plain_function"]
    assert loaded["plain_function"].parameters["required"] == ["n"]


def test_load_merges_specs_in_order() -> None:
    tools = Toolset.load(
        [str(FIXTURES / "file_tools.py"), "tests.fixtures.module_tools", "calculator"]
    )
    assert tools.names == ["shout", "whisper", "reverse", "calculator"]


def test_stock_tools_load_by_name() -> None:
    assert Toolset.stock().names == ["calculator", "get_weather"]
    assert Toolset.load(["stock"]).names == ["calculator", "get_weather"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing_file.py", "Tools file 'missing_file.py' does not exist."),
        (
            "no_such_tool",
            "Unknown tool 'no_such_tool': not a stock tool (stock, calculator, get_weather)",
        ),
        ("no_such_pkg.sub", "Cannot import tools module 'no_such_pkg.sub'"),
        (
            "tests.fixtures.module_tools:missing",
            "Module 'tests.fixtures.module_tools' has no attribute",
        ),
        ("tests.fixtures.module_tools:NOT_A_FUNCTION", "is int, not a tool or a function"),
        ("json", "json defines no tools"),
    ],
)
def test_load_errors_are_user_errors(spec: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        Toolset.load([spec])
    assert message in str(caught.value)


def test_file_that_fails_to_import(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_anywhere\n")
    with pytest.raises(UserError, match=r"broken.py' failed to load: ModuleNotFoundError"):
        Toolset.from_file(broken)


def test_two_files_with_the_same_stem_do_not_collide(tmp_path: Path) -> None:
    for folder, name in (("a", "alpha"), ("b", "beta")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "tools.py").write_text(
            f"from foxagent import tool\n\n@tool\ndef {name}() -> str:\n    '''{name}.'''\n"
            f"    return '{name}'\n"
        )
    first = Toolset.from_file(tmp_path / "a" / "tools.py")
    second = Toolset.from_file(tmp_path / "b" / "tools.py")
    assert (first.names, second.names) == (["alpha"], ["beta"])
    assert (first + second).names == ["alpha", "beta"]
