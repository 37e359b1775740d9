"""The harness of the load-and-faults proof: runs the plans of `benchmarks.load_plans`
concurrently through four ``Agent``s sharing one ``VLLMModel``, against one ``FakeVLLMServer``
that injects their faults, and checks that each run ended in its planned answer or typed
``RunError``, in time, leaving nothing behind.

Used by ``tests/test_load_faults.py`` (1,000 runs, in CI) and ``benchmarks/bench_faults.py``
(10,000 runs in batches, memory must stay flat).

- `Responder` is the server's script function. It finds the run from the ``[run N]`` tag in the
  question and the step from the number of tool results in the history, and counts attempts per
  (run, step), so its answer depends only on the run's plan and never on how concurrent requests
  interleave. Retries send the same step again, so "fail the first attempt" is well defined.
- `run_batch` drives the runs; `check_outcomes` compares them with their plans run by run, so
  the test checks the exact mix, not a plausible-looking one.
- The rest measures (latency, event-loop lag, memory) and finds leaks (tasks, threads, file
  descriptors, sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import resource
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from benchmarks.load_plans import (
    KNOWN_BUGS,
    LONG_DEADLINE,
    MAX_STEPS,
    MODEL_RETRIES,
    RETRY_AFTER_SHORT,
    SHORT_DEADLINE,
    TOOL_RETRIES,
    TOOLS,
    Mode,
    RunPlan,
)
from foxagent import Agent, RunError
from foxagent.events import FinalAnswer, ModelRetry, RunEvent, ToolStarted
from foxagent.models.vllm import VLLMModel
from foxagent.testing import FakeVLLMServer, Reply

# A stopped run may finish this late after its deadline: the timer, the cancelled task and its
# cleanup each wait their turn on a loop busy with 1,000 runs (and, on a noisy machine, for the
# CPU). The allowance grows with the loop's measured lag, so a hang never passes for noise.
DEADLINE_MARGIN = 0.5  # seconds, plus LAG_FACTOR times the worst loop lag seen in the batch
LAG_FACTOR = 3

# --- the server side ---------------------------------------------------------------------------

_RUN_TAG = re.compile(r"^\[run (\d+)\]")
_RETRY_AFTER = re.compile(r"retry after (\d+) s")


class LoadServer(FakeVLLMServer):
    """``FakeVLLMServer`` that also sends ``Retry-After`` on a 429 whose message names one.

    ``Reply`` has no way to set headers; real rate limiters (and proxies in front of vLLM)
    send ``Retry-After``, and ``VLLMModel`` honours it, so the load test needs it.
    """

    def _error(self, status: int, message: str) -> web.Response:
        response = super()._error(status, message)
        if status == 429 and (match := _RETRY_AFTER.search(message)):
            response.headers["Retry-After"] = match.group(1)
        return response


class Responder:
    """The server's script function (called on the server's thread, one request at a time)."""

    def __init__(self) -> None:
        self.plans: dict[int, RunPlan] = {}
        self.attempts: Counter[tuple[int, int]] = Counter()
        self.served: Counter[str] = Counter()  # fault kind -> replies served, over all batches
        self.mixups = 0  # a tool result that belongs to another run

    def new_batch(self, plans: Iterable[RunPlan]) -> None:
        """Forget the last batch (call between batches, while no request is in flight)."""
        self.plans = {plan.index: plan for plan in plans}
        self.attempts.clear()

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages: list[dict[str, Any]] = body["messages"]
        question = next(m["content"] for m in messages if m["role"] == "user")
        match = _RUN_TAG.match(question)
        if match is None:
            raise ValueError(f"no run tag in {question!r}")
        plan = self.plans[int(match.group(1))]
        step = 1 + sum(1 for m in messages if m["role"] == "tool")  # one call per step
        attempt = self.attempts[(plan.index, step)]
        self.attempts[(plan.index, step)] += 1
        allowed = _products(plan)
        for m in messages:
            content = str(m.get("content"))
            if m["role"] == "tool" and content.isdigit():  # a multiply result (errors are text)
                self.mixups += content not in allowed
        reply, kind = plan.scenario.script(plan, step, attempt, messages)
        self.served[kind] += 1
        self.served["stream" if body.get("stream") else "plain"] += 1
        return reply


def _products(plan: RunPlan) -> set[str]:
    """The multiply results this run may see: its own product, and the step-limit scenario's
    ``(a + step) * b``."""
    return {plan.product} | {str((plan.a + s) * plan.b) for s in range(1, MAX_STEPS + 1)}


# --- the client side ---------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class Outcome:
    """How one run ended."""

    plan: RunPlan
    kind: str  # "answered", "cancelled", a RunError subclass name, or "unexpected ..."/"hung"
    wall: float
    answer: str | None = None
    detail: str = ""
    retries: list[float] = field(default_factory=list)  # ModelRetry delays, when events are seen
    tool_statuses: list[str] = field(default_factory=list)
    http_status: int | None = None


def make_model(base_url: str, *, max_concurrent_requests: int | None = 64) -> VLLMModel:
    return VLLMModel(
        base_url,
        model_name="foxbrain",
        backoff=0.01,
        max_retries=MODEL_RETRIES,
        max_concurrent_requests=max_concurrent_requests,
    )


AgentKey = tuple[Mode, bool]  # (mode, short deadline)


def make_agents(model: VLLMModel) -> dict[AgentKey, Agent]:
    """Four agents sharing one model (one connection pool, one in-flight cap), as a service
    shares one vLLM deployment between endpoints: streaming or not, and a short or long
    ``run_timeout``. ``Agent.iter`` runs get their deadline from the agent's ``run_timeout``;
    ``arun`` runs pass ``timeout=`` to the long-deadline agent (the per-run override)."""
    common: dict[str, Any] = {
        "model": model,
        "system_prompt": None,
        "max_steps": MAX_STEPS,
        "max_retries": TOOL_RETRIES,
        "tool_timeout": 10.0,
    }
    return {
        (mode, short): Agent(
            tools=TOOLS,
            stream=mode == "stream",
            run_timeout=SHORT_DEADLINE if short else LONG_DEADLINE,
            **common,
        )
        for mode in ("plain", "stream")
        for short in (False, True)
    }


async def close_agents(agents: dict[AgentKey, Agent]) -> None:
    for agent in agents.values():
        await agent.aclose()  # they share one model: the first closes it, the rest are no-ops


async def run_one(agents: dict[AgentKey, Agent], plan: RunPlan) -> Outcome:
    """Drive one run as planned; never raises except on the caller's own cancellation."""
    events: list[RunEvent] = []
    started = time.monotonic()
    outcome = Outcome(plan=plan, kind="?", wall=0.0)
    try:
        result = None
        if plan.via == "iter":
            agent = agents[(plan.mode, plan.scenario.short_deadline)]
            async for event in agent.iter(plan.question):
                events.append(event)
                if plan.scenario.via == "iter" and isinstance(event, ToolStarted):
                    # The caller leaves (a plain break, as a web handler whose client went
                    # away would): Agent.iter must cancel the run and its tool.
                    outcome.kind = "cancelled"
                    break
                if isinstance(event, FinalAnswer):
                    result = event.result
        else:
            agent = agents[(plan.mode, False)]
            on_event = events.append if plan.via == "events" else None
            result = await agent.arun(plan.question, timeout=plan.deadline, on_event=on_event)
        if result is not None:
            outcome.kind = "answered"
            outcome.answer = result.answer
            outcome.tool_statuses = [record.status for record in result.tool_calls]
        elif outcome.kind != "cancelled":
            outcome.kind = "unexpected: iter ended without a final answer or an error"
    except RunError as error:
        outcome.kind = type(error).__name__
        outcome.detail = str(error)[:200]
        outcome.http_status = getattr(error, "status", None)
    except Exception as error:  # the proof: nothing else may escape a run
        outcome.kind = f"unexpected {type(error).__name__}"
        outcome.detail = repr(error)[:300]
    outcome.wall = time.monotonic() - started
    outcome.retries = [e.delay for e in events if isinstance(e, ModelRetry)]
    return outcome


