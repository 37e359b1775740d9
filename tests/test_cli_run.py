"""`foxagent run` end to end against FakeVLLMServer: output, --json, config sources, exit codes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from foxagent._prompts import DEFAULT_SYSTEM_PROMPT
from foxagent.cli import _main
from foxagent.testing import FakeVLLMServer, Reply
from tests.conftest import free_port

ANSWER = (
    "<count>1</count><step>計算 6*7。</step><reflection>正確。</reflection><reward>0.9</reward>"
    "<answer>答案是 42。</answer><reflection>好。</reflection><reward>0.95</reward>"
)
CALL = '{"name": "calculator", "parameters": {"expression": "6*7"}}'


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeVLLMServer]:
    for name in ("FOXAGENT_BASE_URL", "OPENAI_BASE_URL", "FOXAGENT_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOXAGENT_API_KEY", "sk-cli-secret")
    monkeypatch.chdir(tmp_path)  # no stray pyproject.toml from the repo
    with FakeVLLMServer(api_key="sk-cli-secret") as fake:
        yield fake


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    from foxagent.cli._run import run_command

    args = _main._parser().parse_args(["run", *argv])
    code = run_command(vars(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_stdout_is_the_answer_alone_and_progress_goes_to_stderr(server: FakeVLLMServer) -> None:
    server.add(CALL, ANSWER)
    code, out, err = run("6 乘以 7 是多少？", "--base-url", server.base_url)
    assert code == 0
    assert out == "答案是 42。\n"  # `ans=$(foxagent run ...)` gets the answer, no decoration
    assert "===" not in err  # the structured view only with --steps
    assert "· step 1: asking the model" in err
    assert '↳ calculator({"expression": "6*7"}) ok in' in err and ": 42" in err
    assert server.requests[0]["messages"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    assert [t["function"]["name"] for t in server.requests[0]["tools"]] == [
        "calculator",
        "get_weather",
    ]


def test_json_output(server: FakeVLLMServer) -> None:
    server.add(CALL, ANSWER)
    code, out, _ = run("6*7?", "--base-url", server.base_url, "--json", "--tools", "calculator")
    assert code == 0
    document = json.loads(out)
    assert document["answer"] == "答案是 42。"
    assert document["parsed"]["complete"] is True
    assert document["tool_calls"][0]["name"] == "calculator"
    assert document["tool_calls"][0]["result"] == "42"
    assert document["usage"]["total"]["total_tokens"] > 0
    assert document["steps"] == 2
    assert set(document["timings"]) == {"total", "model", "tools", "overhead"}


def test_settings_from_pyproject_and_env_flags_win(
    server: FakeVLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.foxagent]\nbase_url = "{server.base_url}"\ntools = ["calculator"]\n'
        'max_tokens = 300\ntemperature = 0.1\nsystem_prompt = "@prompt.txt"\n'
    )
    (tmp_path / "prompt.txt").write_text("你是 FoxBrain。")
    server.add("<answer>ok</answer>")
    code, _, _ = run("hi", "--temperature", "0.9")
    assert code == 0
    body = server.requests[0]
    assert body["max_tokens"] == 300 and body["temperature"] == 0.9
    assert body["messages"][0] == {"role": "system", "content": "你是 FoxBrain。"}
    assert [t["function"]["name"] for t in body["tools"]] == ["calculator"]


def test_no_system_prompt_and_env_url(
    server: FakeVLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOXAGENT_BASE_URL", server.base_url)
    server.add("plain reply")
    code, out, _ = run("hi", "--no-system-prompt")
    assert (code, out) == (0, "plain reply\n")
    assert server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]


def test_unreachable_server_exit_3(server: FakeVLLMServer) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, _, err = run("hi", "--base-url", url, "--model", "foxbrain")
    assert code == 3
    last = err.splitlines()[-1]
    assert last.startswith(f"foxagent run: cannot connect to {url}: connection refused — is the")
    assert "foxagent serve" in last and "ClientConnectorError" not in last


def test_wrong_key_exit_4_without_leaking_it(server: FakeVLLMServer) -> None:
    code, _, err = run("hi", "--base-url", server.base_url, "--api-key", "sk-wrong-123")
    assert code == 4
    assert "Check --api-key / FOXAGENT_API_KEY" in err
    assert "sk-wrong-123" not in err


def test_server_error_exit_4(server: FakeVLLMServer) -> None:
    server.add(Reply(status=400, text="context too long"))
    code, _, err = run("hi", "--base-url", server.base_url)
    assert code == 4 and "context too long" in err


def test_step_limit_exit_5(server: FakeVLLMServer) -> None:
    server.add(CALL, '{"name": "calculator", "parameters": {"expression": "1+1"}}')
    code, _, err = run("loop", "--base-url", server.base_url, "--max-steps", "2")
    assert code == 5 and "Raise --max-steps" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tools", "no_such_tool"], "Unknown tool 'no_such_tool'"),
        (["--max-steps", "0"], "--max-steps must be at least 1"),
        (["--system-prompt", "@missing.txt"], "Cannot read the system prompt file missing.txt"),
    ],
)
def test_usage_errors_exit_2(server: FakeVLLMServer, argv: list[str], message: str) -> None:
    code, _, err = run("hi", "--base-url", server.base_url, *argv)
    assert code == 2 and message in err


def test_bad_config_file_exit_2(server: FakeVLLMServer, tmp_path: Path) -> None:
    (tmp_path / "foxagent.toml").write_text('api_key = "nope"\n')
    code, _, err = run("hi")
    assert code == 2 and "unknown setting(s) api_key" in err


def test_tools_from_a_file_and_streaming(server: FakeVLLMServer) -> None:
    fixtures = Path(__file__).parent / "fixtures" / "file_tools.py"
    server.add(
        '<count>1</count><step>{"name": "shout", "parameters": {"text": "hi"}}</step>', ANSWER
    )
    code, out, err = run(
        "shout hi", "--base-url", server.base_url, "--tools", str(fixtures), "--stream"
    )
    assert code == 0
    assert server.requests[0]["stream"] is True
    assert [t["function"]["name"] for t in server.requests[0]["tools"]] == ["shout", "whisper"]
    assert '↳ shout({"text": "hi"}) ok' in err and ": HI" in err
    assert "  📋 計算 6*7。\n" in err  # streamed text is shown live, without its tags
    assert "<count>" not in err and "<step>" not in err and '"name"' not in err
    assert out == "答案是 42。\n"


@pytest.mark.parametrize(
    ("flag", "sent"),
    [
        ("required", "required"),
        ("calculator", {"type": "function", "function": {"name": "calculator"}}),
    ],
)
def test_tool_choice_flag_forces_the_first_request(
    server: FakeVLLMServer, flag: str, sent: object
) -> None:
    server.add(CALL, ANSWER)
    code, out, _ = run("6*7?", "--base-url", server.base_url, "--tool-choice", flag)
    assert code == 0 and "答案是 42。" in out
    assert [r["tool_choice"] for r in server.requests] == [sent, "auto"]


def test_tool_choice_flag_names_an_unknown_tool(server: FakeVLLMServer) -> None:
    code, _, err = run(
        "hi", "--base-url", server.base_url, "--tools", "calculator", "--tool-choice", "weather"
    )
    assert code == 2
    assert "--tool-choice 'weather' is neither auto, required, none nor a loaded tool" in err
    assert "(loaded: calculator)" in err and server.requests == []


@pytest.mark.parametrize(("typed", "ran"), [("y\n", True), ("n\n", False), ("", False)])
def test_a_tool_that_needs_approval_is_asked_about_on_the_terminal(
    server: FakeVLLMServer, monkeypatch: pytest.MonkeyPatch, typed: str, ran: bool
) -> None:
    fixtures = Path(__file__).parent / "fixtures" / "approval_tools.py"
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    server.add('{"name": "delete_file", "parameters": {"path": "a.txt"}}', ANSWER)
    code, out, err = run("刪掉 a.txt", "--base-url", server.base_url, "--tools", str(fixtures))
    assert code == 0 and "答案是 42。" in out
    assert 'delete_file({"path": "a.txt"}) needs your approval. Run it? [y/N]' in err
    sent = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    expected = (
        "deleted a.txt" if ran else "Error: The user did not approve the call to 'delete_file'."
    )
    assert sent == [expected]
