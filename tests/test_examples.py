"""Every program in examples/ runs and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
