"""`foxagent eval --suite local` against FakeVLLMServer, over a tiny stand-in suite.

The stand-in replaces ``foxagent.eval._local_suite`` (the real suite is another module's job,
tested on its own) with the interface the harness relies on: ``LocalCase``,
``load_local_suite`` and ``judge``, and no ``suite_tools``: the stock calculator is loaded.
"""

from __future__ import annotations

import io
import json
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from foxagent.cli import _main
from foxagent.testing import FakeVLLMServer


@dataclass(frozen=True)
class LocalCase:
    id: str
    question: str
    lang: str
    category: str
    tools: tuple[str, ...]
    expect_tool: str | None
    expect_answer: tuple[str, ...]


CASES = [
    LocalCase(
        "a1", "What is 17 * 23?", "en", "arithmetic", ("calculator",), "calculator", ("391",)
    ),
    LocalCase("a2", "6 乘以 7？", "zh-TW", "arithmetic", ("calculator",), "calculator", ("42",)),
    LocalCase("n1", "Tell me a joke", "en", "chat", ("calculator",), None, ("joke",)),
    LocalCase("n2", "你好", "zh-TW", "chat", (), None, ("你好",)),
]


def judge(case: LocalCase, called: list[str], answer: str) -> tuple[bool, str]:
    if any(expected in answer for expected in case.expect_answer):
        return True, "expected answer found"
    return False, f"none of {case.expect_answer} in {answer!r}"


@pytest.fixture
def suite(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("foxagent.eval._local_suite")
    module.LocalCase = LocalCase  # type: ignore[attr-defined]
    module.load_local_suite = lambda: list(CASES)  # type: ignore[attr-defined]
    module.judge = judge  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "foxagent.eval._local_suite", module)
    import foxagent.eval as package

    monkeypatch.setattr(package, "_local_suite", module, raising=False)


def model(body: dict[str, Any]) -> str:
    """Calls the calculator on 17 * 23 (then answers with its result), answers 6 * 7 wrongly
    without a tool, tells a joke, and greets."""
    messages = body["messages"]
    question = next(m["content"] for m in messages if m["role"] == "user")
    results = [m["content"] for m in messages if m["role"] == "tool"]
    if question.startswith("What is 17"):
        if results:
            return f"<answer>17 * 23 = {results[-1]}</answer>"
        return json.dumps({"name": "calculator", "parameters": {"expression": "17*23"}})
    if question.startswith("6 乘以"):
        return "<answer>答案是 294。</answer>"
    if question.startswith("Tell"):
        return "<answer>Here is a joke: ...</answer>"
    return "<answer>你好！</answer>"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeVLLMServer]:
    for name in ("FOXAGENT_BASE_URL", "OPENAI_BASE_URL", "FOXAGENT_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with FakeVLLMServer(model) as fake:
        yield fake


def test_local_suite_report(suite: None, server: FakeVLLMServer, tmp_path: Path) -> None:
    from foxagent.cli._eval import eval_command

    out, err = io.StringIO(), io.StringIO()
    argv = ["eval", "--suite", "local", "--json", "local.json", "--html", "local.html"]
    args = _main._parser().parse_args([*argv, "--base-url", server.base_url])
    assert eval_command(vars(args), out=out, err=err) == 0, err.getvalue()
    report = json.loads((tmp_path / "local.json").read_text())
    cases = {case["id"]: case for case in report["cases"]}
    assert cases["a1"]["right"] is True and cases["a1"]["tool_ok"] is True
    assert cases["a1"]["called"] == ["calculator"] and "391" in cases["a1"]["answer"]
    assert cases["a2"]["right"] is False and cases["a2"]["tool_ok"] is False
    assert cases["n1"]["right"] is True and cases["n1"]["tool_ok"] is True
    assert cases["n2"]["right"] is True
    summary = report["summary"]
    assert summary["arithmetic"]["n"] == 2
    assert summary["arithmetic"]["right_accuracy"] == 0.5
    assert summary["arithmetic"]["tool_choice_accuracy"] == 0.5
    assert summary["chat"]["right_accuracy"] == 1.0
    assert summary["by_lang"]["zh-TW"]["n"] == 2
    assert "latency_ms" in summary["all"]
    assert "tool_choice" in out.getvalue()
    assert 'id="accuracy"' in (tmp_path / "local.html").read_text()
