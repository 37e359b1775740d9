"""The batch job: every question of a JSON-lines file through one agent, answers to another.

`run_batch` (or `BatchJob` for a live view of the counts) checks the questions file, reads what
the answers file already holds, then runs the remaining questions ``concurrency`` at a time and
appends one line per question as it finishes (`result_row`, `error_row`). Memory stays flat
whatever the file's size: the questions are streamed, ``concurrency`` worker tasks pull them one
by one, and a result is written and dropped as soon as it is known; only the ids are kept, for
the resume.

A question that fails is an error line, ``"error": {"type": "StepLimitError", "message": ...}``,
and the job goes on. Cancelling the job (Ctrl-C) drops the questions in flight, which run
again on the next start; ids already in the answers file are never asked again, so a re-run of a
finished job asks nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foxagent._agent import Agent
from foxagent._exceptions import UserError
from foxagent._json_text import utf8_json
from foxagent._run import RunResult, result_document
from foxagent.batch._input import Question, read_questions, scan_questions
from foxagent.batch._output import AnswersFile, Resumed

__all__ = [
    "BatchJob",
    "BatchSummary",
    "answer_one",
    "encode_row",
    "error_row",
    "result_row",
    "run_batch",
]

#: The keys of every answers line, in order (``steps`` is extra: model requests of the run).
ROW_KEYS = ("id", "answer", "parsed", "tool_calls", "usage", "timings", "steps", "error")


@dataclass(kw_only=True)
class BatchSummary:
    """A batch job's counts, kept current while it runs.

    Attributes:
        questions: questions in the file.
        skipped: already in the answers file when the job started (not asked again).
        answered: answered by this job.
        errors: questions of this job that ended in an error, by error type.
        earlier_errors: error lines among the skipped ones, by error type.
        prompt_tokens: prompt tokens of this job's requests.
        completion_tokens: completion tokens of this job's requests.
        requests: model requests of the questions this job answered.
        wall_time: seconds the job ran.
        cut: bytes of a torn last line cut off the answers file at the start (0: none).
        retried: error lines dropped at the start to run again (``retry_errors``).
    """

    questions: int = 0
    skipped: int = 0
    answered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    earlier_errors: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    wall_time: float = 0.0
    cut: int = 0
    retried: int = 0

    @property
    def failed(self) -> int:
        """Questions of this job that ended in an error."""
        return sum(self.errors.values())

    @property
    def done(self) -> int:
        """Questions with a line in the answers file."""
        return self.skipped + self.answered + self.failed

    @property
    def pending(self) -> int:
        """Questions without a line yet."""
        return self.questions - self.done

    @property
    def complete(self) -> bool:
        """Every question has a line (the job was not interrupted)."""
        return self.pending == 0

    @property
    def ok(self) -> bool:
        """Complete, and no line of the answers file is an error."""
        return self.complete and not self.errors and not self.earlier_errors

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values (with the derived counts)."""
        values = dataclasses.asdict(self)
        values |= {"failed": self.failed, "pending": self.pending, "ok": self.ok}
        return values

    def record(self, row: dict[str, Any]) -> None:
        """Count one line this job wrote."""
        error = row.get("error")
        if error:
            kind = str(error["type"])
            self.errors[kind] = self.errors.get(kind, 0) + 1
        else:
            self.answered += 1
        usage = row.get("usage") or {}
        total = usage.get("total") or {}
        self.prompt_tokens += int(total.get("prompt_tokens") or 0)
        self.completion_tokens += int(total.get("completion_tokens") or 0)
        self.requests += int(row.get("steps") or 0)


def result_row(identifier: str | int, result: RunResult) -> dict[str, Any]:
    """The answers line of a question that was answered."""
    return {"id": identifier, **result_document(result), "error": None}


def error_row(identifier: str | int, error: BaseException, seconds: float) -> dict[str, Any]:
    """The answers line of a question whose run raised ``error``."""
    return {
        "id": identifier,
        "answer": None,
        "parsed": None,
        "tool_calls": [],
        "usage": None,
        "timings": {"total": seconds},
        "steps": 0,
        "error": {"type": type(error).__name__, "message": str(error)},
    }


def encode_row(row: dict[str, Any]) -> bytes:
    """One answers line: compact UTF-8 JSON and its newline (objects JSON lacks: ``str``)."""
    return utf8_json(row, separators=(",", ":"), default=str) + b"\n"


async def answer_one(agent: Agent, question: Question) -> dict[str, Any]:
    """Run one question; its answers line (an error line when the run raised).

    Cancellation is not an answer: it propagates, and the question stays undone.
    """
    started = time.perf_counter()
    try:
        result = await agent.arun(question.question, history=question.messages())
    except Exception as error:  # any failure is this question's line, not the job's end
        return error_row(question.id, error, time.perf_counter() - started)
    return result_row(question.id, result)


ProgressCallback = Callable[["BatchSummary"], Any]


