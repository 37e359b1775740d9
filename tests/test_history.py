"""A history handed back to the model is one it can continue (issue 15, section 3: hygiene)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from foxagent import Agent
from foxagent._history import clean_history
from foxagent.testing import ScriptedModel


def call_turn(arguments: Any, content: Any = None) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    return {"role": "assistant", "content": content, "tool_calls": [call]}


@pytest.mark.parametrize(
    ("arguments", "sent"),
    [
        ('{"city": "台北"}', '{"city": "台北"}'),
        ('{"city": "\\u53f0\\u5317"}', '{"city": "台北"}'),  # no ASCII-escaped CJK
        ('{"city": "台', "{}"),  # cut JSON would break every later request
        ("[1, 2]", "{}"),
        ("北部", "{}"),
        ("", "{}"),
        ({"city": "高雄"}, '{"city": "高雄"}'),  # an object, not text
        (None, "{}"),
    ],
)
def test_call_arguments_become_json_object_text(arguments: Any, sent: str) -> None:
    (cleaned,) = clean_history([call_turn(arguments)])
    assert cleaned["tool_calls"][0]["function"]["arguments"] == sent


def test_special_tokens_are_stripped_from_assistant_text_and_nothing_else_changes() -> None:
    history = [
        {"role": "user", "content": "<|eot_id|> 使用者寫的字不動"},
        {"role": "assistant", "content": "<|python_tag|>好的<|eom_id|>"},
        call_turn('{"a": 1}', content="先查<|eot_id|>"),
    ]
    before = json.dumps(history, ensure_ascii=False)
    cleaned = clean_history(history)
    assert cleaned[0]["content"] == "<|eot_id|> 使用者寫的字不動"
    assert cleaned[1]["content"] == "好的"
    assert cleaned[2]["content"] == "先查"
    assert json.dumps(history, ensure_ascii=False) == before  # the caller's copy is untouched


async def test_the_agent_sends_a_cleaned_history() -> None:
    model = ScriptedModel(["<answer>好</answer>"])
    history = [
        {"role": "user", "content": "台北？"},
        call_turn('{"city": "\\u53f0\\u5317"'),
        {"role": "tool", "tool_call_id": "c1", "content": "23°C"},
        {"role": "assistant", "content": "23 度<|eot_id|>"},
    ]
    await Agent(model=model, system_prompt=None).arun("那高雄？", history=history)
    sent = model.requests[0].messages
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert sent[3]["content"] == "23 度"
