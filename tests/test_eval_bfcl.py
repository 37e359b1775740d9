"""BFCL's data, names, schemas and scoring as foxagent eval uses them.

The scoring test calls BFCL's real checker itself (imported here from the wheel extracted to a
temporary directory, with its model registry stubbed in this test) and compares it with
`foxagent.eval._checker.score` on hand-made outputs: right, wrong value, missing argument,
an extra call, no call, a call on irrelevance.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from foxagent import Toolset
from foxagent._schema_tool import SchemaTool
from foxagent.eval._bfcl_data import CATEGORIES, BFCLCase, load_cases
from foxagent.eval._bfcl_tools import NameMap, StandInTool, json_schema, openai_tools
from foxagent.eval._checker import bfcl_checker, score
from foxagent.eval._wheel import BFCL_WHEEL_SHA256, _sha256, fetch_bfcl_wheel


@pytest.fixture(scope="module")
def wheel() -> Path:
    return fetch_bfcl_wheel()


@pytest.fixture(scope="module")
def cases(wheel: Path) -> dict[str, BFCLCase]:
    return {case.id: case for case in load_cases(wheel, CATEGORIES)}


@pytest.fixture(scope="module")
def real_checker(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """BFCL's ast_checker imported the plain way: extracted files, a registry stub."""
    root = tmp_path_factory.mktemp("bfcl")
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(("bfcl_eval/constants/", "bfcl_eval/eval_checker/ast_eval/")):
                archive.extract(name, root)
            elif name in ("bfcl_eval/__init__.py", "bfcl_eval/eval_checker/__init__.py"):
                archive.extract(name, root)
    before = set(sys.modules)
    registry = types.ModuleType("bfcl_eval.constants.model_config")
    entry = types.SimpleNamespace(underscore_to_dot=False)
    registry.MODEL_CONFIG_MAPPING = {"test/model": entry}  # type: ignore[attr-defined]
    sys.modules["bfcl_eval.constants.model_config"] = registry
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
        language = importlib.import_module("bfcl_eval.constants.enums").Language.PYTHON
        yield lambda case, output: module.ast_checker(
            list(case.functions), output, list(case.ground_truth), language, case.category,
            "test_model",
        )  # fmt: skip
    finally:
        sys.path.remove(str(root))
        for name in set(sys.modules) - before:
            del sys.modules[name]


def test_the_wheel_is_the_pinned_one_and_holds_every_category(
    wheel: Path, cases: dict[str, BFCLCase]
) -> None:
    assert _sha256(wheel) == BFCL_WHEEL_SHA256
    counts = {c: sum(1 for case in cases.values() if case.category == c) for c in CATEGORIES}
    assert counts["simple_python"] == 400 and counts["live_irrelevance"] == 884
    assert all(counts.values())
    assert cases["simple_python_1"].functions[0]["name"] == "math.factorial"
    assert cases["irrelevance_0"].ground_truth is None
    # The checker is imported without touching foxagent's import path or loading any SDK.
    bfcl_checker(wheel)
    assert not any(str(wheel) in entry for entry in sys.path)
    assert "bfcl_eval.constants.model_config" not in sys.modules
    assert "openai" not in sys.modules or "bfcl_eval.model_handler" not in sys.modules


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


HAND_MADE: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("simple_python_1", [call("math.factorial", number=5)], True),
    ("simple_python_1", [call("math.factorial", number=6)], False),  # wrong value
    ("simple_python_1", [call("math.factorial")], False),  # missing argument
    ("simple_python_1", [call("math.factorial", number=5, base=2)], False),  # unknown argument
    ("simple_python_1", [call("math.factorial", number=5)] * 2, False),  # an extra call
    ("simple_python_1", [call("math_factorial", number=5)], False),  # the server's name
    ("simple_python_1", [], False),  # no call
    ("simple_python_0", [call("calculate_triangle_area", base=10, height=5)], True),
    ("simple_python_0", [call("calculate_triangle_area", base=10, height=5, unit="units")], True),
    ("simple_python_0", [call("calculate_triangle_area", base="10", height=5)], False),  # type
    ("simple_python_2", [call("math.hypot", x=4, y=5)], True),
]


@pytest.mark.parametrize(("case_id", "output", "right"), HAND_MADE)
def test_the_score_agrees_with_bfcls_checker(
    wheel: Path,
    cases: dict[str, BFCLCase],
    real_checker: Any,
    case_id: str,
    output: list[dict[str, Any]],
    right: bool,
) -> None:
    case = cases[case_id]
    ours = score(bfcl_checker(wheel), case, output)
    if output:
        theirs = real_checker(case, [{c["name"]: c["arguments"]} for c in output])["valid"]
        assert (ours is None) == theirs
    assert (ours is None) == right, ours


