"""What a new user meets first (issue 16, items 2-7): the default server, stdout, errors, input
checks, --version. The terminal itself (spinner, prompt, Ctrl-C, --stream) is in test_cli_pty."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foxagent import Agent, __version__, cli
from foxagent._environment import DEFAULT_BASE_URL, DEFAULT_PORT
from foxagent._exceptions import ModelHTTPError
from foxagent.cli import _backend, _main
from foxagent.cli._config import RunConfig
from foxagent.cli._exit import ExitCode
from foxagent.cli._run import _local_advice, run_command
from foxagent.cli._serve import ServeOptions
from foxagent.models.vllm import VLLMModel, resolve_endpoint
from foxagent.testing import FakeVLLMServer
from tests.conftest import free_port

ANSWER = (
    "<count>1</count><step>計算 6*7。</step><reflection>正確。</reflection><reward>0.9</reward>"
    "<answer>答案是 42。</answer><reflection>好。</reflection><reward>0.95</reward>"
)
CALL = '{"name": "calculator", "parameters": {"expression": "6*7"}}'


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing configured: no FOXAGENT_*/OPENAI_* variables, no config file."""
    for name in (
        "FOXAGENT_BASE_URL",
        "OPENAI_BASE_URL",
        "FOXAGENT_API_KEY",
        "OPENAI_API_KEY",
        "FOXAGENT_MODEL",
        "OPENAI_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def server(clean: None) -> Iterator[FakeVLLMServer]:
    with FakeVLLMServer() as fake:
        yield fake


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_command(vars(_main._parser().parse_args(["run", *argv])), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --- item 2: one default server address -----------------------------------------------------


def test_one_default_address_everywhere(clean: None) -> None:
    assert DEFAULT_PORT == 8883  # FoxBrain's guide's tested command
    assert DEFAULT_BASE_URL == "http://127.0.0.1:8883/v1"
    assert VLLMModel().base_url == DEFAULT_BASE_URL  # Agent() and foxagent run
    assert Agent(tools=[]).model.base_url == DEFAULT_BASE_URL  # type: ignore[attr-defined]
    assert resolve_endpoint(None, None)[0] == DEFAULT_BASE_URL  # foxagent doctor
    serve = vars(_main._parser().parse_args(["serve", "/m"]))
    assert serve["port"] == DEFAULT_PORT
    assert ServeOptions(model_path="/m", chat_template=Path("t")).port == DEFAULT_PORT


def test_nothing_configured_uses_a_server_at_the_default_address(
    server: FakeVLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_backend, "DEFAULT_BASE_URL", server.base_url)  # stands in for :8883
    server.add("<answer>在。</answer>")
    code, out, err = run("在嗎？")
    assert (code, out) == (0, "在。\n")
    assert err.splitlines()[0] == f"foxagent run: using the vLLM server at {server.base_url}"
    assert server.requests[-1]["messages"][-1]["content"] == "在嗎？"


def test_the_probe_is_quick_and_says_why_there_is_no_server() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    assert _backend.probe(url, None) == "connection refused"
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        assert _backend.probe(f"http://127.0.0.1:{port}/v1", None) == "no answer within 0.5 s"
    assert time.monotonic() - started < 2.5
    choice = _backend.choose_backend(
        flag_url=None,
        configured_url=None,
        config_source="defaults",
        model_file=None,
        context_size=None,
        api_key=None,
        default_url=url,
    )
    assert choice.local
    assert choice.line.startswith(f"no server at {url} (connection refused); using the embedded")


def test_the_probe_counts_a_server_that_wants_a_key_and_not_a_stranger(clean: None) -> None:
    with FakeVLLMServer(api_key="sk-other") as fake:
        assert _backend.probe(fake.base_url, None) is None  # 401: a server; the run says why
        assert _backend.probe(fake.base_url, "sk-other") is None
        stranger = fake.base_url.removesuffix("/v1") + "/elsewhere"
        assert "not a model list" in str(_backend.probe(stranger, "sk-other"))


def test_a_configured_url_is_used_without_a_probe_and_named(server: FakeVLLMServer) -> None:
    server.add("<answer>ok</answer>")
    code, _, err = run("hi", "--base-url", server.base_url)
    assert code == 0
    assert (
        err.splitlines()[0]
        == f"foxagent run: using the server at {server.base_url} (from --base-url)"
    )
    assert [r.get("messages") is not None for r in server.requests] == [True]


# --- item 3: stdout is the answer alone -----------------------------------------------------


def test_a_tagged_answer_gives_stdout_the_answer_and_steps_puts_the_view_on_stderr(
    server: FakeVLLMServer,
) -> None:
    server.add(CALL, ANSWER, CALL, ANSWER)
    code, out, err = run("6*7?", "--base-url", server.base_url)
    assert (code, out) == (0, "答案是 42。\n") and "解析後的回應" not in err
    code, out, err = run("6*7?", "--base-url", server.base_url, "--steps")
    assert (code, out) == (0, "答案是 42。\n")
    assert "=== 解析後的回應 ===" in err and "📋 步驟:" in err and "⭐ 質量評分:" in err


def test_json_output_is_unchanged(server: FakeVLLMServer) -> None:
    server.add(CALL, ANSWER)
    code, out, _ = run("6*7?", "--base-url", server.base_url, "--json")
    document = json.loads(out)
    assert code == 0 and document["answer"] == "答案是 42。"
    assert set(document) == {"answer", "parsed", "tool_calls", "usage", "timings", "steps"}


def test_help_documents_where_the_structured_view_went(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--steps also print FoxBrain's structured view" in text
    assert "stdout always carries the answer alone" in text


# --- item 5: errors that name the right thing -----------------------------------------------


def test_a_base_url_without_v1_says_so(server: FakeVLLMServer) -> None:
    url = server.base_url.removesuffix("/v1")
    code, _, err = run("hi", "--base-url", url)
    assert code == ExitCode.MODEL
    assert f"{url} answered HTTP 404" in err and f"try --base-url {url}/v1" in err
    assert "Check --model" not in err


def test_doctor_says_so_too(server: FakeVLLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.base_url.removesuffix("/v1")
    assert cli.main(["doctor", "--base-url", url]) == ExitCode.FAILED
    out = capsys.readouterr().out
    assert "no OpenAI API at that path" in out and f"--base-url {url}/v1" in out
    port = free_port()
    assert cli.main(["doctor", "--base-url", f"http://127.0.0.1:{port}/v1"]) == ExitCode.FAILED
    assert "connection refused" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "kind", "code"),
    [
        (
            [
                "--base-url",
                "http://127.0.0.1:{port}/v1",
                "--model",
                "m",
                "--request-timeout",
                "0.2",
            ],
            "ModelConnectionError",
            3,
        ),
        (["--max-tokens", "0"], "UserError", 2),
        (["--tools", "no_such_tool"], "UserError", 2),
    ],
    ids=["unreachable", "max-tokens", "tools"],
)
def test_json_errors_are_one_object_on_stdout(
    clean: None, argv: list[str], kind: str, code: int
) -> None:
    argv = [word.format(port=free_port()) for word in argv]
    exit_code, out, err = run("hi", "--json", *argv)
    assert exit_code == code
    document = json.loads(out)
    assert set(document) == {"error"}
    assert document["error"]["type"] == kind and document["error"]["exit_code"] == code
    assert document["error"]["message"] and document["error"]["message"] in err


def test_a_json_usage_error_from_argparse_is_json_too(
    capsys: pytest.CaptureFixture[str], clean: None
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "hi", "--json", "--max-tokens", "many"])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error == {
        "type": "UsageError",
        "message": "argument --max-tokens: invalid int value: 'many'",
        "exit_code": 2,
    }
    assert "usage: foxagent run" in captured.err


# --- item 6: input checks -------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_an_empty_question_is_a_usage_error_and_not_sent(
    server: FakeVLLMServer, question: str
) -> None:
    code, out, err = run(question, "--base-url", server.base_url)
    assert (code, out) == (ExitCode.USAGE, "")
    assert "the question is empty. Usage: foxagent run [options] QUESTION" in err
    assert server.requests == []


