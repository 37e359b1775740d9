"""foxagent without its extras: ``openai``, ``httpx`` and ``partial_json_parser`` hidden.

Each test runs Python in a subprocess whose first import hook refuses those packages (and notes
every attempt), so the core, the default backend and the stock tools must do without them, and the
parts that need them say which extra to install.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from foxagent.testing import FakeVLLMServer

HIDDEN = ("openai", "httpx", "partial_json_parser")

PRELUDE = f"""
import sys

HIDDEN = {HIDDEN!r}
attempts = []


class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden by the test)", name=name)
        return None


sys.meta_path.insert(0, Hide())
assert not [name for name in sys.modules if name.partition(".")[0] in HIDDEN]
"""


def run_without_extras(code: str, *args: str, cwd: Path) -> str:
    script = PRELUDE + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, *args],
        cwd=cwd,  # not the repo: imports come from the installed package
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def test_the_core_runs_an_agent_without_the_extras(tmp_path: Path) -> None:
    call = json.dumps({"name": "calculator", "parameters": {"expression": "6*7"}})
    with FakeVLLMServer([call, "<answer>42</answer>"]) as server:
        out = run_without_extras(
            """
            import foxagent
            import foxagent.events
            import foxagent.models
            import foxagent.sessions
            from foxagent.models import OpenAIClientModel, VLLMModel
            from foxagent_tools.calculator import calculator
            from foxagent_tools.weather import get_weather

            offline = foxagent.Agent(tools=[get_weather], base_url="http://127.0.0.1:9/v1")
            assert isinstance(offline.model, VLLMModel)
            agent = foxagent.Agent(tools=[calculator, get_weather], base_url=sys.argv[1])
            result = agent.run("6*7?")
            print(result.answer, [record.result for record in result.tool_calls])
            print(attempts)
            """,
            server.base_url,
            cwd=tmp_path,
        )
    assert out.splitlines() == ["42 ['42']", "[]"]


def test_openai_client_model_names_its_extra(tmp_path: Path) -> None:
    out = run_without_extras(
        """
        from foxagent import UserError
        from foxagent.models import OpenAIClientModel

        try:
            OpenAIClientModel(object())
        except UserError as error:
            print(error)
        """,
        cwd=tmp_path,
    )
    assert out.startswith("OpenAIClientModel needs the 'openai' package (No module named 'openai'")
    assert out.rstrip().endswith("pip install 'foxagent[openai]'")


def test_fake_vllm_server_names_its_extra(tmp_path: Path) -> None:
    out = run_without_extras(
        """
        try:
            from foxagent.testing import FakeVLLMServer
        except ImportError as error:
            print(type(error).__name__, error.name)
            print(error)
        """,
        cwd=tmp_path,
    )
    kind, message = out.splitlines()
    assert kind == "ImportError partial_json_parser"
    assert "needs the 'partial-json-parser' package" in message
    assert message.endswith("pip install 'foxagent[testing]'")


@pytest.mark.parametrize("module", ["openai", "httpx", "partial_json_parser"])
def test_the_hook_really_hides_them(module: str, tmp_path: Path) -> None:
    out = run_without_extras(
        f"""
        try:
            import {module}
        except ModuleNotFoundError:
            print("hidden", attempts)
        """,
        cwd=tmp_path,
    )
    assert out == f"hidden ['{module}']\n"
