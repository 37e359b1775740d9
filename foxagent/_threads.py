"""The threads sync tools run in: bounded, and never waited for once a call was given up.

``asyncio.to_thread`` runs a function in the event loop's default executor. Python cannot
kill a thread, so a sync tool that hangs past its timeout keeps its worker. And
``asyncio.run`` (``Agent.run``, the CLI) waits for the default executor's threads when it
returns, as the interpreter does at exit. One hanging tool therefore held the whole program
forever, even though its call had been reported as timed out.

`ToolThreads` is a small pool of daemon threads instead:

* a call that times out is abandoned: its thread finishes (or not) on its own, and nothing waits
  for it, neither the loop, nor ``asyncio.run``, nor the interpreter's exit;
* the pool is bounded (`DEFAULT_SIZE` threads). A call that finds every thread held by abandoned
  calls fails at once with ``ToolThreadsExhaustedError`` instead of queueing forever;
* each call runs in a copy of the caller's context variables, as with ``asyncio.to_thread``.

One pool serves the process (like the default executor, and independent of event loops, since
each job carries its own loop).
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from foxagent._exceptions import ToolThreadsExhaustedError

__all__ = ["DEFAULT_SIZE", "ToolThreads", "tool_threads"]

T = TypeVar("T")

#: Sync tool calls that may run at once (asyncio's default executor allows min(32, CPUs + 4)).
DEFAULT_SIZE = 32


class _Job:
    __slots__ = ("abandoned", "context", "finished", "function", "future", "loop")

    def __init__(
        self, function: Callable[[], Any], loop: asyncio.AbstractEventLoop, future: Any
    ) -> None:
        self.function = function
        self.loop = loop
        self.future = future
        self.context = contextvars.copy_context()
        self.abandoned = False  # the caller gave up (timeout, cancellation)
        self.finished = False  # the function returned or raised


class ToolThreads:
    """A bounded pool of daemon threads for sync tools (see the module docstring).

    Attributes:
        size: the most threads it starts.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._abandoned = 0  # jobs still running whose caller gave up

    @property
    def abandoned(self) -> int:
        """Calls given up on (timed out, cancelled) whose thread has not returned yet."""
        return self._abandoned

    async def run(self, function: Callable[[], T], *, name: str = "tool") -> T:
        """Run ``function`` in a pool thread and return its result.

        Raises:
            ToolThreadsExhaustedError: every thread is held by an abandoned call.
        """
        loop = asyncio.get_running_loop()
        job = _Job(function, loop, loop.create_future())
        self._submit(job, name)
        try:
            result: T = await job.future
            return result
        except asyncio.CancelledError:
            self._abandon(job)
            raise

    def _submit(self, job: _Job, name: str) -> None:
        with self._lock:
            if self._abandoned >= self.size:
                raise ToolThreadsExhaustedError(
                    f"Tool '{name}' was not run: all {self.size} tool threads are held by calls "
                    "that timed out and never returned (a sync tool that hangs cannot be "
                    "stopped); fix the hanging tool or restart the process."
                )
            if self._idle == 0 and self._threads < self.size:
                self._threads += 1
                thread = threading.Thread(
                    target=self._work, name=f"foxagent-tool-{self._threads}", daemon=True
                )
                thread.start()
            else:
                self._idle -= 1  # claimed: the next job wakes an idle thread
            self._jobs.put(job)

    def _abandon(self, job: _Job) -> None:
        with self._lock:
            if not job.abandoned and not job.finished:
                job.abandoned = True
                self._abandoned += 1

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            with self._lock:
                skip = job.abandoned  # given up before it started: nobody wants it run
            if not skip:
                try:
                    result = job.context.run(job.function)
                except BaseException as error:  # delivered to the caller, as to_thread would
                    self._deliver(job, None, error)
                else:
                    self._deliver(job, result, None)
            with self._lock:
                job.finished = True
                if job.abandoned:
                    self._abandoned -= 1
                self._idle += 1

    @staticmethod
    def _deliver(job: _Job, result: Any, error: BaseException | None) -> None:
        def settle() -> None:
            if job.future.done():
                return  # the caller gave up
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        try:
            job.loop.call_soon_threadsafe(settle)
        except RuntimeError:
            pass  # the caller's loop is closed: nobody is waiting any more


#: The process's pool for sync tools.
tool_threads = ToolThreads()
