"""Every Python block in README.md runs as written, against `FakeVLLMServer`.

Each fenced ```python block is run on its own, as a user would paste it into a file: in a fresh
interpreter, in an empty temporary directory, with warnings shown (``-W default``). The blocks are
never edited: the server is given only through the environment (``FOXAGENT_BASE_URL`` for
foxagent, ``OPENAI_BASE_URL`` for the openai client, ``FOXAGENT_API_KEY``/``OPENAI_API_KEY``),
and ``PATH`` starts with this interpreter's directory so that ``foxagent`` and ``python`` in a
block's command lines (MCP servers) are this installation's.

The fake server plays FoxBrain: asked a question it calls the tool the question needs (weather
for a city it knows, the calculator for arithmetic), and with the tool's result it answers with
FoxBrain's tags, quoting the result. So each block that runs an agent goes through a real tool
call over HTTP.

A block preceded by ``<!-- skip: REASON -->`` (a GPU, a real vLLM, the network, ``npx``) is
reported as skipped with that reason; at least `MIN_RUNNABLE` blocks must run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from foxagent.testing import FakeVLLMServer

README = Path(__file__).parent.parent / "README.md"
MIN_RUNNABLE = 4
API_KEY = "sk-readme"
TIMEOUT = 120

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^`\s]*)[ \t]*$")
_SKIP = re.compile(r"^[ \t]*<!--\s*skip:\s*(?P<reason>.+?)\s*-->[ \t]*$")
_WARNINGS = ("Unclosed client session", "Unclosed connector", "ResourceWarning", "Traceback")


@dataclass(frozen=True)
class Block:
    """One fenced block of README.md."""

    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None  # the reason in a `<!-- skip: ... -->` right before the fence


def fenced_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, indented ones (in list items) dedented."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = len(opening["indent"])
        end = index + 1
        while end < len(lines) and not re.fullmatch(r"[ \t]*```[ \t]*", lines[end]):
            end += 1
        if end == len(lines):
            raise AssertionError(f"README.md line {index + 1}: a fence that is never closed")
        body = [
            line[indent:] if line[:indent].isspace() else line for line in lines[index + 1 : end]
        ]
        before = next((line for line in reversed(lines[:index]) if line.strip()), "")
        marker = _SKIP.match(before)
        blocks.append(
            Block(
                line=index + 1,
                lang=opening["lang"],
                code="\n".join(body) + "\n",
                skip=marker["reason"] if marker else None,
            )
        )
        index = end + 1
    return blocks


PYTHON_BLOCKS = [block for block in fenced_blocks(README.read_text()) if block.lang == "python"]


# --- FoxBrain, scripted ---------------------------------------------------------------------

CITIES = {"台北": "台北", "新竹": "新竹", "高雄": "高雄", "tokyo": "Tokyo"}
WEATHER = "晴時多雲"


def _arithmetic(question: str) -> str | None:
    """``"17 乘以 23 是多少？"`` -> ``"17 * 23"``; None when the question holds no sum."""
    words = {"乘以": "*", "乘": "*", "×": "*", "x": "*", "加": "+", "減": "-", "除以": "/"}
    expression = question
    for word, operator in words.items():
        expression = expression.replace(word, f" {operator} ")
    tokens = re.findall(r"\d+(?:\.\d+)?|[-+*/]", expression)
    return " ".join(tokens) if len(tokens) >= 3 else None


def scripted_foxbrain(request: dict[str, Any]) -> str:
    """A tool call for a new question, then a FoxBrain answer built from the tool's result."""
    last = request["messages"][-1]
    if last["role"] == "tool":
        return (
            f"<count>2</count><step>查詢工具：{last['content']}</step>"
            f"<answer>根據工具結果：{last['content']}</answer>"
            "<reflection>工具結果直接回答了問題。</reflection><reward>0.9</reward>"
        )
    question = str(last["content"])
    names = [tool["function"]["name"] for tool in request.get("tools") or []]
    weather = next((name for name in names if name.endswith("weather")), None)
    calculator = next((name for name in names if name.endswith("calculator")), None)
    city = next((name for key, name in CITIES.items() if key in question.lower()), None)
    if weather and city:
        call = {"name": weather, "parameters": {"location": city}}
    elif calculator and (expression := _arithmetic(question)):
        call = {"name": calculator, "parameters": {"expression": expression}}
    else:
        return f"<count>1</count><step>不需要工具。</step><answer>{question}</answer>"
    return json.dumps(call, ensure_ascii=False)


