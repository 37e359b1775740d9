"""``foxagent batch``: every question of a JSON-lines file, answers appended to another.

The agent is built as ``foxagent run`` builds it (the same flags, environment and config file,
the same backend choice), with no approver: a tool that requires approval is refused in a
batch, nobody is there to ask. Progress goes to stderr (a bar on a terminal, a line every
`PROGRESS_INTERVAL` seconds otherwise); the summary goes to stdout (one JSON object with
``--json``). ``--ray`` runs the same job on a Ray cluster (`foxagent.batch.run_batch_on_ray`).

Exit codes: 0 every question has an answer; 1 the job finished and some lines are errors;
2 bad flags, bad questions lines, or an answers file that is not one; 3 the server (or an MCP
server) cannot be reached; 130 interrupted (run the same command again to resume).
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from foxagent._agent import Agent
from foxagent._exceptions import RunError, UserError
from foxagent.batch._job import BatchJob, BatchSummary
from foxagent.cli._backend import Backend, announce_backend, connect_problem
from foxagent.cli._config import RunConfig
from foxagent.cli._console import LiveView
from foxagent.cli._exit import ExitCode, json_error
from foxagent.cli._run import _build_agent, _check_numbers, _exit_code

__all__ = ["PROGRESS_INTERVAL", "batch_agent", "batch_command", "summary_text"]

#: Seconds between progress lines when stderr is not a terminal.
PROGRESS_INTERVAL = 10.0
_REDRAW = 0.1  # seconds between redraws of the bar on a terminal
_BAR = 24


class _Unreachable(Exception):
    """The model server does not accept connections: the job stops before its first question."""


class _Progress:
    """``on_progress`` for the job: a bar on a terminal, periodic lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = _isatty(stream)
        self.started = time.perf_counter()
        self.last = 0.0
        self.drawn = False
        self.summary: BatchSummary | None = None

    def __call__(self, summary: BatchSummary) -> None:
        self.summary = summary
        now = time.perf_counter()
        if now - self.last < (_REDRAW if self.tty else PROGRESS_INTERVAL):
            return
        self.last = now
        if summary.done == summary.skipped and self.tty is False:
            return  # nothing new to say yet
        self._draw(summary, now)

    def _draw(self, summary: BatchSummary, now: float) -> None:
        ran = summary.answered + summary.failed
        rate = ran / max(now - self.started, 1e-9)
        left = f"ETA {_duration(summary.pending / rate)}" if rate > 0 and ran else "ETA ?"
        share = summary.done / summary.questions if summary.questions else 1.0
        counts = f"{summary.done}/{summary.questions}"
        tail = f"{share:4.0%}  {summary.failed} errors  {rate:.1f} q/s  {left}"
        if self.tty:
            filled = round(share * _BAR)
            bar = "█" * filled + "░" * (_BAR - filled)
            self.stream.write(f"\r\x1b[2K  [{bar}] {counts}  {tail}")
            self.drawn = True
        else:
            self.stream.write(f"foxagent batch: {counts} done  {tail}\n")
        self.stream.flush()

    def close(self) -> None:
        """The last state drawn, and the terminal's line given back."""
        if self.tty and self.summary is not None and self.summary.done > self.summary.skipped:
            self._draw(self.summary, time.perf_counter())
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def batch_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    """Run ``foxagent batch`` (module docstring): the job, its progress, its summary.

    Args:
        flags: the parsed flags (``None`` for a setting not given, as for ``run``).
        out: where the summary goes.
        err: where the backend line, progress and errors go.

    Returns:
        An `ExitCode` (module docstring).
    """
    as_json = bool(flags.get("json"))
    progress = _Progress(err)
    summary: BatchSummary | None = None
    code: ExitCode
    try:
        summary = _run_job(flags, progress, err)
        code = ExitCode.OK if summary.ok else ExitCode.FAILED
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
        summary = progress.summary
    except _Unreachable as error:
        return _fail(out, err, "ModelConnectionError", str(error), ExitCode.UNREACHABLE, as_json)
    except RunError as error:  # MCPServerError at the start (exit 3): no question can run
        return _fail(out, err, type(error).__name__, str(error), _exit_code(error), as_json)
    except UserError as error:  # bad flags, bad input lines, a foreign answers file
        return _fail(out, err, type(error).__name__, str(error), ExitCode.USAGE, as_json)
    finally:
        progress.close()
    if summary is None:  # interrupted before the files were read
        return _fail(out, err, "Interrupted", "interrupted", code, as_json)
    _report(summary, str(flags["output"]), code, out, err, as_json)
    return code