async def run_batch(
    agents: dict[AgentKey, Agent], plans: Sequence[RunPlan], *, guard: float | None = None
) -> list[Outcome]:
    """All ``plans`` at once. ``guard`` seconds after the last deadline, runs still going are
    reported as "hung" and cancelled, so a foxagent hang fails the check instead of CI."""
    guard = guard if guard is not None else max(p.deadline for p in plans) + 30.0
    started = time.monotonic()
    tasks = [asyncio.ensure_future(run_one(agents, plan)) for plan in plans]
    done, pending = await asyncio.wait(tasks, timeout=guard)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    outcomes = []
    for plan, task in zip(plans, tasks, strict=True):
        if task in done:
            outcomes.append(task.result())
        else:
            wall = time.monotonic() - started
            outcomes.append(Outcome(plan=plan, kind="hung", wall=wall, detail="still running"))
    return outcomes


# Tool call statuses of the answered runs (the first step's call; the answer needs none).
_TOOL_STATUSES: dict[str, list[list[str]]] = {
    "direct": [[]],
    "tool": [["ok"]],
    "sync_tool": [["ok"]],
    "slow_reply": [["ok"]],
    "http500_once": [["ok"]],
    "http503_once": [["ok"]],
    "http429_once": [["ok"]],
    "drop_once": [["ok"]],
    "tool_raises": [["error"]],
    "tool_slow": [["timeout"]],
    "unknown_tool": [["rejected"]],
    # Recovered and run without streaming; streamed, vLLM sends the cut arguments incomplete.
    "cut_call": [["ok"], ["rejected"]],
    # Streamed, vLLM swallows the text (an empty reply for many generated tokens), so the
    # agent asks again with the parser off and recovers the call from the raw text.
    "quoted_call": [["ok"]],
}
# Retries a run absorbed per scenario, seen through ModelRetry events (runs driven with events).
_RETRIES_SEEN = {"http500_once": 2, "http503_once": 2, "http429_once": 2, "drop_once": 2}


