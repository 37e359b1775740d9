"""`foxagent run` in a real terminal (a pty), against FakeVLLMServer: what a user sees.

Each test starts the CLI as a subprocess whose stdin, stdout and stderr are a pseudo-terminal
(it is the process's controlling terminal, so a typed Ctrl-C reaches it as SIGINT), reads the
bytes the terminal got and renders them into screen lines (carriage returns and erase-line
sequences applied), so a spinner left on a line shows up as it would on the screen.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from foxagent.testing import FakeVLLMServer, Reply

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pty is POSIX only")

FIXTURES = Path(__file__).parent / "fixtures"
ANSWER = (
    "<count>1</count><step>計算 17*23。</step><reflection>正確。</reflection><reward>0.9</reward>"
    "<answer>答案是 391。</answer><reflection>好。</reflection><reward>0.95</reward>"
)
# A call the server's parser leaves in the text (inside FoxBrain's tags), after a special token.
CALL_IN_TEXT = (
    '<count>2</count><step>先算乘法。<|python_tag|>{"name": "calculator", "parameters": '
    '{"expression": "17*23"}}</step>'
)
# The child puts the pty it got as stdin in charge as its controlling terminal, then runs the CLI.
LAUNCH = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'foxagent', *sys.argv[1:]])"
)
ERASE = re.compile(r"\x1b\[K")


class Terminal:
    """The CLI running in a pty: ``read_until`` what it shows, ``type`` into it."""

    def __init__(self, argv: list[str], cwd: Path, *, stdout_pipe: bool = False) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FOXAGENT_", "OPENAI_"))}
        env |= {"TERM": "xterm", "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, *argv],
            stdin=slave,
            stdout=subprocess.PIPE if stdout_pipe else slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.raw = b""

    def _pump(self, seconds: float) -> None:
        ready, _, _ = select.select([self.master], [], [], seconds)
        if ready:
            try:
                self.raw += os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                time.sleep(seconds)

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    def read_until(self, pattern: str, seconds: float = 15.0) -> str:
        deadline = time.monotonic() + seconds
        while pattern not in self.text:
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never showed; the screen:\n{self.text}")
            self._pump(0.05)
        return self.text

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self, seconds: float = 15.0) -> int:
        deadline = time.monotonic() + seconds
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"the CLI did not end; the screen:\n{self.text}")
            self._pump(0.05)
        for _ in range(5):  # what it wrote last
            self._pump(0.02)
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        os.close(self.master)


def screen(raw: str) -> list[str]:
    """The lines a terminal would show: ``\\r`` goes back to the line's start, ``ESC[K`` erases
    the rest of the line, later text overwrites earlier."""
    lines = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        shown = ""
        for part in line.split("\r"):
            erase = part.startswith("\x1b[K")
            part = ERASE.sub("", part)
            shown = part + ("" if erase else shown[len(part) :])
        lines.append(shown)
    return lines


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for term in started:
        term.close()


def start(terminals: list[Terminal], cwd: Path, *argv: str, stdout_pipe: bool = False) -> Terminal:
    term = Terminal(["run", *argv], cwd, stdout_pipe=stdout_pipe)
    terminals.append(term)
    return term


def test_the_spinner_is_wiped_before_an_error(terminal: list[Terminal], tmp_path: Path) -> None:
    with FakeVLLMServer([Reply(status=400, text="bad request", delay=0.6)]) as server:
        term = start(terminal, tmp_path, "hi", "--base-url", server.base_url, "--model", "foxbrain")
        assert term.wait() == 4
    assert "thinking…" in term.text  # the spinner was drawn
    lines = screen(term.text)
    error = next(line for line in lines if "bad request" in line)
    assert error.startswith("foxagent run: Model server answered HTTP 400: bad request"), lines


def test_the_approval_prompt_has_a_line_of_its_own(
    terminal: list[Terminal], tmp_path: Path
) -> None:
    call = Reply(text='{"name": "delete_file", "parameters": {"path": "a.txt"}}', delay=0.5)
    with FakeVLLMServer([call, "<answer>刪好了。</answer>"]) as server:
        tools = str(FIXTURES / "approval_tools.py")
        term = start(
            terminal, tmp_path, "刪掉 a.txt", "--base-url", server.base_url, "--tools", tools
        )
        term.read_until("[y/N] ")
        prompt = [line for line in screen(term.text) if "needs your approval" in line]
        assert prompt == ['  ? delete_file({"path": "a.txt"}) needs your approval. Run it? [y/N] ']
        term.type("y\r")
        assert term.wait() == 0
        sent = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert sent == ["deleted a.txt"]
    lines = screen(term.text)
    assert '  ↳ delete_file({"path": "a.txt"}) ok' in "\n".join(lines)
    assert lines[-2:] == ["刪好了。", ""]


def test_ctrl_c_prints_one_line_and_exits_130(terminal: list[Terminal], tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    with FakeVLLMServer([Reply(text="late", delay=30)]) as server:
        argv = ["hi", "--base-url", server.base_url, "--model", "foxbrain", "--trace", str(trace)]
        term = start(terminal, tmp_path, *argv)
        term.read_until("thinking…")
        before = len(term.raw)
        started = time.monotonic()
        term.type("\x03")  # Ctrl-C, through the terminal
        assert term.wait() == 130
        assert time.monotonic() - started < 5
    after = [line for line in screen(term.raw[before:].decode()) if line.strip()]
    assert after in (["foxagent run: interrupted"], ["^C", "foxagent run: interrupted"])
    assert "Traceback" not in term.text and "thinking" not in "".join(after)
    events = [json.loads(line) for line in trace.read_text().splitlines()]  # closed whole
    assert events and events[0]["kind"] == "step"


def test_ctrl_c_at_the_approval_prompt_ends_the_run_at_once(
    terminal: list[Terminal], tmp_path: Path
) -> None:
    with FakeVLLMServer(['{"name": "delete_file", "parameters": {"path": "a.txt"}}']) as server:
        tools = str(FIXTURES / "approval_tools.py")
        term = start(
            terminal, tmp_path, "刪掉 a.txt", "--base-url", server.base_url, "--tools", tools
        )
        term.read_until("[y/N] ")
        started = time.monotonic()
        term.type("\x03")
        assert term.wait() == 130  # not left waiting for an Enter
        assert time.monotonic() - started < 5
    assert "foxagent run: interrupted" in screen(term.text)
    assert "Traceback" not in term.text


def test_stream_shows_text_without_markup_and_the_answer_once(
    terminal: list[Terminal], tmp_path: Path
) -> None:
    with FakeVLLMServer([CALL_IN_TEXT, ANSWER]) as server:
        term = start(terminal, tmp_path, "17*23?", "--base-url", server.base_url, "--stream")
        assert term.wait() == 0
        assert server.requests[0]["stream"] is True
    shown = "\n".join(screen(term.text))
    for markup in ("<|python_tag|>", "<step>", "</answer>", "<count>", '"name"', '"parameters"'):
        assert markup not in shown, shown
    assert "  📋 先算乘法。" in shown and "  📋 計算 17*23。" in shown
    assert '  ↳ calculator({"expression": "17*23"}) ok' in shown
    assert shown.count("答案是 391。") == 1 and "===" not in shown
    assert screen(term.text)[-2:] == ["答案是 391。", ""]  # the answer ends the screen


def test_stream_with_stdout_captured_gives_it_the_answer_alone(
    terminal: list[Terminal], tmp_path: Path
) -> None:
    # ans=$(foxagent run --stream ...): the live view stays on the terminal, stdout is the answer.
    with FakeVLLMServer([ANSWER]) as server:
        term = start(
            terminal,
            tmp_path,
            "17*23?",
            "--base-url",
            server.base_url,
            "--stream",
            stdout_pipe=True,
        )
        assert term.wait() == 0
    assert term.process.stdout is not None
    assert term.process.stdout.read() == "答案是 391。\n".encode()
    shown = "\n".join(screen(term.text))
    assert "  📋 計算 17*23。" in shown and "  ✅ 答案是 391。" in shown and "<" not in shown
