"""The plans of the load-and-faults proof: what each of many concurrent ``Agent`` runs against
one fault-injecting ``FakeVLLMServer`` does, and how it must end.

Everything is decided up front from a seed: `make_plans` gives each run a `Scenario` (what the
"model" does, and which faults hit it), a mode (streaming or not), a way of being driven
(``arun``, ``arun(on_event=...)`` or ``Agent.iter``) and a deadline. Every scenario states the
outcome it must end with. The tools the runs call are here too (`TOOLS`); they count what they
do in `TOOL_COUNTS`.

Running the plans and checking the outcomes against them is `benchmarks.load_harness`'s job.
Both are used by ``tests/test_load_faults.py`` (1,000 runs, in CI) and
``benchmarks/bench_faults.py`` (10,000 runs in batches, memory must stay flat).

Timing never decides an outcome: replies meant to outlive a deadline wait 60 s against a deadline
of a few seconds, and runs meant to answer get a deadline far beyond the batch's length.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from foxagent import ToolError, tool
from foxagent.testing import Reply

SEED = 20_240_917
MAX_STEPS = 4
MODEL_RETRIES = 4  # VLLMModel(max_retries=...): generous, so "fail once" always recovers
TOOL_RETRIES = 2  # Agent(max_retries=...): failed calls to one tool in a row
SLOW_TOOL_TIMEOUT = 0.2  # slow_lookup's own timeout; it sleeps far longer
SHORT_DEADLINE = 2.0  # runs planned to hit their deadline
LONG_DEADLINE = 45.0  # runs planned to finish; far beyond a 1,000-run batch on 2 cores
RETRY_AFTER_SHORT = 1  # seconds; a 429 that the run waits out
RETRY_AFTER_LONG = 30  # seconds; a 429 that outlives the run's deadline
HANG_SECONDS = 60.0  # a reply or tool that never comes back in time

Mode = Literal["plain", "stream"]
Via = Literal["arun", "events", "iter"]

# --- tools -------------------------------------------------------------------------------------

TOOL_COUNTS: Counter[str] = Counter()
"""What the tools did (calls, cancellations); the checks compare it with the plan."""


@tool
async def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: First factor.
        b: Second factor.
    """
    TOOL_COUNTS["multiply"] += 1
    return a * b


@tool
def multiply_sync(a: int, b: int) -> int:
    """Multiply two integers (a blocking library call; foxagent runs it in a worker thread).

    Args:
        a: First factor.
        b: Second factor.
    """
    TOOL_COUNTS["multiply_sync"] += 1
    return a * b


@tool(timeout=SLOW_TOOL_TIMEOUT)
async def slow_lookup(query: str) -> str:
    """Look something up in a slow index (slower than its own timeout).

    Args:
        query: What to look up.
    """
    TOOL_COUNTS["slow_lookup"] += 1
    try:
        await asyncio.sleep(HANG_SECONDS)
    except asyncio.CancelledError:
        TOOL_COUNTS["slow_lookup cancelled"] += 1
        raise
    return "never"


@tool(timeout=10 * HANG_SECONDS)
async def hang(query: str) -> str:
    """A tool whose own timeout is longer than the run's deadline: only the deadline stops it.

    Args:
        query: Anything.
    """
    TOOL_COUNTS["hang"] += 1
    try:
        await asyncio.sleep(HANG_SECONDS)
    except asyncio.CancelledError:
        TOOL_COUNTS["hang cancelled"] += 1
        raise
    return "never"


@tool
async def broken(x: int) -> int:
    """A tool with a bug (odd x) or a refusal (even x).

    Args:
        x: Any integer.
    """
    TOOL_COUNTS["broken"] += 1
    if x % 2:
        raise RuntimeError(f"disk on fire at {x}")  # a tool bug: foxagent must report it
    raise ToolError(f"{x} is not allowed")


TOOLS = (multiply, multiply_sync, slow_lookup, hang, broken)

# --- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    """One run, decided up front."""

    index: int
    scenario: Scenario
    mode: Mode
    via: Via
    a: int
    b: int
    delay: float  # for scenarios with slow (but not too slow) replies

    @property
    def question(self) -> str:
        return f"[run {self.index}] {self.a} 乘以 {self.b} 是多少？"

    @property
    def product(self) -> str:
        return str(self.a * self.b)

    @property
    def deadline(self) -> float:
        return SHORT_DEADLINE if self.scenario.short_deadline else LONG_DEADLINE

    @property
    def expected(self) -> tuple[str, ...]:
        scenario = self.scenario
        return scenario.expect_stream if self.mode == "stream" else scenario.expect