class BatchJob:
    """One batch job; `run` it once. ``summary`` holds its counts, also while it runs.

    Args:
        agent: answers every question (use it inside ``async with agent:``; the job neither
            opens nor closes it).
        questions: the JSON-lines questions file.
        output: the JSON-lines answers file (created, or resumed).
        concurrency: questions in flight at once.
        retry_errors: run questions whose line is an error again (their lines are dropped).
        on_progress: called with ``summary`` after each question and once at the start.
        on_start: called with ``summary`` once the files are checked, before the first
            question, and only when there is one to ask (it may raise to stop the job, e.g.
            when the model server does not answer).
        fsync: fsync the answers as they are written (off: a power cut may lose recent lines,
            which then run again; a crashed process loses nothing either way).
    """

    def __init__(
        self,
        agent: Agent,
        questions: str | Path,
        output: str | Path,
        *,
        concurrency: int = 16,
        retry_errors: bool = False,
        on_progress: ProgressCallback | None = None,
        on_start: ProgressCallback | None = None,
        fsync: bool = True,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise UserError(f"concurrency must be a positive integer, got {concurrency!r}.")
        self.agent = agent
        self.questions = Path(questions)
        self.output = Path(output)
        self.concurrency = concurrency
        self.retry_errors = retry_errors
        self.on_progress = on_progress
        self.on_start = on_start
        self.fsync = fsync
        self.summary = BatchSummary()

    async def run(self) -> BatchSummary:
        """Run the questions not yet answered; the summary.

        Raises:
            BatchInputError: bad lines in the questions file (nothing was asked).
            BatchOutputError: the answers file holds a line that is not a result line.
            UserError: a file cannot be read or written.
        """
        started = time.perf_counter()
        answers, done = prepare(
            self.questions, self.output, self.summary, self.retry_errors, self.fsync
        )
        try:
            self._progress()
            if self.summary.pending:
                if self.on_start is not None:
                    self.on_start(self.summary)
                pending = read_questions(self.questions, done)
                workers = min(self.concurrency, self.summary.pending)
                await _all_or_none([self._work(pending, answers) for _ in range(workers)])
        finally:
            self.summary.wall_time = time.perf_counter() - started
            await answers.close()
        return self.summary

    async def _work(self, pending: Iterator[Question], answers: AnswersFile) -> None:
        # The workers share one iterator: `next` never awaits, so each question goes to one.
        for question in pending:
            row = await answer_one(self.agent, question)
            answers.append(encode_row(row))
            self.summary.record(row)
            self._progress()

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.summary)


def prepare(
    questions: Path, output: Path, summary: BatchSummary, retry_errors: bool, fsync: bool
) -> tuple[AnswersFile, frozenset[str]]:
    """Check the questions, open the answers (resumed) and fill in the summary's start counts.

    Returns:
        The open answers file and the ids already done (among the questions).
    """
    scan = scan_questions(questions)
    answers, resumed = AnswersFile.open(output, retry_errors=retry_errors, fsync=fsync)
    _start_counts(summary, scan.count, scan.keys, resumed)
    return answers, frozenset(resumed.done & scan.keys)


def _start_counts(
    summary: BatchSummary, count: int, keys: frozenset[str], resumed: Resumed
) -> None:
    summary.questions = count
    summary.skipped = len(resumed.done & keys)
    summary.earlier_errors = dict(resumed.errors)
    summary.cut = resumed.cut
    summary.retried = resumed.dropped


async def _all_or_none(coroutines: list[Any]) -> None:
    """Run the workers; when one fails (or the job is cancelled), cancel the others."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_batch(
    agent: Agent,
    questions: str | Path,
    output: str | Path,
    *,
    concurrency: int = 16,
    retry_errors: bool = False,
    on_progress: ProgressCallback | None = None,
    on_start: ProgressCallback | None = None,
    fsync: bool = True,
) -> BatchSummary:
    """Answer every question of a JSON-lines file not yet in the answers file.

    Example:
        >>> async def main() -> None:  # doctest: +SKIP
        ...     async with Agent(tools=[get_weather]) as agent:
        ...         summary = await run_batch(agent, "questions.jsonl", "answers.jsonl",
        ...                                   concurrency=64)
        ...     print(summary.answered, summary.errors)

    Each input line is ``{"id", "question"}`` with optional ``history`` and ``system_prompt``;
    each output line ``{"id", "answer", "parsed", "tool_calls", "usage", "timings", "steps",
    "error"}``. See `BatchJob` for the arguments.

    Raises:
        BatchInputError: bad lines in the questions file (nothing was asked).
        BatchOutputError: the answers file holds a line that is not a result line.
        UserError: a file cannot be read or written, or ``concurrency`` is not positive.
    """
    job = BatchJob(
        agent,
        questions,
        output,
        concurrency=concurrency,
        retry_errors=retry_errors,
        on_progress=on_progress,
        on_start=on_start,
        fsync=fsync,
    )
    return await job.run()
