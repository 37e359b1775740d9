"""`foxagent.batch` end to end against FakeVLLMServer: answers, tool calls, error lines, bad
input lines, the resume (after a cancelled job, a torn last line, a finished job) and flat
memory. The command line is in test_batch_cli.py, Ray in test_batch_ray.py."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foxagent import Agent, UserError
from foxagent.batch import BatchInputError, BatchOutputError, BatchSummary, run_batch
from foxagent.batch._job import BatchJob
from foxagent.models.vllm import VLLMModel
from foxagent.testing import FakeVLLMServer, FunctionModel, Reply
from tests.conftest import get_weather

CALL = '{"name": "get_weather", "parameters": {"location": "台北"}}'


def reply_for(body: dict[str, Any]) -> Reply | str:
    """The fake model: a weather question calls the tool, 'fail' is refused with HTTP 400,
    'slow ...' waits a little, anything else is answered as ``ANS:<question>``."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return f"<answer>天氣：{json.loads(last['content'])['temperature']}</answer>"
    question = str(last["content"])
    if question == "fail":
        return Reply(status=400, text="this question is refused")
    if question.startswith("weather"):
        return CALL
    if question.startswith("slow"):
        return Reply(text=f"<answer>ANS:{question}</answer>", delay=0.05)
    return f"<answer>ANS:{question}</answer>"


@pytest.fixture
def server() -> Iterator[FakeVLLMServer]:
    with FakeVLLMServer(reply_for) as fake:
        yield fake


def agent_for(server: FakeVLLMServer) -> Agent:
    return Agent(tools=[get_weather], model=VLLMModel(server.base_url, backoff=0.01))


