"""`foxagent batch` on the command line: exit codes, the summary, progress, and a process that
is killed or interrupted mid-job and run again."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foxagent.cli import _batch, _main
from foxagent.testing import FakeVLLMServer, Reply
from tests.conftest import free_port

CALL = '{"name": "calculator", "parameters": {"expression": "6*7"}}'
REPO = Path(__file__).resolve().parent.parent


def reply_for(body: dict[str, Any]) -> Reply | str:
    last = body["messages"][-1]
    if last["role"] == "tool":
        return f"<answer>{last['content']}</answer>"
    question = str(last["content"])
    if question == "fail":
        return Reply(status=400, text="this question is refused")
    if question == "calc":
        return CALL
    if question.startswith("slow"):
        return Reply(text=f"<answer>ANS:{question}</answer>", delay=0.1)
    return f"<answer>ANS:{question}</answer>"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeVLLMServer]:
    for name in ("FOXAGENT_BASE_URL", "OPENAI_BASE_URL", "FOXAGENT_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOXAGENT_API_KEY", "sk-batch")
    monkeypatch.chdir(tmp_path)  # no stray pyproject.toml from the repo
    with FakeVLLMServer(reply_for, api_key="sk-batch") as fake:
        yield fake


def batch(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = _main._parser().parse_args(["batch", *argv])
    code = _batch.batch_command(vars(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def questions(path: Path, texts: list[str]) -> str:
    rows = [json.dumps({"id": f"q{n}", "question": text}) for n, text in enumerate(texts)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def answers(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_all_answered_exits_0_with_the_summary_on_stdout(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    source = questions(tmp_path / "q.jsonl", ["calc", "你好"])
    code, out, err = batch(
        source, "-o", "a.jsonl", "--base-url", server.base_url, "--tools", "calculator"
    )
    assert code == 0, err
    assert f"foxagent batch: using the server at {server.base_url}" in err
    rows = {row["id"]: row for row in answers(tmp_path / "a.jsonl")}
    assert rows["q0"]["answer"] == "42" and rows["q0"]["tool_calls"][0]["name"] == "calculator"
    assert rows["q1"]["answer"] == "ANS:你好"
    assert out.startswith("foxagent batch: a.jsonl\n")
    assert "  questions   2\n" in out and "  answered    2\n" in out and "  errors      0\n" in out
    assert "in 3 requests" in out and "questions/s)" in out


def test_an_error_line_exits_1_and_the_summary_counts_it_by_type(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    source = questions(tmp_path / "q.jsonl", ["fine", "fail"])
    code, out, _ = batch(source, "-o", "a.jsonl", "--base-url", server.base_url, "--json")
    assert code == 1
    summary = json.loads(out)
    assert summary["output"] == "a.jsonl"
    assert (summary["answered"], summary["errors"], summary["ok"]) == (
        1,
        {"ModelHTTPError": 1},
        False,
    )
    # Run again: nothing is asked, and the earlier error still decides the exit code.
    before = len(server.requests)
    code, out, err = batch(source, "-o", "a.jsonl", "--base-url", server.base_url)
    assert code == 1 and len(server.requests) == before
    assert "2 already answered, skipped" not in err  # nothing to run: no start line
    assert "(2 already answered, skipped)" in out
    assert "earlier     1: ModelHTTPError 1 (--retry-errors asks them again)" in out


def test_bad_input_lines_exit_2_naming_their_line_numbers(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    (tmp_path / "q.jsonl").write_text(
        '{"id": 1, "question": "ok"}\nnot json\n{"id": 1, "question": "dup"}\n', encoding="utf-8"
    )
    code, out, err = batch("q.jsonl", "-o", "a.jsonl", "--base-url", server.base_url, "--json")
    assert code == 2
    assert "line 2: not JSON" in err and "line 3: id 1 again (first on line 1)" in err
    assert json.loads(out)["error"]["type"] == "BatchInputError"
    assert server.requests == [] and not (tmp_path / "a.jsonl").exists()


def test_an_unreachable_server_exits_3_before_any_question(tmp_path: Path) -> None:
    source = questions(tmp_path / "q.jsonl", ["a", "b"])
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, _, err = batch(source, "-o", str(tmp_path / "a.jsonl"), "--base-url", url)
    assert code == 3
    assert "cannot connect to" in err and "connection refused" in err and "nothing was asked" in err
    assert (tmp_path / "a.jsonl").read_text() == ""  # not 2 connection-error lines


def test_progress_lines_on_stderr_when_it_is_not_a_terminal(
    server: FakeVLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_batch, "PROGRESS_INTERVAL", 0.0)
    source = questions(tmp_path / "q.jsonl", ["a", "b", "c"])
    code, _, err = batch(
        source, "-o", "a.jsonl", "--base-url", server.base_url, "--concurrency", "1"
    )
    assert code == 0
    lines = [line for line in err.splitlines() if " done " in line]
    assert [line.split()[2] for line in lines] == ["1/3", "2/3", "3/3"]
    assert "\r" not in err


def test_the_bar_on_a_terminal_is_redrawn_in_place() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = _batch._Progress(stream)
    summary = _batch.BatchSummary(questions=4, answered=2, errors={"StepLimitError": 1})
    progress(summary)
    progress.close()
    drawn = stream.getvalue()
    assert drawn.startswith("\r\x1b[2K  [") and "3/4" in drawn and "1 errors" in drawn
    assert "█" * 18 + "░" * 6 in drawn and drawn.endswith("\n")


def _start(source: str, output: Path, url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FOXAGENT_API_KEY": "sk-batch", "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "foxagent", "batch", source, "-o", str(output)]
    argv += ["--base-url", url, "--concurrency", "4", "--tools", "calculator"]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_lines(process: subprocess.Popen[bytes], output: Path, count: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if output.exists() and output.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"no {count} lines: {process.poll()}, {process.stderr}")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["killed", "ctrl-c"])
def test_a_stopped_process_resumes_without_duplicates_or_repeated_requests(
    server: FakeVLLMServer, tmp_path: Path, stop: signal.Signals
) -> None:
    texts = [f"slow {n}" for n in range(40)]
    source = questions(tmp_path / "q.jsonl", texts)
    output = tmp_path / "a.jsonl"
    process = _start(source, output, server.base_url)
    _wait_for_lines(process, output, 8)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=30)
    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert b"run the same command again to resume" in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    done = [row["id"] for row in answers(output)]
    assert 8 <= len(done) < 40 and len(set(done)) == len(done)

    first = len(server.requests)
    code, out, _ = batch(
        source, "-o", str(output), "--base-url", server.base_url, "--concurrency", "8"
    )
    assert code == 0
    again = sorted(r["messages"][-1]["content"] for r in server.requests[first:])
    assert again == sorted(f"slow {n}" for n in range(40) if f"q{n}" not in done)
    final = [row["id"] for row in answers(output)]
    assert sorted(final) == sorted(f"q{n}" for n in range(40))
    assert f"({len(done)} already answered, skipped)" in out
