"""The answers file of a batch job: resumed, appended to safely, one JSON line per question.

On open (`AnswersFile.open`) the file is read once as a stream: each complete line's id is
noted as done (its error type too, for the summary), and a last line without its newline (a
crash during a write) is cut off, never parsed. A complete line that is not a result line (not
JSON, or without an id) stops the job: that file is not this job's output, or was edited, and
the job will not append to it.

Each result is one ``os.write`` of one whole line to a file opened with ``O_APPEND``, so a
crash leaves whole lines and at most one torn last line (cut off on the next start). The lines
are fsynced by one background task after each write it has not yet covered (group commit: with
many questions finishing at once, one fsync covers them all, and no question waits for the
disk); `AnswersFile.close` fsyncs whatever is left. A killed process loses nothing that was
written (the kernel holds it); a power cut loses at most the last fsync's worth of lines, and
those questions run again.

One job at a time per answers file: `AnswersFile.open` takes an exclusive lock
(``flock``) on a small file beside it (``.NAME.lock``; the answers file itself may be replaced
by ``retry_errors``' rename), held until `AnswersFile.close`. A second ``foxagent batch`` on the
same output stops at once with a clear error instead of asking every question a second time
(two processes on one file wrote 384 lines for 200 questions before the lock). The lock is the
kernel's: a killed job releases it. Where ``fcntl`` does not exist (Windows) there is no lock.

With ``retry_errors``, error lines are dropped before the job (the file is rewritten to a
temporary file, fsynced and renamed over the old one, so a crash leaves one or the other), and
their questions run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foxagent._exceptions import UserError
from foxagent.batch._input import id_key

__all__ = ["AnswersFile", "BatchOutputError", "Resumed"]

_CHUNK = 1 << 20


class BatchOutputError(UserError):
    """The answers file cannot be resumed: a complete line in it is not a result line."""


@dataclass(slots=True)
class Resumed:
    """What an existing answers file already holds.

    Attributes:
        done: ids (`id_key`) with a result line.
        errors: error lines among them, by error type.
        cut: bytes of a torn last line that were cut off (0: none).
        dropped: error lines dropped for ``retry_errors``.
    """

    done: set[str] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)
    cut: int = 0
    dropped: int = 0


class AnswersFile:
    """An answers file open for appending; build it with `AnswersFile.open`."""

    def __init__(self, path: Path, fd: int, *, fsync: bool, lock: int | None = None) -> None:
        self.path = path
        self._fd = fd
        self._lock = lock
        self._fsync = fsync
        self._dirty = asyncio.Event() if fsync else None
        self._syncer: asyncio.Task[None] | None = None
        self._closed = False
        self._closing = False
        self._unsynced = False
        self.lines = 0  # written through this object

    @classmethod
    def open(
        cls, path: str | Path, *, retry_errors: bool = False, fsync: bool = True
    ) -> tuple[AnswersFile, Resumed]:
        """Open ``path`` for appending (created if missing), after reading what it holds.

        Call it inside the event loop the job runs on (the fsync task belongs to it).

        Raises:
            BatchOutputError: a complete line is not a result line.
            UserError: the file or its directory cannot be read or written.
        """
        path = Path(path)
        lock = None
        try:
            lock = _lock(path)
            resumed = _resume(path, retry_errors)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as error:
            _unlock(lock)
            raise UserError(f"Cannot use the answers file {path}: {error.strerror}") from None
        except BaseException:
            _unlock(lock)
            raise
        return cls(path, fd, fsync=fsync, lock=lock), resumed

    def append(self, line: bytes) -> None:
        """Write one result line (``line`` ends with its newline), in one write.

        Inside an event loop the fsync follows in the background; outside one (the Ray
        driver), call `sync` after a group of lines.
        """
        view = memoryview(line)
        while view:  # a regular file writes it all at once unless the disk is full
            written = os.write(self._fd, view)
            view = view[written:]
        self.lines += 1
        self._unsynced = True
        if self._dirty is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._dirty.set()
        if self._syncer is None:
            self._syncer = loop.create_task(self._sync_forever())

    def sync(self) -> None:
        """fsync the lines written so far (blocking; nothing to do with ``fsync=False``)."""
        if self._fsync and self._unsynced:
            self._unsynced = False
            os.fsync(self._fd)

    async def _sync_forever(self) -> None:
        assert self._dirty is not None
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self._closing:
                return
            self._unsynced = False
            await asyncio.to_thread(os.fsync, self._fd)

    async def close(self) -> None:
        """Stop the fsync task, fsync what is left and close the file (idempotent)."""
        syncer, self._syncer = self._syncer, None
        if syncer is not None and self._dirty is not None:
            # Not cancelled: an fsync in its thread must end before the descriptor closes.
            self._closing = True
            self._dirty.set()
            await syncer
        self.close_sync()

    def close_sync(self) -> None:
        """fsync what is left and close the file, outside an event loop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._unsynced = True  # the background fsync may have been cut short
            self.sync()
        finally:
            os.close(self._fd)
            _unlock(self._lock)


def _lock(path: Path) -> int | None:
    """An exclusive lock on ``path``'s lock file (its descriptor), or `BatchOutputError` when
    another job holds it; ``None`` where the platform has no ``flock``."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks of this kind
        return None
    lock = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise BatchOutputError(
            f"another foxagent batch is writing {path}: wait for it to finish (or stop it), "
            "or give this job another --output."
        ) from None
    return lock


def _unlock(lock: int | None) -> None:
    if lock is not None:
        os.close(lock)  # closing the descriptor releases the flock


def _resume(path: Path, retry_errors: bool) -> Resumed:
    resumed = Resumed()
    if not path.exists():
        return resumed
    end = 0  # the offset just past the last complete line
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                break  # the torn last line: never parsed
            end += len(raw)
            if raw.strip():
                _note(resumed, raw, number, path)
        size = handle.seek(0, os.SEEK_END)
    if size > end:
        with path.open("r+b") as handle:
            handle.truncate(end)
            os.fsync(handle.fileno())
        resumed.cut = size - end
    if retry_errors and resumed.errors:
        _drop_error_lines(path, resumed)
    return resumed


def _note(resumed: Resumed, raw: bytes, number: int, path: Path) -> None:
    try:
        row = json.loads(raw)
    except ValueError:
        row = None
    if not isinstance(row, dict) or "id" not in row:
        raise BatchOutputError(
            f'{path}: line {number} is not a result line (a JSON object with an "id"); is it '
            "this job's answers file? Nothing was asked; give another --output or fix the line."
        )
    resumed.done.add(id_key(row["id"]))
    error = row.get("error")
    if error:
        kind = str(error.get("type", "Error")) if isinstance(error, dict) else "Error"
        resumed.errors[kind] = resumed.errors.get(kind, 0) + 1


def _is_error_line(raw: bytes) -> tuple[bool, Any]:
    row = json.loads(raw)
    return bool(row.get("error")), row["id"]


def _drop_error_lines(path: Path, resumed: Resumed) -> None:
    """Rewrite ``path`` without its error lines (temporary file, fsync, rename)."""
    temporary = path.with_name(path.name + ".retry-errors.tmp")
    with path.open("rb") as source, temporary.open("wb") as target:
        for raw in source:
            if not raw.strip():
                continue
            failed, identifier = _is_error_line(raw)
            if failed:
                resumed.done.discard(id_key(identifier))
                resumed.dropped += 1
            else:
                target.write(raw)
        target.flush()
        os.fsync(target.fileno())
    os.replace(temporary, path)
    with contextlib.suppress(OSError):  # the rename itself, on file systems that allow it
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    resumed.errors = {}