def _run_job(flags: Mapping[str, Any], progress: _Progress, err: TextIO) -> BatchSummary:
    concurrency = flags.get("concurrency")
    concurrency = 16 if concurrency is None else concurrency
    if concurrency < 1:
        raise UserError(f"--concurrency must be at least 1, got {concurrency}.")
    config = RunConfig.resolve(flags)
    _check_numbers(config)
    backend = announce_backend("batch", flags, config, err)

    def on_start(summary: BatchSummary) -> None:
        if summary.skipped:
            err.write(f"foxagent batch: {summary.skipped} already answered, skipped\n")
        if backend.url is not None and (problem := connect_problem(backend.url)) is not None:
            raise _Unreachable(
                f"cannot connect to {backend.url}: {problem}; nothing was asked. Start the "
                "server, or point --base-url / FOXAGENT_BASE_URL at yours."
            )
        progress.started = time.perf_counter()

    if flags.get("ray") is not None:
        from foxagent.batch._ray import run_batch_on_ray

        return run_batch_on_ray(
            functools.partial(batch_agent, config, backend),
            flags["questions"],
            flags["output"],
            address=flags["ray"] or None,
            actors=flags.get("ray_actors") or 1,
            concurrency=concurrency,
            num_cpus=flags.get("ray_cpus") or 1.0,
            retry_errors=bool(flags.get("retry_errors")),
            on_progress=progress,
            on_start=on_start,
        )
    return asyncio.run(_local(flags, config, backend, concurrency, progress, on_start))


async def _local(
    flags: Mapping[str, Any],
    config: RunConfig,
    backend: Backend,
    concurrency: int,
    progress: _Progress,
    on_start: Any,
) -> BatchSummary:
    agent = batch_agent(config, backend)
    job = BatchJob(
        agent,
        flags["questions"],
        flags["output"],
        concurrency=concurrency,
        retry_errors=bool(flags.get("retry_errors")),
        on_progress=progress,
        on_start=on_start,
    )
    progress.summary = job.summary
    async with agent:
        return await job.run()


def batch_agent(config: RunConfig, backend: Backend) -> Agent:
    """The agent ``foxagent run`` would build, without an approver (in a Ray actor too)."""
    agent = _build_agent(config, backend, LiveView(sys.stderr), sys.stderr)
    agent.approver = None  # nobody is there to ask: calls that need approval are refused
    return agent


def _fail(out: TextIO, err: TextIO, kind: str, message: str, code: int, as_json: bool) -> int:
    err.write(f"foxagent batch: {message}\n")
    if as_json:
        out.write(json_error(kind, message, code) + "\n")
    return code


def _report(
    summary: BatchSummary, output: str, code: ExitCode, out: TextIO, err: TextIO, as_json: bool
) -> None:
    if summary.cut:
        err.write(
            f"foxagent batch: cut a torn last line ({summary.cut} bytes) off {output}; its "
            "question ran again\n"
        )
    if summary.retried:
        err.write(f"foxagent batch: {summary.retried} error line(s) dropped to ask again\n")
    if code == ExitCode.INTERRUPTED:
        err.write(
            f"foxagent batch: interrupted with {summary.done} of {summary.questions} done; run "
            "the same command again to resume\n"
        )
    if as_json:
        out.write(json.dumps({"output": output, **summary.as_dict()}) + "\n")
        return
    out.write(summary_text(summary, output))


def summary_text(summary: BatchSummary, output: str) -> str:
    """The summary as ``foxagent batch`` prints it."""
    ran = summary.answered + summary.failed
    rate = ran / summary.wall_time if summary.wall_time > 0 else 0.0
    lines = [f"foxagent batch: {output}"]
    skipped = f" ({summary.skipped} already answered, skipped)" if summary.skipped else ""
    lines.append(f"  questions   {summary.questions}{skipped}")
    lines.append(f"  answered    {summary.answered}")
    lines.append(f"  errors      {_errors(summary.errors)}")
    if summary.earlier_errors:
        lines.append(
            f"  earlier     {_errors(summary.earlier_errors)} (--retry-errors asks them again)"
        )
    if summary.pending:
        lines.append(f"  not done    {summary.pending}")
    lines.append(
        f"  tokens      {summary.total_tokens} (prompt {summary.prompt_tokens}, completion "
        f"{summary.completion_tokens}) in {summary.requests} requests"
    )
    lines.append(f"  wall time   {_duration(summary.wall_time)} ({rate:.1f} questions/s)")
    return "\n".join(lines) + "\n"


def _errors(errors: Mapping[str, int]) -> str:
    if not errors:
        return "0"
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(errors.items()))
    return f"{sum(errors.values())}: {kinds}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{rest:02d}s"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