# --- what each block must print ---------------------------------------------------------------

# (a line of code that identifies the block, what its output must contain). Every runnable
# block must match one entry, so a new block comes with its expectations.
EXPECTED: list[tuple[str, tuple[str, ...]]] = [
    (
        "tools = Toolset([get_weather])",
        ("'name': 'get_weather'", "{'location': '台北', 'unit': 'celsius'}"),
    ),
    (
        "agent.run(",
        ("get_weather {'location': '台北'} ok", "根據工具結果", "✅", "新竹"),
    ),
    ("asyncio.gather(", ("6 * 7", "42", "17 * 23", "391")),
    ("agent.iter(", ("event: tool_finished", "event: final_answer", "391")),
    ("Toolset.from_mcp(", ("mcp_calculator", "391")),
    ("recover_tool_calls(", ("get_weather {'location': '台北'}",)),
]


def expected_output(block: Block) -> tuple[str, ...]:
    matches = [expected for needle, expected in EXPECTED if needle in block.code]
    assert len(matches) == 1, (
        f"README.md line {block.line}: {len(matches)} entries of EXPECTED match this block; "
        "give each runnable block exactly one (what it must print)"
    )
    return matches[0]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVLLMServer]:
    with FakeVLLMServer(scripted_foxbrain, api_key=API_KEY) as fake:
        yield fake


def block_environment(server: FakeVLLMServer) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FOXAGENT_", "OPENAI_", "PYTHON"))
    }
    return environment | {
        "FOXAGENT_BASE_URL": server.base_url,
        "FOXAGENT_API_KEY": API_KEY,
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": API_KEY,
        "PATH": bin_dir + os.pathsep + environment.get("PATH", ""),
        "PYTHONWARNINGS": "default",  # also in the subprocesses a block starts (MCP servers)
        "PYTHONIOENCODING": "utf-8",
        "NO_COLOR": "1",
    }


def test_readme_has_enough_runnable_python_blocks() -> None:
    runnable = [block for block in PYTHON_BLOCKS if block.skip is None]
    assert len(PYTHON_BLOCKS) >= 6, [block.line for block in PYTHON_BLOCKS]
    assert len(runnable) >= MIN_RUNNABLE, (
        f"only {len(runnable)} of {len(PYTHON_BLOCKS)} README Python blocks run; "
        f"skipped: {[(block.line, block.skip) for block in PYTHON_BLOCKS if block.skip]}"
    )


def test_extractor_reads_indented_blocks_and_skip_markers() -> None:
    text = (
        "1. item\n\n   <!-- skip: needs a GPU -->\n\n   ```python\n   import x\n"
        "       x.y()\n   ```\n\n```bash\nls\n```\n"
    )
    python, shell = fenced_blocks(text)
    assert python == Block(line=5, lang="python", code="import x\n    x.y()\n", skip="needs a GPU")
    assert (shell.lang, shell.code, shell.skip) == ("bash", "ls\n", None)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"line{b.line}" for b in PYTHON_BLOCKS])
def test_readme_python_block_runs(block: Block, server: FakeVLLMServer, tmp_path: Path) -> None:
    if block.skip is not None:
        compile(block.code, f"README.md line {block.line}", "exec")  # not run, but valid Python
        pytest.skip(f"README.md line {block.line}: {block.skip}")
    expected = expected_output(block)
    script = tmp_path / f"readme_line{block.line}.py"
    script.write_text(block.code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "default", str(script)],
        cwd=tmp_path,
        env=block_environment(server),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        check=False,
    )
    where = f"README.md line {block.line}"
    output = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, f"{where} exited with {done.returncode}\n{output}"
    for text in expected:
        assert text in done.stdout, f"{where} did not print {text!r}\n{output}"
    for warning in _WARNINGS:
        assert warning not in done.stderr, f"{where} left {warning!r} on stderr\n{output}"
