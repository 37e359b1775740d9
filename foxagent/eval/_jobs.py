"""Running many cases: a concurrency cap, a durable record per case, resuming, a progress line.

Each finished case is appended to a JSON-lines file at once (flushed and fsynced), so an
interrupted evaluation loses at most the cases in flight. A new run reads the file first and
skips every case already there, with no model request. The exception is a case that failed
before any reply arrived (server down, connection refused): it is run again, and the newer
record wins. A torn last line (the process killed mid-write) is ignored.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TextIO, TypeVar

__all__ = ["CaseStore", "Progress", "run_all"]

Case = TypeVar("Case")
Record = dict[str, Any]


class CaseStore:
    """The per-case records of one evaluation, as JSON lines at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Record]:
        """The latest record of each case id in the file (empty when there is none)."""
        records: dict[str, Record] = {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return records
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill mid-write: that case runs again
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                records[record["id"]] = record
        return records

    def append(self, record: Record) -> None:
        """Add ``record`` durably (one line, flushed and fsynced before returning)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(line)
            stream.flush()
            os.fsync(stream.fileno())


def finished(record: Record) -> bool:
    """Whether a stored record is final: it has no error, or a reply came before the error."""
    return "error" not in record or bool(record.get("replied"))


class Progress:
    """One progress line on ``stream``: redrawn in place on a terminal, else printed every
    twentieth of the work (logs get no carriage returns)."""

    def __init__(
        self, stream: TextIO, total: int, done: int, describe: Callable[[list[Record]], str]
    ) -> None:
        self._stream = stream
        self._total = total
        self._done = done
        self._describe = describe
        self._records: list[Record] = []
        self._started = time.perf_counter()
        self._tty = _isatty(stream)
        self._every = max(1, total // 20)

    def update(self, record: Record) -> None:
        """Count one finished case and show the line."""
        self._done += 1
        self._records.append(record)
        last = self._done == self._total
        if not self._tty and not last and self._done % self._every:
            return
        elapsed = time.perf_counter() - self._started
        line = (
            f"foxagent eval: {self._done}/{self._total} cases, {elapsed:.0f} s"
            f"{', ' + self._describe(self._records) if self._records else ''}"
        )
        self._stream.write(f"\r\x1b[K{line}" if self._tty else line + "\n")
        if self._tty and last:
            self._stream.write("\n")
        self._stream.flush()


class _Runner(Generic[Case]):
    def __init__(
        self,
        run_one: Callable[[Case], Awaitable[Record]],
        case_id: Callable[[Case], str],
        store: CaseStore,
        progress: Progress,
        concurrency: int,
    ) -> None:
        self.run_one = run_one
        self.case_id = case_id
        self.store = store
        self.progress = progress
        self.semaphore = asyncio.Semaphore(concurrency)

    async def one(self, case: Case) -> Record:
        async with self.semaphore:
            try:
                record = await self.run_one(case)
            except Exception as error:  # a bug in scoring one case is that case's record
                record = {"id": self.case_id(case), "error": f"{type(error).__name__}: {error}"}
        self.store.append(record)
        self.progress.update(record)
        return record


async def run_all(
    cases: Sequence[Case],
    run_one: Callable[[Case], Awaitable[Record]],
    *,
    case_id: Callable[[Case], str],
    store: CaseStore,
    concurrency: int,
    err: TextIO,
    describe: Callable[[list[Record]], str],
) -> list[Record]:
    """Run the cases not finished in ``store``, at most ``concurrency`` at a time.

    Returns:
        One record per case of ``cases``, in their order: the stored ones and the new ones.
    """
    stored = store.load()
    todo = [case for case in cases if not finished(stored.get(case_id(case), {"error": ""}))]
    progress = Progress(err, len(cases), len(cases) - len(todo), describe)
    if len(todo) < len(cases):
        err.write(
            f"foxagent eval: resuming from {store.path}: {len(cases) - len(todo)} of "
            f"{len(cases)} cases already done\n"
        )
        err.flush()
    runner = _Runner(run_one, case_id, store, progress, max(1, concurrency))
    fresh = await asyncio.gather(*(runner.one(case) for case in todo))
    by_id = stored | {record["id"]: record for record in fresh}
    return [by_id[case_id(case)] for case in cases]


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