Script = Callable[[RunPlan, int, int, list[dict[str, Any]]], tuple[Reply, str]]
"""``(plan, step, attempt, messages) -> (reply, fault kind)``: what the model server does."""


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """What happens to a run, and how it must end.

    Attributes:
        name: short id, used in reports.
        weight: relative frequency in the mix.
        script: the server's behaviour for each (step, attempt).
        expect: outcome kinds accepted without streaming ("answered", "cancelled", or a
            ``RunError`` subclass name).
        expect_stream: the same with streaming (defaults to ``expect``).
        short_deadline: the run is meant to reach its deadline, so give it a short one.
        via: force how the run is driven (the consumer-leaves case needs ``Agent.iter``).
        empty_stream_answer: streaming, vLLM's parser swallows the text, so the answer is "".
    """

    name: str
    weight: int
    script: Script
    expect: tuple[str, ...]
    expect_stream: tuple[str, ...] = ()
    short_deadline: bool = False
    via: Via | None = None
    empty_stream_answer: bool = False

    def __post_init__(self) -> None:
        if not self.expect_stream:
            object.__setattr__(self, "expect_stream", self.expect)


def call(name: str, **arguments: Any) -> str:
    """The model text of one call, as Llama 3.1 writes it (vLLM's parser turns it into
    ``tool_calls``)."""
    parts = ", ".join(f'"{key}": {_json_scalar(value)}' for key, value in arguments.items())
    return f'{{"name": "{name}", "parameters": {{{parts}}}}}'


def _json_scalar(value: Any) -> str:
    return str(value) if isinstance(value, int) else f'"{value}"'


def answer(plan: RunPlan, messages: list[dict[str, Any]]) -> Reply:
    """The final answer: the last tool result when it is a number, else the product itself.

    Echoing the tool result proves each run got its own tool's result back under load (the
    result travels tool → transcript → server → answer; a mix-up shows as a wrong answer).
    """
    last = messages[-1]
    value = plan.product
    if last.get("role") == "tool" and str(last.get("content", "")).isdigit():
        value = str(last["content"])
    return Reply(text=f"<count>1</count><step>算好了。</step><answer>{value}</answer>")


def _ok(plan: RunPlan, messages: list[dict[str, Any]]) -> tuple[Reply, str]:
    return answer(plan, messages), "ok"


def _with_tool(tool_name: str) -> Script:
    def script(
        plan: RunPlan, step: int, attempt: int, messages: list[dict[str, Any]]
    ) -> tuple[Reply, str]:
        if step == 1:
            return Reply(text=call(tool_name, a=plan.a, b=plan.b)), "ok"
        return _ok(plan, messages)

    return script


_multiply_then_answer = _with_tool("multiply")


def _direct(plan: RunPlan, step: int, attempt: int, msgs: list[Any]) -> tuple[Reply, str]:
    return _ok(plan, msgs)


def _slow_reply(plan: RunPlan, step: int, attempt: int, msgs: list[Any]) -> tuple[Reply, str]:
    reply, _ = _multiply_then_answer(plan, step, attempt, msgs)
    return Reply(text=reply.text, delay=plan.delay), "slow_reply"


def _fail_first_attempt(fault: Reply, kind: str) -> Script:
    """Every step's first attempt fails with ``fault``; the retry gets the normal reply."""

    def script(
        plan: RunPlan, step: int, attempt: int, messages: list[dict[str, Any]]
    ) -> tuple[Reply, str]:
        if attempt == 0:
            return fault, kind
        return _multiply_then_answer(plan, step, attempt, messages)

    return script


def _always(fault: Reply, kind: str) -> Script:
    def script(
        plan: RunPlan, step: int, attempt: int, messages: list[dict[str, Any]]
    ) -> tuple[Reply, str]:
        return fault, kind

    return script


def _bad_call_then_answer(text: str, kind: str) -> Script:
    def script(
        plan: RunPlan, step: int, attempt: int, messages: list[dict[str, Any]]
    ) -> tuple[Reply, str]:
        if step == 1:
            return Reply(text=text.format(a=plan.a, b=plan.b)), kind
        return _ok(plan, messages)

    return script


