"""Tool execution beside the loop: arguments validated once, a toolset that can grow, and the
typed paused-run state (`foxagent._approval.PausedRun`) that sessions keep."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from pydantic import AfterValidator

from foxagent import Agent, Toolset, UserError, tool
from foxagent._approval import Decision, PausedRun, PendingCall
from foxagent.sessions import MemoryStore, Session
from foxagent.testing import ScriptedModel

ANSWER = "<answer>好。</answer>"
validations: list[str] = []


def _counted(value: str) -> str:
    validations.append(value)
    return value


@tool
def echo(text: Annotated[str, AfterValidator(_counted)]) -> str:
    """Say it back.

    Args:
        text: What to say.
    """
    return text


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)


async def test_arguments_are_validated_once_per_call() -> None:
    validations.clear()
    agent = Agent(tools=[echo], model=ScriptedModel([call("echo", text="嗨"), ANSWER]))
    result = await agent.arun("說嗨")
    assert [r.result for r in result.tool_calls] == ["嗨"]
    assert validations == ["嗨"]  # recovery validated; the tool ran with those values


async def test_a_tool_added_after_construction_is_offered_and_run() -> None:
    model = ScriptedModel([call("late", n=2), ANSWER])
    agent = Agent(tools=[echo], model=model)

    @tool
    def late(n: int) -> int:
        """Double it."""
        return n * 2

    agent.toolset.add(late)
    result = await agent.arun("double 2")
    assert [(r.name, r.status, r.result) for r in result.tool_calls] == [("late", "ok", 4)]
    sent = [t["function"]["name"] for t in model.requests[0].tools]
    assert sent == ["echo", "late"]


def test_toolset_index_and_schemas_follow_every_change() -> None:
    tools = Toolset([echo])
    first_index, first_schemas = tools.index, tools.schemas
    assert tools.index is first_index and tools.schemas is first_schemas  # cached

    @tool
    def other() -> str:
        """Other."""
        return ""

    tools.add(other)
    assert tools.index is not first_index
    assert [s["function"]["name"] for s in tools.schemas] == ["echo", "other"]
    assert tools.index.resolve("OTHER")[0] is other


def test_paused_run_json_round_trip_keeps_the_stored_shape() -> None:
    calls = (
        PendingCall(id="a", name="send", arguments={"to": "x"}, needs_approval=True, step=2),
        PendingCall(id="b", name="look", arguments={}, needs_approval=False, step=2),
    )
    paused = PausedRun(step=2, text="先寄信。", calls=calls)
    paused.decide("a", Decision(approved=False, reason="不要"), session_id="s")
    data = paused.to_json()
    assert data == {
        "step": 2,
        "text": "先寄信。",
        "calls": [
            {
                "id": "a",
                "name": "send",
                "arguments": {"to": "x"},
                "needs_approval": True,
                "step": 2,
            },
            {"id": "b", "name": "look", "arguments": {}, "needs_approval": False, "step": 2},
        ],
        "decisions": {"a": {"approved": False, "reason": "不要"}},
    }
    again = PausedRun.from_json(json.loads(json.dumps(data)))
    assert again == paused
    assert again.undecided == []
    assert again.denials() == {"a": "The user did not approve the call to 'send': 不要"}


def test_deciding_a_call_that_does_not_wait_names_the_waiting_ones() -> None:
    calls = (PendingCall(id="a", name="send", arguments={}, needs_approval=True, step=1),)
    paused = PausedRun(step=1, text="", calls=calls)
    with pytest.raises(UserError, match=r"no call 'zzz' waiting for approval \(waiting: a\)"):
        paused.decide("zzz", Decision(approved=True), session_id="s")
    assert paused.undecided == ["a"]


async def test_a_session_keeps_the_paused_run_typed() -> None:
    session = Session(MemoryStore(), "u1")
    assert await session.paused() is None
    calls = (PendingCall(id="a", name="send", arguments={}, needs_approval=True, step=1),)
    await session.set_paused(PausedRun(step=1, text="t", calls=calls))
    await session.approve("a")
    stored = await session.paused()
    assert stored is not None and stored.decisions == {"a": Decision(approved=True)}
    assert await session.pending() == list(calls)
    await session.set_paused(None)
    assert await session.paused() is None and await session.pending() == []


def test_an_empty_session_id_is_a_user_error() -> None:
    with pytest.raises(UserError, match="must not be empty"):
        Session(MemoryStore(), "")


ran: list[str] = []


@tool(requires_approval=True)
def delete_file(path: str) -> str:
    """Delete a file.

    Args:
        path: Which file.
    """
    ran.append(path)
    return f"deleted {path}"


@pytest.mark.parametrize("returned", ["no", "yes", 1, None, [True]])
async def test_an_approver_must_answer_true_false_or_a_decision(returned: object) -> None:
    ran.clear()
    model = ScriptedModel([call("delete_file", path="/tmp/a"), ANSWER])
    agent = Agent(tools=[delete_file], model=model, approver=lambda pending: returned)
    with pytest.raises(UserError, match=r"approver returned .* for the call to 'delete_file'"):
        await agent.arun("刪掉 /tmp/a")
    assert ran == []  # a truthy "no" never approves


async def test_a_decision_from_the_approver_passes_its_reason_to_the_model() -> None:
    ran.clear()
    model = ScriptedModel([call("delete_file", path="/tmp/a"), ANSWER])
    agent = Agent(
        tools=[delete_file],
        model=model,
        approver=lambda pending: Decision(approved=False, reason="先備份"),
    )
    result = await agent.arun("刪掉 /tmp/a")
    assert ran == [] and result.tool_calls[0].status == "denied"
    tool_turn = model.requests[1].messages[-1]
    assert (
        tool_turn["content"] == "Error: The user did not approve the call to 'delete_file': 先備份"
    )


async def test_long_replies_are_parsed_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import foxagent._agent as agent_module
    import foxagent._reask as reask_module

    threads: dict[str, list[str]] = {"recover": [], "answer": []}
    real_recover, real_parse = reask_module.recover_tool_calls, agent_module.parse_answer

    def recover(*args: Any, **kwargs: Any) -> Any:
        threads["recover"].append(threading.current_thread().name)
        return real_recover(*args, **kwargs)

    def parse(text: str) -> Any:
        threads["answer"].append(threading.current_thread().name)
        return real_parse(text)

    monkeypatch.setattr(reask_module, "recover_tool_calls", recover)
    monkeypatch.setattr(agent_module, "parse_answer", parse)
    long_answer = "<answer>" + "長" * 20_000 + "</answer>"
    agent = Agent(tools=[echo], model=ScriptedModel(["<answer>短</answer>", long_answer]))
    await agent.arun("short")
    result = await agent.arun("long")
    main = threading.current_thread().name
    assert threads["recover"][0] == main and threads["answer"][0] == main  # short: inline
    assert threads["recover"][1] != main and threads["answer"][1] != main  # long: a worker
    assert result.answer == "長" * 20_000


def test_when_the_budget_runs_out_the_message_is_the_tools_error_not_the_repeat_note() -> None:
    # Issue 16, item 5: the model repeats a failing call; the repeat guard's note ("use the
    # results above") is for the model, the user needs the tool's own error.
    from foxagent import ToolRetryError

    @tool
    def lookup(city: str) -> str:
        """Look a city up.

        Args:
            city: City.
        """
        raise ValueError(f"no station in {city}")

    call = {"name": "lookup", "parameters": {"city": "X"}}
    agent = Agent(tools=[lookup], model=ScriptedModel([json.dumps(call)] * 4))
    with pytest.raises(ToolRetryError) as raised:
        agent.run("q")
    message = str(raised.value)
    assert "last error: Tool 'lookup' failed: ValueError: no station in X" in message
    assert "use the results above" not in message
    assert message.endswith("(then the model repeated the same call)")


def test_a_model_that_only_repeats_a_successful_call_is_told_so_when_the_budget_runs_out() -> None:
    # Seen on Qwen2.5-Coder-0.5B behind vLLM: calculator("391") ran twice, then was repeated.
    from foxagent import ToolRetryError

    call = {"name": "echo", "parameters": {"text": "391"}}
    agent = Agent(tools=[echo], model=ScriptedModel([json.dumps(call)] * 6), max_steps=8)
    with pytest.raises(ToolRetryError) as raised:
        agent.run("q")
    message = str(raised.value)
    assert "the model kept repeating a call that had already run 2 times" in message
    assert "use the results above" not in message
