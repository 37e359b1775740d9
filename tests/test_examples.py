"""Every program in examples/ runs and prints what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).parent.parent / "examples"


def run(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_define_tools() -> None:
    out = run("define_tools.py")
    assert '"name": "get_weather"' in out
    assert "{'location': '台北', 'unit': 'celsius'}" in out
    assert "'unit': expected one of 'celsius', 'fahrenheit', got 'kelvin'." in out


def run_against(server_url: str, name: str, *args: str) -> str:
    env = {**os.environ, "FOXAGENT_BASE_URL": server_url, "FOXAGENT_API_KEY": "sk-example"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def scripted_foxbrain(request: dict[str, Any]) -> str:
    """Calls the tool the question needs, then answers with FoxBrain's tags."""
    last = request["messages"][-1]
    if last["role"] == "tool":
        return (
            f"<count>1</count><step>工具結果：{last['content']}</step><reflection>ok</reflection>"
            f"<reward>0.9</reward><answer>根據工具：{last['content']}</answer>"
            "<reflection>ok</reflection><reward>0.9</reward>"
        )
    question = last["content"]
    if "weather" in question.lower() or "天氣" in question:
        city = "Tokyo" if "Tokyo" in question else "台北"
        return json.dumps(
            {"name": "get_weather", "parameters": {"location": city}}, ensure_ascii=False
        )
    return '{"name": "calculator", "parameters": {"expression": "6 * 7"}}'


def test_weather_calculator_flow_in_english_and_chinese() -> None:
    from foxagent.testing import FakeVLLMServer

    with FakeVLLMServer(scripted_foxbrain, api_key="sk-example") as server:
        out = run_against(server.base_url, "weather_calculator.py")
    assert "Q: What's the weather like in Tokyo" in out
    assert "tool get_weather({'location': 'Tokyo'}) -> ok" in out
    assert "Q: 台北現在天氣如何？" in out
    assert "晴時多雲" in out
    assert "✅" in out  # FoxBrain's structure, pretty-printed


def test_concurrent_backend() -> None:
    from foxagent.testing import FakeVLLMServer

    with FakeVLLMServer(scripted_foxbrain, api_key="sk-example") as server:
        out = run_against(server.base_url, "concurrent_backend.py", "40")
        calls = sum(1 for r in server.requests if r["messages"][-1]["role"] == "tool")
    assert "40/40 answered" in out
    assert "failures: 0" in out
    assert calls == 40
