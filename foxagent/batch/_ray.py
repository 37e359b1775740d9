"""The batch job on a Ray cluster (``pip install 'foxagent[ray]'``).

The driver (this process) checks the questions file and reads the answers file exactly as
`run_batch` does, so the same files resume either way. Then Ray Data reads the questions
(``ray.data.read_text``: one row per line, kept byte-exact; ``read_json`` would make Arrow infer
one schema for every line, which fails on ids that are numbers on some lines and strings on
others, and adds ``null`` keys to history messages that lack them), and ``map_batches`` hands
them to a pool of `_QuestionActor` actors. Each actor builds one agent (from
``agent_factory``, called in the actor's process) and answers its batch concurrently on an
event loop of its own, skipping the ids the driver found done. The answers lines come back to
the driver, which appends them to the answers file (one write per line, fsync per batch).

The read tasks are pinned to the driver's node, so the questions file only has to exist
there; the agents reach the model server by URL from wherever their actors run.

A re-run of a finished job starts no Ray at all. A driver stopped mid-job loses only the
batches in flight, which run again on the next start.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from foxagent._agent import Agent
from foxagent._exceptions import UserError
from foxagent.batch._input import Question, parse_question
from foxagent.batch._job import BatchSummary, ProgressCallback, answer_one, encode_row, prepare

__all__ = ["run_batch_on_ray"]


def _ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise UserError("Running a batch on Ray needs Ray: pip install 'foxagent[ray]'.") from None


class _QuestionActor:
    """A Ray Data actor: one agent, answering each batch of question lines concurrently.

    Args:
        agent_factory: builds the agent, in the actor's process.
        done: ids (`id_key`) already answered: their lines are skipped.
        concurrency: questions in flight at once in this actor.
    """

    def __init__(
        self, agent_factory: Callable[[], Agent], done: frozenset[str], concurrency: int
    ) -> None:
        self._factory = agent_factory
        self._done = done
        self._concurrency = concurrency
        self._agent: Agent | None = None
        # One loop for the actor's life: the agent's HTTP connections belong to it.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="foxagent-batch-actor", daemon=True
        )
        self._thread.start()

    def __call__(self, batch: Any) -> Any:
        """``batch``: a pyarrow table with a ``text`` column; returns one with ``line``."""
        pyarrow = importlib.import_module("pyarrow")
        todo = [parse_question(text) for text in batch.column("text").to_pylist()]
        todo = [question for question in todo if question.key not in self._done]
        lines = asyncio.run_coroutine_threadsafe(self._answer(todo), self._loop).result()
        return pyarrow.table({"line": pyarrow.array(lines, type=pyarrow.string())})

    async def _answer(self, questions: list[Question]) -> list[str]:
        if not questions:
            return []
        if self._agent is None:
            agent = self._factory()
            await agent.__aenter__()  # MCP servers connect once per actor
            self._agent = agent
        agent, gate = self._agent, asyncio.Semaphore(self._concurrency)

        async def one(question: Question) -> str:
            async with gate:
                return encode_row(await answer_one(agent, question))[:-1].decode()  # no newline

        return list(await asyncio.gather(*(one(question) for question in questions)))

    def __del__(self) -> None:
        agent, loop = self._agent, self._loop
        if agent is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(agent.aclose(), loop).result(timeout=5)
            except Exception:  # the process is going away; nothing left to tell
                pass
        loop.call_soon_threadsafe(loop.stop)


def run_batch_on_ray(
    agent_factory: Callable[[], Agent],
    questions: str | Path,
    output: str | Path,
    *,
    address: str | None = None,
    actors: int = 1,
    concurrency: int = 16,
    batch_size: int | None = None,
    num_cpus: float = 1.0,
    retry_errors: bool = False,
    on_progress: ProgressCallback | None = None,
    on_start: ProgressCallback | None = None,
    fsync: bool = True,
    init_options: Mapping[str, Any] | None = None,
) -> BatchSummary:
    """`run_batch`'s job on Ray: the same files, the same lines, the same resume.

    Ray is started with ``ray.init(address, **init_options)`` unless this process is connected
    already (then it is left as it is); a Ray this call started is shut down at its end.

    Args:
        agent_factory: builds each actor's agent, in the actor's process: it must pickle
            (a module-level function or a ``functools.partial`` of one), and the agent must
            reach its model by URL.
        questions: the JSON-lines questions file, on the driver's node.
        output: the answers file, written by the driver.
        address: the cluster (``"auto"``, ``"ray://head:10001"``); ``None``: what ``ray.init``
            finds (``RAY_ADDRESS`` under ``ray job submit``), else a local Ray.
        actors: actors in the pool, each with one agent.
        concurrency: questions in flight per actor.
        batch_size: questions per batch handed to an actor (default ``4 * concurrency``).
        num_cpus: CPUs each actor reserves.
        retry_errors: as for `run_batch`.
        on_progress: as for `run_batch`, called after each batch.
        on_start: as for `run_batch`, called before Ray starts.
        fsync: as for `run_batch`.
        init_options: more keyword arguments for ``ray.init``.

    Raises:
        BatchInputError, BatchOutputError, UserError: as `run_batch`, before Ray starts.
    """
    for name, value in (("actors", actors), ("concurrency", concurrency)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}.")
    summary = BatchSummary()
    started = time.perf_counter()
    answers, done = prepare(Path(questions), Path(output), summary, retry_errors, fsync)
    try:
        if on_progress is not None:
            on_progress(summary)
        if not summary.pending:
            return summary
        if on_start is not None:
            on_start(summary)
        ray = _ray()
        own_ray = not ray.is_initialized()
        if own_ray:
            ray.init(address=address, **dict(init_options or {}))
        try:
            node = f"node:{ray.util.get_node_ip_address()}"
            dataset = ray.data.read_text(
                str(Path(questions).resolve()), ray_remote_args={"resources": {node: 0.001}}
            )
            answered = dataset.map_batches(
                _QuestionActor,
                fn_constructor_kwargs={
                    "agent_factory": agent_factory,
                    "done": done,
                    "concurrency": concurrency,
                },
                batch_size=batch_size or 4 * concurrency,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=num_cpus,
            )
            for batch in answered.iter_batches(batch_size=None, batch_format="pyarrow"):
                for line in batch.column("line").to_pylist():
                    answers.append(line.encode() + b"\n")
                    summary.record(json.loads(line))
                answers.sync()
                if on_progress is not None:
                    on_progress(summary)
        finally:
            if own_ray:
                ray.shutdown()
    finally:
        summary.wall_time = time.perf_counter() - started
        answers.close_sync()
    return summary
