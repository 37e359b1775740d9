"""`foxagent serve --dry-run`, `foxagent doctor` against FakeVLLMServer, `foxagent template`."""

from __future__ import annotations

import io
import shlex
import socket
import sys
from pathlib import Path

import pytest

from foxagent import cli
from foxagent.cli import _main
from foxagent.cli._server import doctor_command, serve_command, template_command
from foxagent.testing import FakeVLLMServer, Reply


def call(handler: object, *argv: str) -> tuple[int, str, str]:
    words = list(argv)
    extra = words[words.index("--") + 1 :] if "--" in words else []
    words = words[: words.index("--")] if "--" in words else words
    flags = vars(_main._parser().parse_args(words)) | {"extra": extra}
    out, err = io.StringIO(), io.StringIO()
    code = handler(flags, out=out, err=err)  # type: ignore[operator]
    return code, out.getvalue(), err.getvalue()


def test_serve_dry_run_is_the_guides_tested_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOXAGENT_API_KEY", "sk-serve-secret")
    code, out, _ = call(
        serve_command,
        "serve",
        "/models/FoxBrain",
        "--tensor-parallel-size",
        "2",
        "--dry-run",
        "--",
        "--enforce-eager",
    )
    assert code == 0
    assert "sk-serve-secret" not in out
    words = shlex.split(out)
    assert words[0] == "VLLM_API_KEY=***"
    assert words[1:4] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    flags = " ".join(words[4:])
    for expected in (
        "--model /models/FoxBrain",
        "--host 127.0.0.1",
        "--port 8883",
        "--dtype auto",
        "--enable-auto-tool-choice",
        "--tool-call-parser llama3_json",
        "--max-model-len 32768",
        "--tensor-parallel-size 2",
        "--gpu-memory-utilization 0.97",
        "--enforce-eager",
    ):
        assert expected in flags
    template = words[words.index("--chat-template") + 1]
    assert Path(template).name == "llama31_chattemplate.jinja" and Path(template).is_file()


def test_serve_warns_on_public_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOXAGENT_API_KEY", raising=False)
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    code, out, err = call(serve_command, "serve", "/m", "--host", "0.0.0.0", "--dry-run")
    assert code == 0 and "exposes the server" in err and not out.startswith("VLLM_API_KEY")


def test_serve_without_vllm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    code, _, err = call(serve_command, "serve", "/m")
    assert code == 2 and "pip install 'foxagent[vllm]'" in err


def test_arguments_after_dashes_are_only_for_serve() -> None:
    with pytest.raises(SystemExit):
        cli.main(["tools", "--", "x"])


@pytest.mark.parametrize("parser_on", [True, False])
def test_doctor_with_and_without_tool_parsing(parser_on: bool) -> None:
    script = ['{"name": "ping", "parameters": {}}']
    with FakeVLLMServer(
        script if parser_on else [], api_key="sk-doc", tool_parser=parser_on
    ) as server:
        url = server.base_url
        code, out, _ = call(doctor_command, "doctor", "--base-url", url, "--api-key", "sk-doc")
        probe = server.requests[0]
    assert f"✓ server reachable: {url} answers" in out
    assert "✓ model: serving 'foxbrain', max_model_len=32768" in out
    assert probe["tools"][0]["function"]["name"] == "ping" and probe["tool_choice"] == "auto"
    if parser_on:
        assert (
            "✓ auto tool choice (llama3_json parser): on: the probe came back as a call to ping"
            in out
        )
    else:
        assert "✗ auto tool choice (llama3_json parser): off" in out
        assert (
            "fix: restart vLLM with --enable-auto-tool-choice --tool-call-parser llama3_json" in out
        )
    assert "? chat template: not checked" in out
    assert code == 1  # the template could not be confirmed (and the parser is off in one case)


def test_doctor_unreachable_and_bad_key() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, _ = call(doctor_command, "doctor", "--base-url", f"http://127.0.0.1:{port}/v1")
    assert code == 1 and "✗ server reachable" in out and "fix: start vLLM" in out
    with FakeVLLMServer(api_key="sk-right") as server:
        code, out, _ = call(
            doctor_command, "doctor", "--base-url", server.base_url, "--api-key", "sk-wrong"
        )
    assert code == 1 and "HTTP 401: key refused" in out and "sk-wrong" not in out


def test_template_path_and_show() -> None:
    code, out, _ = call(template_command, "template", "path")
    path = Path(out.strip())
    assert code == 0 and path.is_file() and path.suffix == ".jinja"
    code, shown, _ = call(template_command, "template", "show")
    assert shown == path.read_text(encoding="utf-8")


OTHER_TEMPLATE = (
    "{{ bos_token }}<|start_header_id|>system<|end_header_id|>\n\n"
    "{% if tools %}Environment: ipython\n{% endif %}{% for m in messages %}"
    "<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endfor %}"
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("foxagent", "✓ chat template: foxagent's Llama 3.1 template is in use"),
        ("other", "✗ chat template: a Llama 3.1 tool template, not foxagent's"),
        ("plain", "✗ chat template: tools are not rendered Llama 3.1 style"),
    ],
)
def test_doctor_recognises_the_servers_template(template: str, expected: str) -> None:
    from foxagent._templates import template_path

    text = {
        "foxagent": template_path().read_text(encoding="utf-8"),
        "other": OTHER_TEMPLATE,
        "plain": "{% for m in messages %}{{ m.content }}{% endfor %}",
    }[template]
    script = ['{"name": "ping", "parameters": {}}']
    with FakeVLLMServer(script, chat_template=text) as server:
        code, out, _ = call(doctor_command, "doctor", "--base-url", server.base_url)
    assert expected in out
    assert code == (0 if template == "foxagent" else 1)


@pytest.mark.parametrize(
    ("reply", "line"),
    [
        (
            Reply(text='{"name": "paint", "parameters": {"colour": "red"}}'),
            "✓ strict tools: honoured: asked for purple",
        ),
        (
            Reply(text='{"name": "paint", "parameters": {"colour": "purple"}}'),
            "✗ strict tools: ignored: the arguments broke",
        ),
        (
            Reply(status=500, text="xgrammar failed"),
            "✗ strict tools: a strict tool made the server fail (HTTP 500; vLLM #53745)",
        ),
    ],
)
def test_doctor_strict_probes_whether_strict_tools_are_honoured(reply: Reply, line: str) -> None:
    script = ['{"name": "ping", "parameters": {}}', reply]
    with FakeVLLMServer(script, api_key="sk-doc") as server:
        url = server.base_url
        argv = ["doctor", "--base-url", url, "--api-key", "sk-doc", "--strict"]
        code, out, _ = call(doctor_command, *argv)
        probe = server.requests[-1]
    assert line in out
    assert probe["tools"][0]["function"]["strict"] is True
    assert probe["tool_choice"] == {"type": "function", "function": {"name": "paint"}}
    if line.startswith("✗"):
        assert "fix: leave ModelSettings.strict_tools off on this server" in out
    assert code == 1  # the template check cannot pass on the fake


def test_doctor_sends_no_strict_probe_unless_asked() -> None:
    with FakeVLLMServer(['{"name": "ping", "parameters": {}}'], api_key="sk-doc") as server:
        call(doctor_command, "doctor", "--base-url", server.base_url, "--api-key", "sk-doc")
        assert all(r.get("tool_choice") == "auto" for r in server.requests if "tools" in r)
