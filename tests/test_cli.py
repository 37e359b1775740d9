"""The foxagent command line, run as a real subprocess and in-process."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from foxagent import cli
from foxagent.cli import _main

FIXTURES = Path(__file__).parent / "fixtures"


def test_help_answers_from_the_console_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "foxagent.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "usage: foxagent" in result.stdout
    assert "tools" in result.stdout


def test_help_does_not_import_pydantic() -> None:
    code = "import sys, foxagent.cli; sys.exit('pydantic' in sys.modules)"
    # Fast start-up: the CLI module must not drag the schema machinery in.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, "importing foxagent.cli imported pydantic"


def test_tools_lists_stock_schemas_with_token_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tools"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("calculator  (~")
    assert '"name": "get_weather"' in out
    assert out.rstrip().endswith("(estimated: ASCII characters / 4 + 1 per non-ASCII character)")


def test_tools_json_for_a_file() -> None:
    out = io.StringIO()
    assert _main._tools_command([str(FIXTURES / "file_tools.py")], as_json=True, out=out) == 0
    document = json.loads(out.getvalue())
    assert [row["schema"]["function"]["name"] for row in document["tools"]] == ["shout", "whisper"]
    assert document["total_tokens"] == sum(row["tokens"] for row in document["tools"])
    assert all(row["tokens"] > 10 for row in document["tools"])


def test_tools_with_a_bad_spec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tools", "--tools", "no_such_tool"]) == 2
    assert "foxagent tools: Unknown tool 'no_such_tool'" in capsys.readouterr().err


def test_token_estimate_rule() -> None:
    from foxagent._tokens import estimate_tokens

    assert estimate_tokens("abcd" * 10) == 10
    assert estimate_tokens("台北天氣") == 4
    assert estimate_tokens("ab台") == 2
