"""Every Python block in README.md runs as written, against `FakeVLLMServer`.

README.md is the landing page: the guides, with their examples, live in ``docs/`` and
``tests/test_docs_examples.py`` runs those. This test keeps the README's own blocks honest the
same way (the extractor, the scripted FoxBrain and the environment are that module's): each
fenced ```python block is run on its own, as a user would paste it into a file, in a fresh
interpreter, in an empty temporary directory, with warnings shown, the server given only through
the environment (``FOXAGENT_BASE_URL``, ``FOXAGENT_API_KEY``, ``OPENAI_*``).

A block preceded by ``<!-- skip: REASON -->`` is reported as skipped with that reason. What a
block must print is listed in `EXPECTED`, keyed by a line of its code, so a new block comes with
its expectations.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from foxagent.testing import FakeVLLMServer
from tests.test_docs_examples import (
    API_KEY,
    WARNINGS,
    Block,
    block_environment,
    fenced_blocks,
    scripted_foxbrain,
)

README = Path(__file__).parent.parent / "README.md"
TIMEOUT = 120

PYTHON_BLOCKS = [
    block for block in fenced_blocks(README.read_text(), "README.md") if block.lang == "python"
]

# (a line of code that identifies the block, what its output must contain).
EXPECTED: list[tuple[str, tuple[str, ...]]] = [
    (
        'result = Agent(tools=[get_weather]).run("台北現在天氣如何？")',
        ("get_weather {'location': '台北'}", "根據工具結果"),
    ),
]


def expected_output(block: Block) -> tuple[str, ...]:
    matches = [expected for needle, expected in EXPECTED if needle in block.code]
    assert len(matches) == 1, (
        f"{block.where}: {len(matches)} entries of EXPECTED match this block; "
        "give each runnable block exactly one (what it must print)"
    )
    return matches[0]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVLLMServer]:
    with FakeVLLMServer(scripted_foxbrain, api_key=API_KEY) as fake:
        yield fake


def test_readme_is_a_landing_page() -> None:
    text = README.read_text()
    head = text[: text.index("## In fifteen lines")]
    assert "make demo" in head and "make test" in head  # the two quick-start commands, on top
    assert len(PYTHON_BLOCKS) == 1 and PYTHON_BLOCKS[0].skip is None
    assert len(PYTHON_BLOCKS[0].code.splitlines()) <= 20
    for link in ("docs/guides/quick-start.md", "docs/guides/recovery.md", "docs/guides/eval.md"):
        assert f"]({link})" in text and (README.parent / link).is_file(), link


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.where for b in PYTHON_BLOCKS])
def test_readme_python_block_runs(block: Block, server: FakeVLLMServer, tmp_path: Path) -> None:
    if block.skip is not None:
        compile(block.code, block.where, "exec")  # not run, but valid Python
        pytest.skip(f"{block.where}: {block.skip}")
    expected = expected_output(block)
    script = tmp_path / "readme_block.py"
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
    output = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, f"{block.where} exited with {done.returncode}\n{output}"
    for text in expected:
        assert text in done.stdout, f"{block.where} did not print {text!r}\n{output}"
    for warning in WARNINGS:
        assert warning not in done.stderr, f"{block.where} left {warning!r} on stderr\n{output}"