def write_questions(path: Path, rows: list[dict[str, Any]] | list[str]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read_answers(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def asked(server: FakeVLLMServer) -> list[str]:
    """The questions the server was asked (first request of each run)."""
    return [r["messages"][-1]["content"] for r in server.requests if len(r["messages"]) <= 2]


async def run(
    server: FakeVLLMServer, questions: Path, output: Path, **options: Any
) -> BatchSummary:
    async with agent_for(server) as agent:
        return await run_batch(agent, questions, output, **options)


async def test_answers_tool_calls_and_a_failed_question_as_an_error_line(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    questions = write_questions(
        tmp_path / "q.jsonl",
        [
            {"id": "a", "question": "你好", "category": "kept out of the answer"},
            {"id": 2, "question": "weather in 台北"},
            {"id": "c", "question": "fail"},
        ],
    )
    output = tmp_path / "a.jsonl"
    summary = await run(server, questions, output, concurrency=2)

    rows = {json.dumps(row["id"]): row for row in read_answers(output)}
    assert set(rows) == {'"a"', "2", '"c"'}
    for row in rows.values():
        assert list(row) == [
            "id",
            "answer",
            "parsed",
            "tool_calls",
            "usage",
            "timings",
            "steps",
            "error",
        ]
    assert rows['"a"']["answer"] == "ANS:你好" and rows['"a"']["error"] is None
    assert rows['"a"']["parsed"]["answer"] == "ANS:你好"
    weather = rows["2"]
    assert weather["answer"] == "天氣：23" and weather["steps"] == 2
    assert [
        (c["name"], c["status"], c["arguments"]["location"]) for c in weather["tool_calls"]
    ] == [("get_weather", "ok", "台北")]
    assert weather["usage"]["total"]["total_tokens"] > 0 and len(weather["usage"]["requests"]) == 2
    assert weather["timings"]["total"] >= weather["timings"]["model"] > 0
    failed = rows['"c"']
    assert failed["answer"] is None
    assert failed["error"]["type"] == "ModelHTTPError"
    assert "refused" in failed["error"]["message"]

    assert (summary.questions, summary.answered, summary.errors) == (3, 2, {"ModelHTTPError": 1})
    assert summary.complete and not summary.ok and summary.requests == 3
    assert summary.prompt_tokens > 0 and summary.completion_tokens > 0
    assert summary.prompt_tokens + summary.completion_tokens == summary.total_tokens


async def test_history_and_a_per_question_system_prompt_reach_the_model(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    history = [{"role": "user", "content": "我叫小明"}, {"role": "assistant", "content": "你好"}]
    questions = write_questions(
        tmp_path / "q.jsonl",
        [{"id": 1, "question": "我叫什麼？", "history": history, "system_prompt": "簡短回答"}],
    )
    await run(server, questions, tmp_path / "a.jsonl")
    (request,) = server.requests
    assert request["messages"] == [
        {"role": "system", "content": "簡短回答"},
        *history,
        {"role": "user", "content": "我叫什麼？"},
    ]


async def test_bad_input_lines_are_all_named_and_nothing_is_asked(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    questions = write_questions(
        tmp_path / "q.jsonl",
        [
            {"id": "ok", "question": "fine"},
            "{not json",
            {"question": "no id"},
            {"id": "x"},
            {"id": "ok", "question": "again"},
            '["a list"]',
            {"id": True, "question": "a boolean id"},
            {"id": "h", "question": "q", "history": "not a list"},
            "",  # blank lines are skipped, not errors
        ],
    )
    output = tmp_path / "a.jsonl"
    with pytest.raises(BatchInputError) as raised:
        await run(server, questions, output)
    problems = dict(raised.value.problems)
    assert sorted(problems) == [2, 3, 4, 5, 6, 7, 8]
    assert "not JSON" in problems[2]
    assert problems[3] == 'no "id"'
    assert '"question" is missing' in problems[4]
    assert problems[5] == 'id "ok" again (first on line 1)'
    assert "a list" in problems[6]
    assert "boolean" in problems[7]
    assert "line 5: id" in str(raised.value) and "nothing was asked" in str(raised.value)
    assert server.requests == []
    assert not output.exists()


async def test_a_cancelled_job_resumes_without_duplicates_or_repeated_requests(
    tmp_path: Path,
) -> None:
    ids = [f"q{number:03d}" for number in range(60)]
    questions = write_questions(
        tmp_path / "q.jsonl", [{"id": i, "question": f"slow {i}"} for i in ids]
    )
    output = tmp_path / "a.jsonl"
    with FakeVLLMServer(reply_for) as first:
        async with agent_for(first) as agent:
            ten = asyncio.Event()

            def note(summary: BatchSummary) -> None:
                if summary.done >= 10:
                    ten.set()

            job = asyncio.ensure_future(
                run_batch(agent, questions, output, concurrency=4, on_progress=note)
            )
            await ten.wait()
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
    written = [row["id"] for row in read_answers(output)]
    assert 10 <= len(written) < len(ids)  # the questions in flight were dropped, not written

    with FakeVLLMServer(reply_for) as second:
        summary = await run(second, questions, output, concurrency=8)
        again = asked(second)
    final = [row["id"] for row in read_answers(output)]
    assert sorted(final) == ids  # every id once
    assert sorted(again) == sorted(f"slow {i}" for i in ids if i not in written)
    assert (summary.skipped, summary.answered, summary.pending) == (
        len(written),
        60 - len(written),
        0,
    )


async def test_a_torn_last_line_is_cut_off_and_its_question_asked_again(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    questions = write_questions(
        tmp_path / "q.jsonl", [{"id": i, "question": f"n{i}"} for i in range(3)]
    )
    output = tmp_path / "a.jsonl"
    done = {"id": 0, "answer": "ANS:n0", "error": None}
    torn = b'{"id": 1, "answer": "ANS:n1", "err'  # no newline: a crash during the write
    output.write_bytes(json.dumps(done).encode() + b"\n" + torn)
    summary = await run(server, questions, output)
    rows = read_answers(output)
    assert len(rows) == 3 and sorted(row["id"] for row in rows) == [0, 1, 2]
    assert rows[0] == done  # the complete line is kept as it was
    assert sorted(asked(server)) == ["n1", "n2"]
    assert summary.cut == len(torn) and summary.skipped == 1
    assert output.read_bytes().endswith(b"\n")


async def test_a_finished_job_run_again_makes_no_request(tmp_path: Path) -> None:
    questions = write_questions(
        tmp_path / "q.jsonl",
        [{"id": i, "question": "weather" if i % 2 else "fail"} for i in range(6)],
    )
    output = tmp_path / "a.jsonl"
    with FakeVLLMServer(reply_for) as first:
        await run(first, questions, output)
    before = output.read_bytes()
    with FakeVLLMServer([]) as second:  # an empty script: any request would fail
        summary = await run(second, questions, output)
        assert second.requests == []
    assert output.read_bytes() == before
    assert (summary.skipped, summary.answered, summary.failed) == (6, 0, 0)
    assert summary.earlier_errors == {"ModelHTTPError": 3} and not summary.ok


async def test_retry_errors_asks_the_failed_questions_again(tmp_path: Path) -> None:
    questions = write_questions(
        tmp_path / "q.jsonl", [{"id": "a", "question": "fine"}, {"id": "b", "question": "fail"}]
    )
    output = tmp_path / "a.jsonl"
    with FakeVLLMServer(reply_for) as first:
        await run(first, questions, output)
    assert {row["id"]: bool(row["error"]) for row in read_answers(output)} == {
        "a": False,
        "b": True,
    }
    with FakeVLLMServer(["<answer>now it works</answer>"]) as second:
        summary = await run(second, questions, output, retry_errors=True)
        assert asked(second) == ["fail"]
    rows = {row["id"]: row for row in read_answers(output)}
    assert len(read_answers(output)) == 2
    assert rows["b"]["answer"] == "now it works" and rows["b"]["error"] is None
    assert (summary.retried, summary.skipped, summary.answered) == (1, 1, 1) and summary.ok


async def test_an_answers_file_with_a_foreign_line_is_not_touched(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    questions = write_questions(tmp_path / "q.jsonl", [{"id": 1, "question": "x"}])
    output = tmp_path / "a.jsonl"
    output.write_text("some notes\n", encoding="utf-8")
    with pytest.raises(BatchOutputError, match="line 1 is not a result line"):
        await run(server, questions, output)
    assert server.requests == [] and output.read_text(encoding="utf-8") == "some notes\n"


async def test_a_second_job_on_the_same_answers_file_stops_before_asking(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    # Two jobs on one file used to ask every question twice (384 lines for 200 questions).
    from foxagent.batch._output import AnswersFile

    questions = write_questions(tmp_path / "q.jsonl", [{"id": 1, "question": "x"}])
    output = tmp_path / "a.jsonl"
    first, _ = AnswersFile.open(output)  # a job in progress holds the file
    try:
        with pytest.raises(BatchOutputError, match="another foxagent batch is writing"):
            await run(server, questions, output)
        assert server.requests == []
    finally:
        await first.close()
    await run(server, questions, output)  # released: the next job runs
    assert [row["id"] for row in read_answers(output)] == [1]


async def test_concurrency_is_the_cap_on_requests_in_flight(tmp_path: Path) -> None:
    questions = write_questions(
        tmp_path / "q.jsonl", [{"id": i, "question": f"slow {i}"} for i in range(24)]
    )
    with FakeVLLMServer(reply_for) as server:
        await run(server, questions, tmp_path / "a.jsonl", concurrency=5)
        assert server.peak_in_flight == 5
    with pytest.raises(Exception, match="concurrency must be a positive integer"):
        BatchJob(Agent(model=FunctionModel(str)), questions, tmp_path / "b.jsonl", concurrency=0)


async def test_progress_is_reported_after_each_question(
    server: FakeVLLMServer, tmp_path: Path
) -> None:
    questions = write_questions(
        tmp_path / "q.jsonl", [{"id": i, "question": "x"} for i in range(4)]
    )
    seen: list[int] = []
    started: list[int] = []
    await run(
        server,
        questions,
        tmp_path / "a.jsonl",
        on_progress=lambda s: seen.append(s.done),
        on_start=lambda s: started.append(s.pending),
    )
    assert seen == [0, 1, 2, 3, 4] and started == [4]


def _peak_memory(tmp_path: Path, count: int) -> int:
    """tracemalloc's peak while a job answers ``count`` questions from an in-process model."""
    questions = write_questions(
        tmp_path / f"q{count}.jsonl",
        [{"id": i, "question": f"question number {i} " + "字" * 50} for i in range(count)],
    )
    model = FunctionModel(lambda request: "<answer>" + "答" * 200 + "</answer>")

    def forget(summary: BatchSummary) -> None:
        model.requests.clear()  # the test double records requests; the job keeps nothing

    async def job() -> BatchSummary:
        return await run_batch(
            Agent(model=model), questions, tmp_path / f"a{count}.jsonl", on_progress=forget
        )

    tracemalloc.start()
    try:
        summary = asyncio.run(job())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.answered == count
    return peak


def test_memory_stays_flat_as_the_questions_grow(tmp_path: Path) -> None:
    small, large = _peak_memory(tmp_path, 200), _peak_memory(tmp_path, 2000)
    # Ten times the questions: only the ids are kept (measured: about 160 bytes a question);
    # one kept result (its transcript, records and parsed answer) would be several KB.
    assert (large - small) / 1800 < 400, (small, large)


def test_the_facade_table_all_and_type_checking_imports_agree() -> None:
    from tests.test_public_api import _type_checking_imports

    module = importlib.import_module("foxagent.batch")
    exports: dict[str, str] = module._EXPORTS
    assert sorted(module.__all__) == sorted(exports)
    assert _type_checking_imports(module) == exports
    for name, home in exports.items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name)


def test_ray_without_its_extra_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foxagent.batch import run_batch_on_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    questions = write_questions(tmp_path / "q.jsonl", [{"id": 1, "question": "x"}])
    with pytest.raises(UserError, match=r"pip install 'foxagent\[ray\]'"):
        run_batch_on_ray(lambda: Agent(model=FunctionModel(str)), questions, tmp_path / "a.jsonl")