@pytest.mark.parametrize("tokens", ["0", "-5"])
def test_max_tokens_below_one_is_a_usage_error(server: FakeVLLMServer, tokens: str) -> None:
    code, _, err = run("hi", "--base-url", server.base_url, "--max-tokens", tokens)
    assert code == ExitCode.USAGE and "--max-tokens must be at least 1" in err
    assert server.requests == [] and "using the server" not in err  # refused before anything


def test_max_tokens_from_a_config_file_is_checked_too(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    (tmp_path / "foxagent.toml").write_text(f'base_url = "{server.base_url}"\nmax_tokens = 0\n')
    code, _, err = run("hi")
    assert code == ExitCode.USAGE and "got 0" in err


def test_model_file_with_base_url_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], clean: None, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "hi", "--model-file", "m.gguf", "--base-url", "http://x/v1"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    # The handler refuses it too, when called with a plain dict.
    out, err = io.StringIO(), io.StringIO()
    flags: dict[str, Any] = {"question": "hi", "model_file": "m.gguf", "base_url": "http://x/v1"}
    assert run_command(flags, out=out, err=err) == ExitCode.USAGE
    assert (
        "--model-file is for the embedded local model and --base-url for a server" in err.getvalue()
    )
    code, _, err_text = run("hi", "--context-size", "8192", "--base-url", "http://x/v1")
    assert code == ExitCode.USAGE and "--context-size is for the embedded local model" in err_text


