"""Batch jobs: every question of a JSON-lines file through an agent, answers to another file.

- `run_batch` (or `BatchJob`): in this process, on asyncio, ``concurrency`` questions at once;
- `run_batch_on_ray`: the same job on a Ray cluster (``pip install 'foxagent[ray]'``): Ray Data
  reads the questions, a pool of actors each holding one agent answers them, and this process
  appends the answers to the same file in the same format.

Both resume: ids already in the answers file are not asked again. ``foxagent batch`` is the
command line over both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foxagent._facade import lazy_exports

if TYPE_CHECKING:
    from foxagent.batch._input import (
        BatchInputError as BatchInputError,
        Question as Question,
    )
    from foxagent.batch._job import (
        BatchJob as BatchJob,
        BatchSummary as BatchSummary,
        run_batch as run_batch,
    )
    from foxagent.batch._output import BatchOutputError as BatchOutputError
    from foxagent.batch._ray import run_batch_on_ray as run_batch_on_ray

__all__ = [
    "BatchInputError",
    "BatchJob",
    "BatchOutputError",
    "BatchSummary",
    "Question",
    "run_batch",
    "run_batch_on_ray",
]

_EXPORTS = {
    "BatchInputError": "foxagent.batch._input",
    "BatchJob": "foxagent.batch._job",
    "BatchOutputError": "foxagent.batch._output",
    "BatchSummary": "foxagent.batch._job",
    "Question": "foxagent.batch._input",
    "run_batch": "foxagent.batch._job",
    "run_batch_on_ray": "foxagent.batch._ray",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
