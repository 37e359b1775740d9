"""`foxagent run` with no server configured: the embedded local model, for real (llama.cpp)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from foxagent.cli import _backend, _main
from foxagent.cli._run import run_command
from foxagent.cli._server import models_command
from foxagent.models import _gguf_cache
from tests.conftest import free_port


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Nothing configured, and nothing at the default address (a free port stands in for it,
    so a real server on 8883 cannot change the test); the stand-in URL."""
    for name in ("FOXAGENT_BASE_URL", "OPENAI_BASE_URL", "FOXAGENT_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setattr(_backend, "DEFAULT_BASE_URL", url)
    return url


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_command(vars(_main._parser().parse_args(["run", *argv])), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_run_without_a_server_uses_the_local_model(no_server: str) -> None:
    code, out, err = run("--tools", "calculator", "What is 17 * 23? Use the calculator.")
    assert code == 0, err
    assert err.startswith(
        f"foxagent run: no server at {no_server} (connection refused); using the embedded model"
    )
    assert '↳ calculator({"expression": "17 * 23"}) ok' in err and ": 391" in err
    assert "391" in out


@pytest.mark.usefixtures("no_server")
def test_model_file_flag_and_missing_file() -> None:
    path = _gguf_cache.pull()
    code, out, err = run(
        "--model-file",
        str(path),
        "--tools",
        "calculator",
        "--json",
        "What is 2 + 3? Use the calculator.",
    )
    assert code == 0, err
    assert f"using the local model file {path}" in err
    assert json.loads(out)["tool_calls"][0]["name"] == "calculator"
    code, _, err = run("--model-file", "/nonexistent.gguf", "hi")
    assert code == 2 and "--model-file /nonexistent.gguf does not exist" in err


def test_models_pull_is_idempotent_and_list_shows_it() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert models_command({"action": "pull"}, out=out, err=err) == 0
    path = Path(out.getvalue().strip())
    assert path.is_file() and path.stat().st_size == _gguf_cache.DEFAULT_MODEL.size
    listing = io.StringIO()
    assert models_command({"action": "list"}, out=listing, err=err) == 0
    size = _gguf_cache.megabytes(_gguf_cache.DEFAULT_MODEL.size)
    assert f"{path}  {size}" in listing.getvalue()