def check_outcomes(outcomes: Sequence[Outcome], *, margin: float) -> tuple[list[str], Counter[str]]:
    """``(problems, known bugs hit)``: each run against its plan, one line per problem;
    ``margin`` is how far past its deadline a run may end (see `deadline_margin`)."""
    problems: list[str] = []
    known: Counter[str] = Counter()
    for o in outcomes:
        plan, scenario = o.plan, o.plan.scenario
        where = f"run {plan.index} ({scenario.name}, {plan.mode}, via {plan.via})"
        if o.kind not in plan.expected:
            bug = KNOWN_BUGS.get((scenario.name, plan.mode))
            if bug is not None and o.kind == bug[0]:
                known[f"{scenario.name}/{plan.mode}: {bug[1]}"] += 1
                continue
            problems.append(f"{where}: expected {plan.expected}, got {o.kind}: {o.detail}")
            continue
        if o.wall > plan.deadline + margin:
            problems.append(
                f"{where}: took {o.wall:.2f} s, deadline {plan.deadline:g} s + {margin:.2f} s"
            )
        if o.kind == "answered":
            want = "" if scenario.empty_stream_answer and plan.mode == "stream" else plan.product
            if o.answer != want:
                problems.append(f"{where}: answer {o.answer!r}, expected {want!r}")
        wanted_statuses = _TOOL_STATUSES.get(scenario.name)
        if o.kind == "answered" and wanted_statuses and o.tool_statuses not in wanted_statuses:
            problems.append(f"{where}: tool calls {o.tool_statuses}, expected {wanted_statuses}")
        if o.kind == "ModelHTTPError":
            want_status = 400 if scenario.name == "http400" else 500
            if o.http_status != want_status:
                problems.append(f"{where}: HTTP {o.http_status}, expected {want_status}")
        expected_retries = _RETRIES_SEEN.get(scenario.name)
        seen_events = plan.via != "arun"
        if o.kind == "answered" and seen_events and expected_retries is not None:
            if len(o.retries) != expected_retries:
                problems.append(f"{where}: {len(o.retries)} retries, expected {expected_retries}")
            if scenario.name == "http429_once" and o.retries != [float(RETRY_AFTER_SHORT)] * 2:
                problems.append(f"{where}: retry delays {o.retries}, expected Retry-After")
    return problems, known


