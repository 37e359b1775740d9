"""Every Python block of the documentation site (``docs/**/*.md``) runs as written.

Each fenced ```python block is run on its own, as a user would paste it into a file: in a fresh
interpreter, in an empty temporary directory, with warnings shown (``-W default``), against
`FakeVLLMServer` playing FoxBrain. The blocks are never edited: the server is given only through
the environment (``FOXAGENT_BASE_URL`` for foxagent, ``OPENAI_BASE_URL`` for the openai client,
``FOXAGENT_API_KEY``/``OPENAI_API_KEY``), and ``PATH`` starts with this interpreter's directory so
that ``foxagent`` and ``python`` in a block's command lines (MCP servers) are this
installation's. ``tests/test_readme.py`` does the same for README.md with these helpers.

The fake server plays FoxBrain: asked a question it calls the tool the question needs (weather
for a city it knows, the calculator for arithmetic), and with the tool's result it answers with
FoxBrain's tags, quoting the result. So each block that runs an agent goes through a real tool
call over HTTP.

Markers, in HTML comments on the lines right before a fence (they do not show on the site):

- ``<!-- skip: REASON -->``: the block needs a GPU, a real vLLM, the network or ``npx``; it is
  compiled (so it is valid Python) and reported as skipped with that reason.
- ``<!-- expect: TEXT -->`` (one or more): the block's stdout must contain TEXT. Every block that
  runs has at least one, so a block that silently does nothing fails.

The blocks run concurrently (a pool of `WORKERS` subprocesses), once per test session; each
block is one test that reports its own result.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from foxagent.testing import FakeVLLMServer

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API_KEY = "sk-docs"
TIMEOUT = 60
WORKERS = 8

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^`\s]*)[ \t]*$")
_MARKER = re.compile(r"^[ \t]*<!--\s*(?P<kind>skip|expect):\s*(?P<value>.+?)\s*-->[ \t]*$")
WARNINGS = ("Unclosed client session", "Unclosed connector", "ResourceWarning", "Traceback")


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file."""

    where: str  # "docs/guides/tools.md line 12": the file and the opening fence, 1-based
    lang: str
    code: str
    skip: str | None  # the reason in a `<!-- skip: ... -->` right before the fence
    expect: tuple[str, ...] = ()  # the texts of `<!-- expect: ... -->` right before the fence


def fenced_blocks(text: str, name: str = "<text>") -> list[Block]:
    """The fenced blocks of a Markdown text, indented ones (in list items) dedented.

    The markers are the HTML comments on the lines right before the fence (blank lines between
    them are allowed).
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None or not opening["lang"]:
            if opening is not None:  # a fence without a language: skip to its end
                index = _closing(lines, index, name) + 1
            else:
                index += 1
            continue
        indent = len(opening["indent"])
        end = _closing(lines, index, name)
        body = [
            line[indent:] if line[:indent].isspace() else line for line in lines[index + 1 : end]
        ]
        skip: str | None = None
        expect: list[str] = []
        for before in reversed(lines[:index]):
            if not before.strip():
                continue
            marker = _MARKER.match(before)
            if marker is None:
                break
            if marker["kind"] == "skip":
                skip = marker["value"]
            else:
                expect.insert(0, marker["value"])
        blocks.append(
            Block(
                where=f"{name} line {index + 1}",
                lang=opening["lang"],
                code="\n".join(body) + "\n",
                skip=skip,
                expect=tuple(expect),
            )
        )
        index = end + 1
    return blocks


def _closing(lines: list[str], index: int, name: str) -> int:
    end = index + 1
    while end < len(lines) and not re.fullmatch(r"[ \t]*```[ \t]*", lines[end]):
        end += 1
    if end == len(lines):
        raise AssertionError(f"{name} line {index + 1}: a fence that is never closed")
    return end


def doc_pages() -> list[Path]:
    return sorted(path for path in DOCS.rglob("*.md") if "_hooks" not in path.parts)


PYTHON_BLOCKS = [
    block
    for page in doc_pages()
    for block in fenced_blocks(page.read_text(encoding="utf-8"), str(page.relative_to(ROOT)))
    if block.lang == "python"
]


# --- FoxBrain, scripted ---------------------------------------------------------------------

CITIES = {"台北": "台北", "新竹": "新竹", "高雄": "高雄", "tokyo": "Tokyo"}


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


# --- running blocks ---------------------------------------------------------------------------


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


def run_block(block: Block, environment: dict[str, str], directory: Path) -> str | None:
    """Run one block in ``directory``; None when it did all it should, else what went wrong."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "example.py"
    script.write_text(block.code, encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, "-W", "default", str(script)],
            cwd=directory,
            env=environment,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"{block.where} did not end within {TIMEOUT} s"
    output = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    if done.returncode != 0:
        return f"{block.where} exited with {done.returncode}\n{output}"
    for text in block.expect:
        if text not in done.stdout:
            return f"{block.where} did not print {text!r}\n{output}"
    for warning in WARNINGS:
        if warning in done.stderr:
            return f"{block.where} left {warning!r} on stderr\n{output}"
    return None


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str | None]]:
    """Every runnable block run once, concurrently: its place -> None or the failure."""
    runnable = [block for block in PYTHON_BLOCKS if block.skip is None and block.expect]
    root = tmp_path_factory.mktemp("docs-examples")
    with FakeVLLMServer(scripted_foxbrain, api_key=API_KEY) as server:
        environment = block_environment(server)
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            futures = {
                block.where: pool.submit(run_block, block, environment, root / f"block{number}")
                for number, block in enumerate(runnable)
            }
            yield {where: future.result() for where, future in futures.items()}


# --- the tests --------------------------------------------------------------------------------


def test_the_docs_have_runnable_python_blocks() -> None:
    runnable = [block for block in PYTHON_BLOCKS if block.skip is None]
    assert len(PYTHON_BLOCKS) >= 15, [block.where for block in PYTHON_BLOCKS]
    assert len(runnable) >= len(PYTHON_BLOCKS) - 5, [
        (block.where, block.skip) for block in PYTHON_BLOCKS if block.skip
    ]


def test_extractor_reads_indented_blocks_and_markers() -> None:
    text = (
        "1. item\n\n   <!-- skip: needs a GPU -->\n\n   ```python\n   import x\n"
        "       x.y()\n   ```\n\n<!-- expect: 42 -->\n<!-- expect: done -->\n```bash\nls\n```\n"
        "```\nplain\n```\n"
    )
    python, shell = fenced_blocks(text, "t.md")
    assert python == Block(
        where="t.md line 5", lang="python", code="import x\n    x.y()\n", skip="needs a GPU"
    )
    assert (shell.lang, shell.code, shell.skip, shell.expect) == (
        "bash",
        "ls\n",
        None,
        ("42", "done"),
    )


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.where for b in PYTHON_BLOCKS])
def test_docs_python_block_runs(block: Block, outcomes: dict[str, str | None]) -> None:
    if block.skip is not None:
        compile(block.code, block.where, "exec")  # not run, but valid Python
        pytest.skip(f"{block.where}: {block.skip}")
    assert block.expect, (
        f"{block.where}: a runnable block needs an `<!-- expect: TEXT -->` before its fence "
        "(what it must print)"
    )
    failure = outcomes[block.where]
    assert failure is None, failure