def test_context_size_reaches_the_local_model(clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from foxagent.cli import _run
    from foxagent.models.local import LocalGGUFModel

    model_file = Path("model.gguf")
    model_file.write_bytes(b"GGUF")
    backend = _backend.choose_backend(
        flag_url=None,
        configured_url=None,
        config_source="defaults",
        model_file=str(model_file),
        context_size=8192,
        api_key=None,
    )
    assert backend.line == "using the local model file model.gguf (context 8192 tokens)"
    model = _run._local_model(backend, io.StringIO())
    assert isinstance(model, LocalGGUFModel) and model.context == 8192


def test_a_question_past_the_local_context_says_so_in_tokens() -> None:
    refusal = ModelHTTPError(
        400,
        "request (5122 tokens) exceeds the available context size (4096 tokens), try increasing it",
    )
    advice = _local_advice(refusal, RunConfig())
    assert "the question is too long for the embedded model" in advice
    assert "5122 tokens" in advice and "context is 4096 tokens" in advice
    assert "--context-size 8192" in advice  # room for the request and a 2048-token reply
    assert "server's log" not in advice


# --- item 7: --version ----------------------------------------------------------------------


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "foxagent", "--version"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, f"foxagent {__version__}\n")


# --- item 4: what --stream lets through, however the reply is cut ---------------------------

STREAMED = (
    '<count>2</count>\n<step>先算 if a < b: x<y。<|python_tag|>{"name": "calculator", '
    '"parameters": {"expression": "17*23 } ]"}}</step>\n<answer>答案是 391。</answer><|eot_id|>'
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAMED)])
def test_the_stream_filter_drops_tags_tokens_and_calls_wherever_the_pieces_are_cut(
    size: int,
) -> None:
    from foxagent.cli._stream import StreamFilter

    stream = StreamFilter()
    segments = []
    for start in range(0, len(STREAMED), size):
        segments += stream.feed(STREAMED[start : start + size])
    segments += stream.end()
    text: dict[str, str] = {}
    for where, piece in segments:
        text[where] = text.get(where, "") + piece
    assert text == {
        "count": "2",
        "text": "\n\n",
        "step": "先算 if a < b: x<y。",
        "answer": "答案是 391。",
    }
    calls = StreamFilter()
    shown = calls.feed('Sure. [{"name": "f", "parameters": {}}] Done. {"answer": 1}') + calls.end()
    assert "".join(piece for _, piece in shown) == 'Sure.  Done. {"answer": 1}'