def check_faults_seen(served: Counter[str], plans: Sequence[RunPlan]) -> list[str]:
    """Every fault kind the plan contains was actually served by the server."""
    wanted = {"ok", "plain", "stream"}
    for plan in plans:
        probe = plan.scenario.script(plan, 1, 0, [{"role": "user", "content": plan.question}])
        wanted.add(probe[1])
    return [f"fault {kind!r} never served" for kind in sorted(wanted) if served[kind] == 0]


def check_tools(counts: Counter[str]) -> list[str]:
    """Every started slow or hanging tool was stopped (cancelled), none left running."""
    problems = []
    for name in ("slow_lookup", "hang"):
        if counts[name] != counts[f"{name} cancelled"]:
            problems.append(
                f"{name}: {counts[name]} started, {counts[f'{name} cancelled']} cancelled"
            )
    return problems


# --- measurements ------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency_line(outcomes: Sequence[Outcome]) -> str:
    walls = [o.wall for o in outcomes]
    answered = [o.wall for o in outcomes if o.kind == "answered"]
    return (
        f"latency p50 {percentile(walls, 0.5):.2f} s, p99 {percentile(walls, 0.99):.2f} s, "
        f"max {max(walls):.2f} s (answered runs: p50 {percentile(answered, 0.5):.2f} s, "
        f"p99 {percentile(answered, 0.99):.2f} s; mean {statistics.fmean(walls):.2f} s)"
    )


class LoopLag:
    """The event loop's worst lag while the ``async with`` block runs: how late a 10 ms sleep
    wakes up. It is what a busy loop adds to every deadline (see `deadline_margin`)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            due = time.monotonic() + 0.01
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, time.monotonic() - due)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.ensure_future(self._watch())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def deadline_margin(lag: LoopLag) -> float:
    return DEADLINE_MARGIN + LAG_FACTOR * lag.worst


def max_overshoot(outcomes: Sequence[Outcome]) -> float:
    """The most any run went past its deadline (negative: all finished before)."""
    return max(o.wall - o.plan.deadline for o in outcomes)


def rss_mib() -> float:
    """Current resident memory (not the peak), from /proc/self/statm."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def live_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


# --- leaks -------------------------------------------------------------------------------------


def open_fds() -> set[str]:
    """This process's open file descriptors, as ``"fd -> target"``."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd is gone by now
            found.add(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
    return found


def tcp_sockets(port: int) -> Counter[str]:
    """TCP sockets with ``port`` at either end, by state (from /proc/net/tcp and tcp6)."""
    states = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN"}
    found: Counter[str] = Counter()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)
            for line in lines:
                local, remote, state = line.split()[1:4]
                if port in (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)):
                    found[states.get(state, f"state {state}")] += 1
    return found


def held_sockets(port: int) -> Counter[str]:
    """Connections on ``port`` that still hold a descriptor (the listener and TIME_WAIT, which
    holds none, left out)."""
    return Counter({k: v for k, v in tcp_sockets(port).items() if k not in ("LISTEN", "TIME_WAIT")})


def server_port(server: FakeVLLMServer) -> int:
    port = urlsplit(server.base_url).port
    assert port is not None
    return port


async def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``condition`` (closing sockets and finishing tasks take a few loop turns)."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.02)
    return True


def other_tasks() -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks() if task is not current}


def extra_threads(baseline: set[threading.Thread]) -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t not in baseline and t.is_alive())


def outcome_table(outcomes: Sequence[Outcome]) -> str:
    kinds = Counter(o.kind for o in outcomes)
    return ", ".join(f"{kind} {count}" for kind, count in kinds.most_common())


def scenario_table(outcomes: Sequence[Outcome]) -> list[str]:
    """One line per scenario: its outcomes, plain and streaming."""
    rows: dict[str, Counter[str]] = {}
    for o in outcomes:
        rows.setdefault(o.plan.scenario.name, Counter())[f"{o.plan.mode}:{o.kind}"] += 1
    return [
        f"  {name:<18} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        for name, counts in rows.items()
    ]
