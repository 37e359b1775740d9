"""`foxagent eval --suite bfcl` end to end against FakeVLLMServer, scripted by a function.

The fake model answers each BFCL case by a rule of the test: BFCL's expected call as the server
parses it (right everywhere), the same call in Python syntax, which vLLM's llama3_json parser
leaves as text (raw wrong, foxagent's recovery right), a wrong value (wrong everywhere), or
text on irrelevance (right everywhere). For parallel cases it sends the first expected call
only, then the second one after the stand-in result: wrong on the first reply, right for the
whole run. The accuracies the report gives must be the ones those rules imply, and a second
run must resume without asking the model again.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foxagent.cli import _main
from foxagent.eval._bfcl_data import BFCLCase, load_cases, select
from foxagent.eval._bfcl_tools import NameMap
from foxagent.eval._evaluate import cases_path
from foxagent.eval._wheel import fetch_bfcl_wheel
from foxagent.testing import FakeVLLMServer

CATEGORIES = ("simple_python", "parallel", "irrelevance")
LIMIT = 3
SEED = 7
ANSWER = "<answer>Done.</answer>"


@pytest.fixture(scope="module")
def wheel() -> Path:
    return fetch_bfcl_wheel()  # pip download once into the cache, sha256-checked


@pytest.fixture(scope="module")
def chosen(wheel: Path) -> list[BFCLCase]:
    return select(load_cases(wheel, CATEGORIES), LIMIT, SEED)


def expected_calls(case: BFCLCase) -> list[tuple[str, dict[str, Any]]]:
    """BFCL's first accepted value of each argument (optional ones left out)."""
    calls = []
    for answer in case.ground_truth or ():
        ((name, arguments),) = answer.items()
        chosen = {key: values[0] for key, values in arguments.items() if values[0] != ""}
        calls.append((name, chosen))
    return calls


def plan(case: BFCLCase, position: int) -> str:
    """How the fake model answers ``case`` (the ``position``-th of its category)."""
    if case.category == "irrelevance":
        return "text"
    if case.category == "parallel":
        return "one_at_a_time"
    return ("right", "pythonic", "wrong_value")[position % 3]


def json_call(name: str, arguments: dict[str, Any]) -> str:
    return json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)


def pythonic(name: str, arguments: dict[str, Any]) -> str:
    return f"[{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})]"


class Script:
    """The fake model: finds the case by its question, answers by its plan."""

    def __init__(self, cases: list[BFCLCase]) -> None:
        self.by_question: dict[str, tuple[BFCLCase, str]] = {}
        position: dict[str, int] = {}
        for case in cases:
            index = position.get(case.category, 0)
            position[case.category] = index + 1
            self.by_question[case.question] = (case, plan(case, index))

    def __call__(self, body: dict[str, Any]) -> str:
        messages = body["messages"]
        question = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        case, how = self.by_question[question]
        names = NameMap(function["name"] for function in case.functions)
        calls = [(names.safe(name), args) for name, args in expected_calls(case)]
        done = sum(1 for m in messages if m["role"] == "tool")
        if how == "text":
            return "I cannot help with that using the available functions."
        if how == "one_at_a_time":
            return json_call(*calls[done]) if done < len(calls) else ANSWER
        if done:
            return ANSWER
        name, arguments = calls[0]
        if how == "right":
            return json_call(name, arguments)
        if how == "pythonic":
            return pythonic(name, arguments)
        first = next(iter(arguments))
        return json_call(name, {**arguments, first: "WRONG-VALUE"})


