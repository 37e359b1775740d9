"""Proof under load and faults, for services that embed foxagent: 1,000 concurrent runs through
four agents sharing one ``VLLMModel``, against one ``FakeVLLMServer`` that injects HTTP 500, 503
and 429 (with ``Retry-After``) errors, dropped connections, malformed and truncated bodies,
malformed tool calls, slow and hanging replies, and tools that are slow, hang or raise.

Every run must end as its plan says (an answer, or the planned ``RunError`` subclass), within
its deadline, and nothing may be left behind: tasks, threads, file descriptors, connections,
server-side requests. Latency and memory are printed (``pytest -s``), never asserted: CI machines
are noisy. ``benchmarks/bench_faults.py`` runs the same harness for 10,000 runs and checks that
memory stays flat.

The last tests reproduce, minimally, the foxagent bugs this harness found (streams that end
early taken for answers, streams not retried before their first byte, request slots held during
a retry's wait); they guard the fixes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

import foxagent
from benchmarks.load_harness import (
    LoadServer,
    LoopLag,
    Outcome,
    Responder,
    check_faults_seen,
    check_outcomes,
    check_tools,
    close_agents,
    deadline_margin,
    extra_threads,
    held_sockets,
    latency_line,
    make_agents,
    make_model,
    max_overshoot,
    open_fds,
    other_tasks,
    outcome_table,
    peak_rss_mib,
    rss_mib,
    run_batch,
    scenario_table,
    server_port,
    wait_for,
)
from benchmarks.load_plans import KNOWN_BUGS, TOOL_COUNTS, make_plans
from foxagent import (
    Agent,
    ModelConnectionError,
    ModelResponseError,
    RunError,
)
from foxagent._threads import tool_threads
from foxagent.events import ModelRetry, RunEvent
from foxagent.models.vllm import VLLMModel
from foxagent.testing import Reply

RUNS = 1_000


@dataclass(kw_only=True)
class LoadReport:
    outcomes: list[Outcome]
    seconds: float
    margin: float  # how far past its deadline a run may end, from the loop's measured lag
    lag: float
    peak_in_flight: int
    threads_inside: list[str]  # extra threads while the loop still runs (after aclose)
    tasks_left: list[str]
    sockets_left: Counter[str]
    abandoned: int


async def drive(
    server: LoadServer,
    responder: Responder,
    cap: int | None,
    threads_before: set[threading.Thread],
) -> LoadReport:
    plans = make_plans(RUNS)
    responder.new_batch(plans)
    agents = make_agents(make_model(server.base_url, max_concurrent_requests=cap))
    started = time.monotonic()
    async with LoopLag() as lag:
        outcomes = await run_batch(agents, plans)
    seconds = time.monotonic() - started
    await close_agents(agents)
    # Closing a transport, finishing a cancelled Agent.iter's aclose and the server noticing a
    # client gone each take a few loop turns; poll instead of sleeping a fixed time.
    await wait_for(lambda: not other_tasks())
    port = server_port(server)
    await wait_for(lambda: not held_sockets(port))
    await wait_for(lambda: server.abandoned >= responder.served["hang_reply"])
    return LoadReport(
        outcomes=outcomes,
        seconds=seconds,
        margin=deadline_margin(lag),
        lag=lag.worst,
        peak_in_flight=server.peak_in_flight,
        threads_inside=extra_threads(threads_before),
        tasks_left=[repr(task) for task in other_tasks()],
        sockets_left=held_sockets(port),
        abandoned=server.abandoned,
    )


# With a cap, 1,000 runs queue for 64 request slots (a service protecting its vLLM); without
# one, they share the connection pool (512) and the server sees whatever the client produces.
@pytest.mark.parametrize("cap", [64, None], ids=["cap64", "uncapped"])
def test_1000_concurrent_runs_with_faults_end_typed_in_time_and_leave_nothing_behind(
    cap: int | None,
) -> None:
    gc.collect()
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    rss_before = rss_mib()
    TOOL_COUNTS.clear()
    responder = Responder()
    server = LoadServer(responder)
    server.start()
    try:
        # A fresh event loop (not pytest's): asyncio.run closes it and its default executor,
        # so the thread and descriptor counts after it are foxagent's alone.
        report = asyncio.run(drive(server, responder, cap, threads_before))
    finally:
        server.stop()
    gc.collect()
    outcomes = report.outcomes
    problems, known_bugs = check_outcomes(outcomes, margin=report.margin)

    print(f"\n{RUNS} runs in {report.seconds:.2f} s: {outcome_table(outcomes)}")
    print("\n".join(scenario_table(outcomes)))
    print(latency_line(outcomes))
    short = [o for o in outcomes if o.plan.scenario.short_deadline]
    worst = max(short, key=lambda o: o.wall - o.plan.deadline)
    print(
        f"deadline overshoot: max {max_overshoot(short):+.3f} s over the short deadlines "
        f"({worst.plan.scenario.name}, {worst.plan.mode}, via {worst.plan.via}; allowed "
        f"{report.margin:.2f} s, worst event-loop lag {report.lag * 1000:.0f} ms)"
    )
    print(f"faults served: {dict(responder.served.most_common())}")
    print(f"tools: {dict(TOOL_COUNTS)}; server peak in flight {report.peak_in_flight}")
    print(
        f"memory: peak RSS {peak_rss_mib():.0f} MiB (the whole pytest process so far); "
        f"RSS {rss_before:.0f} MiB before, {rss_mib():.0f} MiB after"
    )
    for bug, count in known_bugs.items():
        print(f"KNOWN FOXAGENT BUG hit {count} times: {bug}")

    # 1-2. Every run ended as planned: an answer or its typed RunError, nothing else.
    kinds = Counter(o.kind for o in outcomes)
    assert len(outcomes) == RUNS and sum(kinds.values()) == RUNS
    assert not [o for o in outcomes if o.kind.startswith(("unexpected", "hung"))]
    typed = {k for k in kinds if issubclass(getattr(foxagent, k, type(None)), RunError)}
    assert set(kinds) - typed <= {"answered", "cancelled"}, kinds
    assert not problems, f"{len(problems)} runs off plan:\n" + "\n".join(problems[:30])
    assert sum(1 for o in outcomes if o.kind == "answered") > RUNS // 2
    assert set(known_bugs) <= {f"{s}/{m}: {b[1]}" for (s, m), b in KNOWN_BUGS.items()}
    # Every fault kind was served, every request reached the script (none refused by the
    # fake's request checks), transcripts never mixed between runs, the cap held.
    assert not check_faults_seen(responder.served, [o.plan for o in outcomes])
    assert responder.served["plain"] + responder.served["stream"] == len(server.requests)
    assert responder.served["stream"] == sum(1 for r in server.requests if r.get("stream"))
    assert responder.mixups == 0
    assert cap is None or report.peak_in_flight <= cap
    # 3. Nothing ran past its deadline (checked per run in check_outcomes, shown here too).
    assert max_overshoot(outcomes) <= report.margin
    # 4. Nothing left behind: slow and hanging tools were cancelled, requests that outlived
    # their run were closed (the server saw the client leave), no task, socket, thread or
    # descriptor remains.
    assert not check_tools(TOOL_COUNTS)
    assert report.abandoned == responder.served["hang_reply"]
    assert not report.tasks_left, report.tasks_left
    assert not report.sockets_left, report.sockets_left
    # Inside the loop the only extra threads are the server's, the default executor's workers
    # (asyncio.run shuts them down) and foxagent's pool for sync tools: daemon threads, reused
    # by later runs, bounded, and none of them held by a call that never returned.
    pooled = ("asyncio_", "foxagent-tool-")
    assert {n for n in report.threads_inside if not n.startswith(pooled)} == {"FakeVLLMServer"}
    left = extra_threads(threads_before)
    pool = [name for name in left if name.startswith("foxagent-tool-")]
    assert len(pool) <= tool_threads.size and tool_threads.abandoned == 0
    assert [name for name in left if name not in pool] == []
    assert open_fds() - fds_before == set()


# --- bugs found under load, reproduced minimally (regression tests) ----------------------------


async def _stream_outcome(body: str) -> str:
    with LoadServer([Reply(body=body)] * 3) as server:
        model = VLLMModel(server.base_url, model_name="foxbrain", backoff=0.01, max_retries=2)
        async with Agent(model=model, system_prompt=None, stream=True) as agent:
            try:
                result = await agent.arun("?", timeout=5)
            except (ModelResponseError, ModelConnectionError) as error:
                return type(error).__name__
    return f"answered {result.answer!r}"


_CHUNK = '{"id":"c","object":"chat.completion.chunk","created":1,"model":"foxbrain","choices":'


# Found by the truncated_body and malformed_body scenarios: the stream used to end with
# StreamEnd whenever the body ended, so an empty 200, a body with no SSE line, or a stream cut
# cleanly before its finish_reason was a final answer ("" or the cut text, e.g. "12" for 1234).
@pytest.mark.parametrize(
    "body",
    [
        pytest.param("", id="empty-200"),
        pytest.param("{not json", id="not-sse"),
        pytest.param(
            f'data: {_CHUNK}[{{"index":0,"delta":{{"content":"<answer>12"}}}}]}}\n\n',
            id="cut-before-finish",
        ),
    ],
)
async def test_a_stream_that_ends_before_its_finish_is_an_error(body: str) -> None:
    assert await _stream_outcome(body) in ("ModelResponseError", "ModelConnectionError")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The streaming path used to turn aiohttp.ClientError into ModelConnectionError at once, so a
# refused or reset connection was retried without streaming and fatal with it.
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_connection_errors_before_the_first_byte_are_retried(stream: bool) -> None:
    model = VLLMModel(
        f"http://127.0.0.1:{_closed_port()}/v1", model_name="foxbrain", backoff=0.01, max_retries=2
    )
    events: list[RunEvent] = []
    async with Agent(model=model, system_prompt=None, stream=stream) as agent:
        with pytest.raises(ModelConnectionError):
            await agent.arun("?", on_event=events.append, timeout=5)
    assert len([e for e in events if isinstance(e, ModelRetry)]) == 2


# Without streaming, VLLMModel.request used to keep its max_concurrent_requests slot while it
# slept before a retry (Retry-After may ask for a minute), so a 429 storm stalled every other
# run of the model although the server was free; the streaming path released it.
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_run_waiting_to_retry_does_not_hold_a_request_slot(stream: bool) -> None:
    limited = threading.Event()  # set on the server's thread

    def script(body: dict[str, Any]) -> Reply:
        if body["messages"][-1]["content"] == "first" and not limited.is_set():
            limited.set()
            return Reply(status=429, text="Too many requests; retry after 3 s")
        return Reply(text="<answer>ok</answer>")

    with LoadServer(script) as server:
        model = VLLMModel(server.base_url, model_name="foxbrain", max_concurrent_requests=1)
        async with Agent(model=model, system_prompt=None, stream=stream) as agent:
            first = asyncio.ensure_future(agent.arun("first", timeout=10))
            await wait_for(limited.is_set)
            try:
                # The server is idle; only the first run's 3 s wait could stand in the way.
                second = await agent.arun("second", timeout=1.0)
            finally:
                first.cancel()  # its 3 s wait proves nothing more
                with contextlib.suppress(asyncio.CancelledError, RunError):
                    await first
    assert second.answer == "ok"