def _call_then_answer(tool_name: str, kind: str, **arguments: Any) -> Script:
    def script(
        plan: RunPlan, step: int, attempt: int, messages: list[dict[str, Any]]
    ) -> tuple[Reply, str]:
        if step == 1:
            return Reply(text=call(tool_name, **arguments)), kind
        return _ok(plan, messages)

    return script


def _step_limit(plan: RunPlan, step: int, attempt: int, msgs: list[Any]) -> tuple[Reply, str]:
    # New arguments every step: the same call repeated would be refused (a failure) instead.
    return Reply(text=call("multiply", a=plan.a + step, b=plan.b)), "endless_calls"


def _broken_every_step(
    plan: RunPlan, step: int, attempt: int, msgs: list[Any]
) -> tuple[Reply, str]:
    return Reply(text=call("broken", x=plan.a + step)), "call_broken_tool"


def _rate_limited(seconds: int) -> Reply:
    # FakeVLLMServer's Reply has no headers; LoadServer adds Retry-After from this message.
    return Reply(status=429, text=f"Too many requests; retry after {seconds} s")


_COMPLETION_HEAD = (
    '{"id":"chatcmpl-cut","object":"chat.completion","created":1,"model":"foxbrain",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"<answer>12'
)


def _truncated(plan: RunPlan, step: int, attempt: int, msgs: list[Any]) -> tuple[Reply, str]:
    """A 200 whose body stops early and cleanly (a proxy or server that closed mid-answer)."""
    if plan.mode == "plain":
        return Reply(body=_COMPLETION_HEAD), "truncated_body"
    head = '{"id":"chatcmpl-cut","object":"chat.completion.chunk","created":1,"model":"foxbrain",'
    role = head + '"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'
    text = head + '"choices":[{"index":0,"delta":{"content":"<answer>12"}}]}'
    return Reply(body=f"data: {role}\n\ndata: {text}\n\n"), "truncated_body"


ANSWERED = ("answered",)
HTTP = ("ModelHTTPError",)
CONNECTION = ("ModelConnectionError",)
RESPONSE = ("ModelResponseError",)
DEADLINE = ("RunTimeoutError",)
# A stream that ends early is either a broken connection or a malformed answer; both are typed.
CUT_STREAM = ("ModelResponseError", "ModelConnectionError")

