"""The questions of a batch job: JSON lines read, checked and streamed.

One question per line: ``{"id": ..., "question": ...}``, optionally with ``history`` (earlier
messages, as ``Agent.arun`` takes them) and ``system_prompt`` (replaces the agent's for that
question). Other keys are allowed and ignored, so a dataset can keep its own fields (an
expected answer, a category). Blank lines are skipped.

The whole file is checked before the first question is asked (`scan_questions`): a line that is
not JSON, lacks an id or a question, or repeats an id stops the job before it starts, with
every such line named by its number (`BatchInputError`). An error line in the output is keyed
by its id, and these lines have no usable id (or one that is already taken), so they cannot
become result lines; and a typo found after hours of model time costs those hours again, while
the check costs one read of the file (about a second per 100,000 lines). Only the ids are kept
(for duplicates and for the resume count), never the questions: `read_questions` streams them
again when the job runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foxagent._exceptions import UserError

__all__ = [
    "BatchInputError",
    "Question",
    "QuestionScan",
    "id_key",
    "parse_question",
    "read_questions",
    "scan_questions",
]

_SHOWN_PROBLEMS = 20  # lines named in the error message; the rest are counted


class BatchInputError(UserError):
    """The questions file has lines no job can run; nothing was asked.

    Attributes:
        problems: ``(line number, what is wrong)`` for every bad line, in order.
    """

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        self.path = path
        self.problems = problems
        shown = [f"  line {number}: {problem}" for number, problem in problems[:_SHOWN_PROBLEMS]]
        if len(problems) > _SHOWN_PROBLEMS:
            shown.append(f"  ... and {len(problems) - _SHOWN_PROBLEMS} more bad line(s)")
        super().__init__(
            f"{path}: {len(problems)} bad line(s); nothing was asked. Fix them and run again:\n"
            + "\n".join(shown)
        )


@dataclass(frozen=True, slots=True)
class Question:
    """One checked input line.

    Attributes:
        id: the line's id, as written (a string or an integer).
        question: the question text.
        history: earlier messages to continue (``None``: a fresh conversation).
        system_prompt: replaces the agent's system prompt for this question.
        line: the line number in the questions file (0 when not read from a file).
    """

    id: str | int
    question: str
    history: list[dict[str, Any]] | None = None
    system_prompt: str | None = None
    line: int = 0

    @property
    def key(self) -> str:
        """The id as one canonical string (``1`` and ``"1"`` are different ids)."""
        return id_key(self.id)

    def messages(self) -> list[dict[str, Any]] | None:
        """The history to send: ``history``, led by ``system_prompt`` when one is given."""
        if self.system_prompt is None:
            return self.history
        return [{"role": "system", "content": self.system_prompt}, *(self.history or ())]


def id_key(value: Any) -> str:
    """An id as the string result lines and input lines are matched by."""
    return json.dumps(value, ensure_ascii=False)


def parse_question(text: str | bytes, line: int = 0) -> Question:
    """One input line as a `Question`.

    Raises:
        ValueError: what is wrong with the line (the message names no line number).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"not UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"not a JSON object but {_kind(value)}")
    if "id" not in value:
        raise ValueError('no "id"')
    identifier = value["id"]
    if isinstance(identifier, bool) or not isinstance(identifier, (str, int)):
        raise ValueError(f'"id" must be a string or an integer, not {_kind(identifier)}')
    if isinstance(identifier, str) and not identifier.strip():
        raise ValueError('"id" is empty')
    question = value.get("question")
    if not isinstance(question, str) or not question.strip():
        found = "missing" if question is None else f"{_kind(question)}, not a non-empty string"
        raise ValueError(f'"question" is {found}')
    history = value.get("history")
    if history is not None:
        history = _checked_history(history)
    system_prompt = value.get("system_prompt")
    if system_prompt is not None:
        if not isinstance(system_prompt, str) or not system_prompt.strip():
            raise ValueError('"system_prompt" must be a non-empty string (or absent)')
        if history and any(message.get("role") == "system" for message in history):
            raise ValueError('"system_prompt" given, and "history" has a system message too')
    return Question(identifier, question, history, system_prompt, line)


def _checked_history(history: Any) -> list[dict[str, Any]]:
    if not isinstance(history, list):
        raise ValueError(f'"history" must be a list of messages, not {_kind(history)}')
    for index, message in enumerate(history):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError(f'"history"[{index}] is not a message (an object with a "role")')
    return history


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


@dataclass(frozen=True, slots=True)
class QuestionScan:
    """What `scan_questions` found: the ids of the questions, in a set for the resume count.

    Attributes:
        count: how many questions the file holds.
        keys: their ids (`id_key`).
    """

    count: int
    keys: frozenset[str]


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of the non-blank lines of ``path``, read as a stream."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield number, raw


def scan_questions(path: str | Path) -> QuestionScan:
    """Check every line of the questions file, keeping only the ids.

    Raises:
        BatchInputError: some lines are bad or repeat an id (all of them are named).
        UserError: the file cannot be read.
    """
    path = Path(path)
    problems: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    try:
        for number, raw in _lines(path):
            try:
                question = parse_question(raw, number)
            except ValueError as error:
                problems.append((number, str(error)))
                continue
            key = question.key
            if key in first_line:
                problems.append((number, f"id {key} again (first on line {first_line[key]})"))
            else:
                first_line[key] = number
    except OSError as error:
        raise UserError(f"Cannot read the questions file {path}: {error.strerror}") from None
    if problems:
        raise BatchInputError(str(path), problems)
    return QuestionScan(count=len(first_line), keys=frozenset(first_line))


def read_questions(
    path: str | Path, skip: frozenset[str] | set[str] = frozenset()
) -> Iterator[Question]:
    """Stream the questions of a file `scan_questions` accepted, but those whose id is in
    ``skip`` (already answered).

    Raises:
        BatchInputError: a line went bad since the scan (the file changed under the job).
    """
    path = Path(path)
    for number, raw in _lines(path):
        try:
            question = parse_question(raw, number)
        except ValueError as error:
            raise BatchInputError(
                str(path), [(number, f"{error} (changed during the job)")]
            ) from None
        if question.key not in skip:
            yield question