def test_parallel_and_multiple_agree_with_bfcls_checker(
    wheel: Path, cases: dict[str, BFCLCase], real_checker: Any
) -> None:
    checker = bfcl_checker(wheel)
    for case_id in ("parallel_0", "parallel_multiple_0", "multiple_0", "live_parallel_0-0-0"):
        case = cases[case_id]
        expected = [
            {"name": name, "arguments": {k: v[0] for k, v in args.items() if v[0] != ""}}
            for answer in case.ground_truth or ()
            for name, args in answer.items()
        ]
        variants = [expected, list(reversed(expected)), expected[:-1] or [], expected * 2]
        for output in variants:
            ours = score(checker, case, output)
            if output:
                theirs = real_checker(case, [{c["name"]: c["arguments"]} for c in output])
                assert (ours is None) == theirs["valid"], (case_id, output, ours)
        assert score(checker, case, expected) is None
        assert score(checker, case, list(reversed(expected))) is None  # any order


def test_irrelevance_is_right_only_without_a_call(wheel: Path, cases: dict[str, BFCLCase]) -> None:
    checker = bfcl_checker(wheel)
    case = cases["irrelevance_0"]
    name = case.functions[0]["name"]
    assert score(checker, case, []) is None
    assert score(checker, case, [call(name, x=1)]) is not None
    assert score(checker, case, None) is not None  # an unparseable call is still a call
    assert score(checker, cases["simple_python_1"], None) is not None


def test_names_map_to_safe_names_and_back() -> None:
    names = NameMap(["math.factorial", "math_factorial", "a.b-c d", "x" * 70, "ok_name"])
    safe = [names.safe(n) for n in ["math.factorial", "math_factorial", "a.b-c d", "x" * 70]]
    assert len(set(safe)) == 4  # collision-safe: math.factorial does not take math_factorial
    assert names.safe("math_factorial") == "math_factorial"
    assert names.safe("ok_name") == "ok_name"
    for original, mapped in zip(
        ["math.factorial", "math_factorial", "a.b-c d", "x" * 70], safe, strict=True
    ):
        assert jsonschema.validate(mapped, {"pattern": "^[a-zA-Z0-9_-]{1,64}$"}) is None
        assert names.bfcl(mapped) == original
    assert NameMap(["math.factorial"]).safe("math.factorial") == "math_factorial"
    assert names.bfcl("made_up") == "made_up"


def test_every_bfcl_function_becomes_a_valid_schema_foxagent_accepts(
    cases: dict[str, BFCLCase],
) -> None:
    seen: set[str] = set()
    validator = jsonschema.Draft202012Validator
    for case in cases.values():
        names = NameMap(f["name"] for f in case.functions)
        for function, schema in zip(
            case.functions, openai_tools(case.functions, names), strict=True
        ):
            key = json.dumps(function, sort_keys=True)
            if key in seen:  # live categories repeat their functions; each is checked once
                continue
            seen.add(key)
            parameters = schema["function"]["parameters"]
            validator.check_schema(parameters)
            assert parameters["type"] == "object"
    assert len(seen) > 1500
    per_category: dict[str, int] = {}
    for case in cases.values():  # foxagent's own checks (Toolset, SchemaTool) on a sample
        if per_category.setdefault(case.category, 0) >= 25:
            continue
        per_category[case.category] += 1
        names = NameMap(f["name"] for f in case.functions)
        tools = openai_tools(case.functions, names)
        toolset = Toolset(StandInTool(schema) for schema in tools)
        assert [t["function"]["name"] for t in toolset.schemas] == [
            t["function"]["name"] for t in tools
        ]


def test_bfcl_types_become_json_schema_types() -> None:
    schema = json_schema(
        {
            "type": "dict",
            "properties": {
                "a": {"type": "float"},
                "b": {"type": "tuple", "items": {"type": "integer"}},
                "c": {"type": "any"},
                "d": {"type": "dict", "properties": {"e": {"type": "dict", "required": True}}},
                "f": {"type": "array", "items": {"type": "dict", "properties": {}}},
            },
            "required": ["a", "gone"],
        }
    )
    assert schema["properties"]["a"] == {"type": "number"}
    assert schema["properties"]["b"] == {"type": "array", "items": {"type": "integer"}}
    assert schema["properties"]["c"] == {"type": "string"}
    assert schema["properties"]["d"]["properties"]["e"] == {"type": "object"}
    assert schema["properties"]["f"]["items"]["type"] == "object"
    assert schema["required"] == ["a"]
    tool = SchemaTool({"name": "t", "parameters": schema})
    assert tool.validate_arguments({"a": 1.5, "b": [1, 2]}) == {"a": 1.5, "b": [1, 2]}


async def test_a_stand_in_tool_checks_its_arguments_and_returns_a_neutral_result() -> None:
    tool = StandInTool(
        {
            "name": "f",
            "parameters": json_schema({"type": "dict", "properties": {"n": {"type": "integer"}}}),
        }
    )
    assert await tool.invoke({"n": 3}) == '{"status": "ok"}'
    with pytest.raises(Exception, match="unknown argument"):
        await tool.invoke({"n2": 3})