@pytest.fixture
def server(
    chosen: list[BFCLCase], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[FakeVLLMServer]:
    for name in ("FOXAGENT_BASE_URL", "OPENAI_BASE_URL", "FOXAGENT_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray pyproject.toml settings
    with FakeVLLMServer(Script(chosen)) as fake:
        yield fake


def run_eval(*argv: str) -> tuple[int, str, str]:
    from foxagent.cli._eval import eval_command

    out, err = io.StringIO(), io.StringIO()
    args = _main._parser().parse_args(["eval", *argv])
    code = eval_command(vars(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_scores_are_what_the_script_implies_and_a_rerun_resumes(
    server: FakeVLLMServer, chosen: list[BFCLCase], tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    argv = [
        "--suite", "bfcl", "--categories", *CATEGORIES, "--limit", str(LIMIT),
        "--seed", str(SEED), "--concurrency", "3", "--json", str(report_path),
        "--html", str(tmp_path / "report.html"), "--base-url", server.base_url,
        "--no-system-prompt",
    ]  # fmt: skip
    code, out, err = run_eval(*argv)
    assert code == 0, err
    assert "foxagent eval: using the server at" in err
    assert f"foxagent eval: {len(chosen)}/{len(chosen)} cases" in err  # the progress line
    assert "simple_python" in out and "foxagent" in out  # the table on stdout

    report = json.loads(report_path.read_text())
    cases = {case["id"]: case for case in report["cases"]}
    assert list(cases) == [case.id for case in chosen]
    required = {"id", "category", "raw_calls", "foxagent_calls", "raw_ok", "foxagent_ok"}
    required |= {"repairs", "latency_ms", "run_calls", "run_ok"}
    script = Script(chosen)
    for case in chosen:
        record = cases[case.id]
        assert required <= set(record), record
        assert "error" not in record, record
        how = script.by_question[case.question][1]
        expected = {
            "right": (True, True, True),
            "pythonic": (False, True, True),
            "wrong_value": (False, False, False),
            "text": (True, True, True),
            "one_at_a_time": (False, False, True),
        }[how]
        got = (record["raw_ok"], record["foxagent_ok"], record["run_ok"])
        assert got == expected, (how, record)
        if how in ("right", "pythonic"):
            (name, arguments), *_ = expected_calls(case)
            assert record["foxagent_calls"][0]["name"] == name  # BFCL's (dotted) name
            assert record["foxagent_calls"][0]["arguments"] == arguments
        if how == "pythonic":
            assert record["raw_calls"] == []
            # Found in the text; decided from the generated tokens, where vLLM's parse had none.
            assert record["repairs"] == {"content:pythonic": 1, "generated_text": 1}
        if how == "one_at_a_time":
            assert len(record["run_calls"]) == len(case.ground_truth or ())
        for call in record["raw_calls"] + record["foxagent_calls"] + record["run_calls"]:
            assert set(call) >= {"name", "arguments"}

    summary = report["summary"]
    simple = summary["simple_python"]
    assert simple["n"] == LIMIT
    assert (simple["raw_right"], simple["foxagent_right"], simple["run_right"]) == (1, 2, 2)
    assert summary["parallel"]["raw_accuracy"] == 0.0
    assert summary["parallel"]["run_accuracy"] == 1.0
    assert summary["irrelevance"]["foxagent_accuracy"] == 1.0
    assert summary["all"]["repairs"]["content:pythonic"] == 1
    for key in ("latency_ms", "model_ms", "tools_ms", "framework_ms", "tokens"):
        assert key in simple
    assert simple["tokens"]["completion"] > 0
    assert report["meta"]["bfcl_wheel_sha256"]

    # Resume: every case is in the JSON lines, so no model request is made again.
    lines = cases_path(report_path).read_text().splitlines()
    assert len(lines) == len(chosen)
    asked = len(server.requests)
    code, _, err = run_eval(*argv)
    assert code == 0, err
    assert len(server.requests) == asked
    assert f"{len(chosen)} of {len(chosen)} cases already done" in err
    assert json.loads(report_path.read_text())["summary"] == summary


def test_an_interrupted_run_asks_only_for_the_cases_left(
    server: FakeVLLMServer, chosen: list[BFCLCase], tmp_path: Path
) -> None:
    report_path = tmp_path / "r.json"
    argv = [
        "--categories", "simple_python", "--limit", str(LIMIT), "--seed", str(SEED),
        "--json", str(report_path), "--base-url", server.base_url, "--no-system-prompt",
    ]  # fmt: skip
    assert run_eval(*argv)[0] == 0
    lines = cases_path(report_path).read_text().splitlines()
    # As if killed after the first case was written, mid-way through the second line.
    cases_path(report_path).write_text(lines[0] + "\n" + lines[1][:20])
    before = len(server.requests)
    assert run_eval(*argv)[0] == 0
    simple = [c for c in chosen if c.category == "simple_python"]
    # The two cases left, each a call then an answer (or a single reply for the wrong value).
    asked = server.requests[before:]
    questions = {next(m["content"] for m in r["messages"] if m["role"] == "user") for r in asked}
    assert questions == {case.question for case in simple[1:]}
    report = json.loads(report_path.read_text())
    assert [c["id"] for c in report["cases"]] == [c.id for c in simple]


def test_no_server_reply_is_exit_3_and_the_cases_are_retried_later(
    chosen: list[BFCLCase], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    argv = ["--categories", "irrelevance", "--limit", str(LIMIT), "--seed", str(SEED)]
    argv += ["--json", "x.json"]
    code, _, err = run_eval(*argv, "--base-url", url, "--request-timeout", "0.5")
    assert code == 3, err
    records = [
        json.loads(line) for line in cases_path(tmp_path / "x.json").read_text().splitlines()
    ]
    assert all("error" in r and r["replied"] is False for r in records)
    with FakeVLLMServer(Script(chosen)) as fake:
        code, _, err = run_eval(*argv, "--base-url", fake.base_url)
    assert code == 0, err
    assert len(fake.requests) == LIMIT  # every case asked again: none had a reply


def test_usage_errors() -> None:
    assert run_eval("--limit", "0")[0] == 2
    code, _, err = run_eval("--categories", "nonsense", "--base-url", "http://127.0.0.1:9/v1")
    assert code == 2 and "unknown BFCL category nonsense" in err