SCENARIOS: tuple[Scenario, ...] = (
    # Runs that answer, some after faults that must be absorbed.
    Scenario(name="direct", weight=9, script=_direct, expect=ANSWERED),
    Scenario(name="tool", weight=14, script=_multiply_then_answer, expect=ANSWERED),
    Scenario(name="sync_tool", weight=6, script=_with_tool("multiply_sync"), expect=ANSWERED),
    Scenario(name="slow_reply", weight=5, script=_slow_reply, expect=ANSWERED),
    Scenario(
        name="http500_once",
        weight=6,
        script=_fail_first_attempt(Reply(status=500, text="engine step failed"), "http_500"),
        expect=ANSWERED,
    ),
    Scenario(
        name="http429_once",
        weight=4,
        script=_fail_first_attempt(_rate_limited(RETRY_AFTER_SHORT), "http_429"),
        expect=ANSWERED,
    ),
    Scenario(
        name="http503_once",
        weight=2,
        script=_fail_first_attempt(Reply(status=503, text="engine busy"), "http_503"),
        expect=ANSWERED,
    ),
    # Streaming, a drop arrives after the first bytes: the backend cannot retry a stream it
    # has passed on, so the agent asks for the reply again from the start (a ModelRetry event
    # tells listeners to drop the text they were shown), and the run answers.
    Scenario(
        name="drop_once",
        weight=5,
        script=_fail_first_attempt(Reply(drop=True), "drop"),
        expect=ANSWERED,
    ),
    Scenario(
        name="cut_call",
        weight=4,
        script=_bad_call_then_answer(
            '{{"name": "multiply", "parameters": {{"a": {a}, "b": {b}', "malformed_call_cut"
        ),
        expect=ANSWERED,
    ),
    # vLLM's streaming parser holds back text that starts with "{" and is not JSON, and never
    # sends it: the streamed reply is empty, and an empty reply is a (blank) final answer.
    Scenario(
        name="quoted_call",
        weight=3,
        script=_bad_call_then_answer(
            "{{'name': 'multiply', 'parameters': {{'a': {a}, 'b': {b}}}}}", "malformed_call_quotes"
        ),
        expect=ANSWERED,
    ),
    Scenario(
        name="tool_raises",
        weight=4,
        script=_call_then_answer("broken", "call_broken_tool", x=1),
        expect=ANSWERED,
    ),
    Scenario(
        name="tool_slow",
        weight=4,
        script=_call_then_answer("slow_lookup", "call_slow_tool", query="鴻海"),
        expect=ANSWERED,
    ),
    Scenario(
        name="unknown_tool",
        weight=2,
        script=_call_then_answer("launch_rocket", "call_unknown_tool", target="moon"),
        expect=ANSWERED,
    ),
    # Runs that must fail, each with its own error type.
    Scenario(
        name="http500_always",
        weight=4,
        script=_always(Reply(status=500, text="engine dead"), "http_500"),
        expect=HTTP,
    ),
    Scenario(
        name="http400",
        weight=2,
        script=_always(Reply(status=400, text="prompt too long"), "http_400"),
        expect=HTTP,
    ),
    Scenario(
        name="drop_always",
        weight=3,
        script=_always(Reply(drop=True), "drop"),
        expect=CONNECTION,
    ),
    Scenario(
        name="malformed_body",
        weight=3,
        script=_always(Reply(body="{not json"), "malformed_body"),
        expect=RESPONSE,
        # Streaming, a body with no SSE line is a stream that ended before it began.
        expect_stream=CUT_STREAM,
    ),
    Scenario(
        name="malformed_sse",
        weight=2,
        script=_always(Reply(body='data: {"choices": [{"delta": \n\n'), "malformed_sse"),
        expect=RESPONSE,
    ),
    Scenario(
        name="truncated_body",
        weight=2,
        script=_truncated,
        expect=RESPONSE,
        expect_stream=CUT_STREAM,
    ),
    Scenario(
        name="model_hang",
        weight=3,
        script=_always(Reply(text="<answer>late</answer>", delay=HANG_SECONDS), "hang_reply"),
        expect=DEADLINE,
        short_deadline=True,
    ),
    Scenario(
        name="retry_after_long",
        weight=2,
        script=_always(_rate_limited(RETRY_AFTER_LONG), "http_429_long"),
        expect=DEADLINE,
        short_deadline=True,
    ),
    Scenario(
        name="tool_hang",
        weight=3,
        script=_call_then_answer("hang", "call_hang_tool", query="q"),
        expect=DEADLINE,
        short_deadline=True,
    ),
    Scenario(name="step_limit", weight=3, script=_step_limit, expect=("StepLimitError",)),
    Scenario(
        name="tool_always_fails",
        weight=3,
        script=_broken_every_step,
        expect=("ToolRetryError",),
    ),
    # The caller goes away mid-run (a backend's client disconnected): its loop over
    # Agent.iter stops at the first tool start, which must cancel the run and its tool.
    Scenario(
        name="consumer_leaves",
        weight=2,
        script=_call_then_answer("hang", "call_hang_tool", query="q"),
        expect=("cancelled",),
        via="iter",
    ),
)

KNOWN_BUGS: dict[tuple[str, Mode], tuple[str, str]] = {
    # (scenario, mode) -> (the wrong outcome foxagent gives while a bug is open, the bug). The
    # load test tolerates exactly these and prints them, so a bug found here can be recorded
    # (with a strict-xfail reproduction in test_load_faults.py) before it is fixed. Empty: the
    # bugs found so far (streams that end early, streams not retried before the first byte,
    # slots held during a retry's wait) are fixed and have regression tests there.
}


def make_plans(count: int, *, seed: int = SEED, start: int = 0) -> list[RunPlan]:
    """``count`` runs (indices from ``start``) with a seeded mix of scenarios and modes."""
    rng = random.Random(f"{seed}:{start}")  # a str seed is hashed deterministically
    names = [s for s in SCENARIOS for _ in range(s.weight)]
    vias: tuple[Via, ...] = ("arun", "arun", "arun", "events", "iter")
    modes: tuple[Mode, ...] = ("plain", "stream")
    plans = []
    for index in range(start, start + count):
        scenario = rng.choice(names)
        via = rng.choice(vias)  # drawn even when forced, so the draws stay in step
        plans.append(
            RunPlan(
                index=index,
                scenario=scenario,
                mode=rng.choice(modes),
                via=scenario.via or via,
                a=rng.randint(2, 9999),
                b=rng.randint(2, 9999),
                delay=round(rng.uniform(0.05, 0.3), 3),
            )
        )
    return plans
