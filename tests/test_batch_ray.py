"""The batch job on a local Ray instance (``ray.init(num_cpus=2)``) against FakeVLLMServer.

The server runs in this process on 127.0.0.1; the actors are other processes and reach it by
URL. Ray's start-up costs seconds, so one test covers the job (answers, a tool call, an error
line, the resume from a done id and a torn last line) and the command line's ``--ray``.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foxagent import Agent
from foxagent.batch import run_batch_on_ray
from foxagent.models.vllm import VLLMModel
from foxagent.testing import FakeVLLMServer
from tests.conftest import get_weather
from tests.test_batch import asked, read_answers, reply_for, write_questions

ray = pytest.importorskip("ray", reason="the Ray tests need foxagent[ray]")


def make_agent(url: str) -> Agent:
    """Each actor's agent (pickled by reference: the actors import this module)."""
    return Agent(tools=[get_weather], model=VLLMModel(url, backoff=0.01))


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_the_job_on_ray_writes_the_same_lines_and_resumes(local_ray: None, tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [{"id": i, "question": f"q{i}"} for i in range(10)]
    rows += [{"id": "w", "question": "weather in 台北"}, {"id": "f", "question": "fail"}]
    questions = write_questions(tmp_path / "q.jsonl", rows)
    output = tmp_path / "a.jsonl"
    done = {"id": 0, "answer": "from an earlier run", "error": None}
    output.write_bytes(json.dumps(done).encode() + b'\n{"id": 1, "ans')  # a torn last line
    with FakeVLLMServer(reply_for) as server:
        summary = run_batch_on_ray(
            functools.partial(make_agent, server.base_url),
            questions,
            output,
            actors=1,
            concurrency=4,
            batch_size=4,
            num_cpus=1,
        )
        assert sorted(asked(server)) == sorted(
            [f"q{i}" for i in range(1, 10)] + ["weather in 台北", "fail"]
        )
    lines = read_answers(output)
    by_id = {json.dumps(row["id"]): row for row in lines}
    assert len(lines) == 12 and len(by_id) == 12
    assert lines[0] == done
    assert all(by_id[str(i)]["answer"] == f"ANS:q{i}" for i in range(1, 10))
    assert by_id['"w"']["answer"] == "天氣：23"
    assert by_id['"w"']["tool_calls"][0]["name"] == "get_weather"
    assert by_id['"f"']["error"]["type"] == "ModelHTTPError"
    assert (summary.skipped, summary.answered, summary.errors) == (1, 10, {"ModelHTTPError": 1})
    assert summary.cut > 0 and summary.complete and summary.requests == 9 + 2

    # Run again (the command line this time): nothing is asked, nothing is written.
    from foxagent.cli import _batch, _main

    before = output.read_bytes()
    with FakeVLLMServer([]) as idle:
        argv = ["batch", str(questions), "-o", str(output), "--ray", "--base-url", idle.base_url]
        out, err = io.StringIO(), io.StringIO()
        code = _batch.batch_command(vars(_main._parser().parse_args(argv)), out=out, err=err)
        assert idle.requests == []
    assert code == 1  # complete, with one error line
    assert output.read_bytes() == before
    assert "(12 already answered, skipped)" in out.getvalue()
