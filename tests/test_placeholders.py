"""A stand-in is not a value: calls whose arguments only hold placeholders, or lost a required
value, are refused with a reason the model can act on (issue 15, section 2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from foxagent import recover_tool_calls, tool


@tool
def send_email(to: str, subject: str = "", body: str = "") -> str:
    """Send an email.

    Args:
        to: Recipient address.
        subject: Subject line.
        body: Message text.
    """
    return "sent"


@tool
def tag_photos(tags: list[str], note: str | None = None) -> str:
    """Tag photos.

    Args:
        tags: Tags to add.
        note: Optional note.
    """
    return "tagged"


def content_call(name: str, **arguments: Any) -> dict[str, Any]:
    text = json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)
    return {"role": "assistant", "content": text}


@pytest.mark.parametrize(
    "value",
    [
        "?",
        "??",
        "...",
        "…",
        "TODO",
        "tbd",
        "N/A",
        "<recipient>",
        "<email address>",
        "{{email}}",
        "[INSERT EMAIL]",
        "  <value>  ",
        "？",
    ],
)
def test_a_placeholder_argument_is_refused_with_a_reason(value: str) -> None:
    recovery = recover_tool_calls(content_call("send_email", to=value), [send_email])
    assert recovery.calls == ()
    (refused,) = recovery.rejected
    assert refused.kind == "placeholder"
    assert f"argument 'to' holds a placeholder ({value.strip()!r})" in refused.reason
    assert "ask the user" in refused.reason


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_required_argument_without_a_value_is_refused(value: Any) -> None:
    recovery = recover_tool_calls(content_call("send_email", to=value), [send_email])
    (refused,) = recovery.rejected
    assert refused.kind == "placeholder" and "required argument 'to' is" in refused.reason


def test_placeholders_inside_lists_are_found_and_optional_empties_are_fine() -> None:
    refused = recover_tool_calls(content_call("tag_photos", tags=["家人", "<tag>"]), [tag_photos])
    assert [r.kind for r in refused.rejected] == ["placeholder"]
    ok = recover_tool_calls(
        content_call("send_email", to="amy@example.com", subject="", body="見 <b>附件</b>？"),
        [send_email],
    )
    assert [c.arguments["to"] for c in ok.calls] == ["amy@example.com"]


@pytest.mark.parametrize("value", ["a?b", "Why?", "1...5", "<b>bold</b>", "[1, 2]", "unknownst"])
def test_real_values_that_merely_look_odd_run(value: str) -> None:
    recovery = recover_tool_calls(content_call("send_email", to=value), [send_email])
    assert [c.arguments["to"] for c in recovery.calls] == [value]


def test_a_server_call_repaired_into_null_is_refused() -> None:
    # The model wrote `"to": }` (nothing): repair fills in null, which must not run.
    function = {"name": "send_email", "arguments": '{"to": , "subject": "hi"}'}
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "function": function}],
    }
    recovery = recover_tool_calls(message, [send_email])
    assert recovery.calls == ()
    assert [r.kind for r in recovery.rejected] in (["placeholder"], ["invalid_arguments"])
