"""templates/llama31_chattemplate.jinja: the exact prompt text FoxBrain sees for real histories."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest

from foxagent._templates import _environment, render_chat, template_path

DATE = "26 Jul 2024"
FOXBRAIN_SYSTEM = "您是由鴻海研究院創建和開發的 FoxBrain AI 助手。請用 <answer> 標籤回答。"

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "取得城市天氣",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}

# The pieces every tool prompt shares, spelled out once.
TOOL_SYSTEM_HEAD = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "Environment: ipython\n"
    "Cutting Knowledge Date: December 2023\n"
    "Today Date: 26 Jul 2024\n\n"
)
TOOL_RULES = (
    "Only reply with a tool call if the function exists in the library provided by the user. "
    "If it doesn't exist, just reply directly in natural language. "
    "When you call a function, reply with only the JSON for the call: no tags, no other text. "
    "When you receive a tool call response, use the output to format an answer to the original user question."
)
FORMAT_AND_TOOLS = (
    'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. '
    "Do not use variables.\n\n"
    "{\n"
    '    "type": "function",\n'
    '    "function": {\n'
    '        "name": "get_weather",\n'
    '        "description": "取得城市天氣",\n'
    '        "parameters": {\n'
    '            "type": "object",\n'
    '            "properties": {\n'
    '                "location": {\n'
    '                    "type": "string"\n'
    "                }\n"
    "            },\n"
    '            "required": [\n'
    '                "location"\n'
    "            ]\n"
    "        }\n"
    "    }\n"
    "}\n\n"
)
USER_WITH_TOOLS = (
    "<|start_header_id|>user<|end_header_id|>\n\n"
    "Given the following functions, please respond with a JSON for a function call "
    "with its proper arguments that best answers the given prompt.\n\n" + FORMAT_AND_TOOLS
)
FOXBRAIN_TOOL_SYSTEM = TOOL_SYSTEM_HEAD + FOXBRAIN_SYSTEM + "\n\n" + TOOL_RULES + "<|eot_id|>"
ASSISTANT = "<|start_header_id|>assistant<|end_header_id|>\n\n"
IPYTHON = "<|start_header_id|>ipython<|end_header_id|>\n\n"


def call(name: str, arguments: Any, call_id: str = "chatcmpl-tool-1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_chat(*turns: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": FOXBRAIN_SYSTEM},
        {"role": "user", "content": "台北天氣如何？"},
        *turns,
    ]


def render(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
    return render_chat(messages, tools, date_string=DATE)


def test_plain_chat_with_foxbrain_system_prompt() -> None:
    messages = [
        {"role": "system", "content": FOXBRAIN_SYSTEM},
        {"role": "user", "content": "  1+1 等於多少？\n"},
        {"role": "assistant", "content": "<answer>2</answer>"},
        {"role": "user", "content": "再加 3 呢？"},
    ]
    assert render(messages) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\n"
        "您是由鴻海研究院創建和開發的 FoxBrain AI 助手。請用 <answer> 標籤回答。<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n1+1 等於多少？<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n<answer>2</answer><|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n再加 3 呢？<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_no_generation_prompt() -> None:
    messages = [{"role": "user", "content": "hi"}]
    assert render_chat(messages, add_generation_prompt=False, date_string=DATE) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\n<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
    )


def test_tools_go_into_first_user_message_and_rules_follow_the_client_system_prompt() -> None:
    assert render(tool_chat(), [WEATHER_TOOL]) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Environment: ipython\n"
        "Cutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\n"
        "您是由鴻海研究院創建和開發的 FoxBrain AI 助手。請用 <answer> 標籤回答。\n\n"
        "Only reply with a tool call if the function exists in the library provided by the user. "
        "If it doesn't exist, just reply directly in natural language. "
        "When you call a function, reply with only the JSON for the call: no tags, no other text. "
        "When you receive a tool call response, use the output to format an answer to the original user question."
        "<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n"
        "Given the following functions, please respond with a JSON for a function call "
        "with its proper arguments that best answers the given prompt.\n\n"
        'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. '
        "Do not use variables.\n\n"
        '{\n    "type": "function",\n    "function": {\n        "name": "get_weather",\n'
        '        "description": "取得城市天氣",\n        "parameters": {\n'
        '            "type": "object",\n            "properties": {\n'
        '                "location": {\n                    "type": "string"\n                }\n'
        '            },\n            "required": [\n                "location"\n            ]\n'
        "        }\n    }\n}\n\n"
        "台北天氣如何？<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_tools_without_system_prompt_use_a_default_one() -> None:
    messages = [{"role": "user", "content": "台北天氣如何？"}]
    assert render(messages, [WEATHER_TOOL]) == (
        TOOL_SYSTEM_HEAD
        + "You are a helpful assistant with tool calling capabilities.\n\n"
        + TOOL_RULES
        + "<|eot_id|>"
        + USER_WITH_TOOLS
        + "台北天氣如何？<|eot_id|>"
        + ASSISTANT
    )


def test_one_call_tool_result_and_final_answer() -> None:
    messages = tool_chat(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call("get_weather", {"location": "台北"})],
        },
        {
            "role": "tool",
            "tool_call_id": "chatcmpl-tool-1",
            "name": "get_weather",
            "content": "晴，28°C",
        },
        {"role": "assistant", "content": "<answer>台北晴天，28°C。</answer>"},
        {"role": "user", "content": "謝謝"},
    )
    assert render(messages, [WEATHER_TOOL]) == (
        FOXBRAIN_TOOL_SYSTEM
        + USER_WITH_TOOLS
        + "台北天氣如何？<|eot_id|>"
        + '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"location": "台北"}}<|eom_id|>'
        + '<|start_header_id|>ipython<|end_header_id|>\n\n{"output": "晴，28°C"}<|eot_id|>'
        + "<|start_header_id|>assistant<|end_header_id|>\n\n<answer>台北晴天，28°C。</answer><|eot_id|>"
        + "<|start_header_id|>user<|end_header_id|>\n\n謝謝<|eot_id|>"
        + ASSISTANT
    )


def test_several_calls_in_one_message_are_joined_by_semicolon() -> None:
    messages = tool_chat(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                call("get_weather", {"location": "台北"}, "a"),
                call("get_weather", {"location": "東京"}, "b"),
                call("get_time", {}, "c"),
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "晴"},
        {"role": "tool", "tool_call_id": "b", "content": "雨"},
        {"role": "tool", "tool_call_id": "c", "content": "10:00"},
    )
    assert render(messages, [WEATHER_TOOL]).removeprefix(
        FOXBRAIN_TOOL_SYSTEM + USER_WITH_TOOLS + "台北天氣如何？<|eot_id|>"
    ) == (
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
        '{"name": "get_weather", "parameters": {"location": "台北"}}; '
        '{"name": "get_weather", "parameters": {"location": "東京"}}; '
        '{"name": "get_time", "parameters": {}}<|eom_id|>'
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"output": "晴"}<|eot_id|>'
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"output": "雨"}<|eot_id|>'
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"output": "10:00"}<|eot_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


@pytest.mark.parametrize("tool_calls", [[], None])
def test_empty_tool_calls_is_a_plain_assistant_turn(tool_calls: list[Any] | None) -> None:
    messages = tool_chat(
        {"role": "assistant", "content": "<answer>晴天</answer>", "tool_calls": tool_calls}
    )
    assert render(messages, [WEATHER_TOOL]).endswith(
        "台北天氣如何？<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n<answer>晴天</answer><|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_content_next_to_a_call_is_dropped() -> None:
    messages = tool_chat(
        {
            "role": "assistant",
            "content": "<count>3</count><step>先查天氣</step>",
            "tool_calls": [call("get_weather", {"location": "台北"})],
        }
    )
    assert render(messages, [WEATHER_TOOL]).endswith(
        "台北天氣如何？<|eot_id|>"
        '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"location": "台北"}}<|eom_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


@pytest.mark.parametrize(
    "arguments",
    [
        {"location": "台北", "unit": "celsius"},
        '{"location": "台北", "unit": "celsius"}',
        ' {"location": "台北", "unit": "celsius"}\n',
    ],
    ids=["dict", "json-string", "json-string-with-whitespace"],
)
def test_arguments_as_dict_or_json_string_render_the_same(arguments: Any) -> None:
    messages = tool_chat(
        {"role": "assistant", "content": None, "tool_calls": [call("get_weather", arguments)]}
    )
    assert render(messages, [WEATHER_TOOL]).endswith(
        '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"location": "台北", "unit": "celsius"}}<|eom_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


@pytest.mark.parametrize("arguments", ["", "  ", None], ids=["empty", "blank", "none"])
def test_missing_arguments_render_as_empty_object(arguments: Any) -> None:
    messages = tool_chat(
        {"role": "assistant", "content": None, "tool_calls": [call("get_time", arguments)]}
    )
    assert render(messages, [WEATHER_TOOL]).endswith(
        '{"name": "get_time", "parameters": {}}<|eom_id|><|start_header_id|>assistant<|end_header_id|>\n\n'
    )


def test_call_without_function_wrapper() -> None:
    messages = tool_chat(
        {
            "role": "assistant",
            "tool_calls": [{"name": "get_weather", "arguments": {"location": "台北"}}],
        }
    )
    assert '\n\n{"name": "get_weather", "parameters": {"location": "台北"}}<|eom_id|>' in render(
        messages, [WEATHER_TOOL]
    )


def test_call_turn_ends_with_eot_when_no_tools_are_given() -> None:
    messages = tool_chat(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call("get_weather", {"location": "台北"})],
        },
        {"role": "tool", "content": "晴"},
    )
    assert render(messages).endswith(
        "台北天氣如何？<|eot_id|>"
        '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"location": "台北"}}<|eot_id|>'
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"output": "晴"}<|eot_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_chinese_is_not_escaped_anywhere() -> None:
    messages = tool_chat(
        {"role": "assistant", "tool_calls": [call("get_weather", '{"location": "新北市"}')]},
        {"role": "ipython", "content": "多雲"},
    )
    prompt = render(messages, [WEATHER_TOOL])
    assert "\\u" not in prompt
    assert '"取得城市天氣"' in prompt
    assert '{"location": "新北市"}' in prompt
    assert '{"output": "多雲"}' in prompt


def test_list_of_parts_content() -> None:
    messages = [
        {
            "role": "system",
            "content": [{"type": "text", "text": " 系統提示 "}, {"type": "text", "text": "第二段"}],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "第一段 "},
                {"type": "image_url", "image_url": {"url": "x"}},
                {"type": "text", "text": "第二段"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "好的"}]},
        {
            "role": "tool",
            "content": [{"type": "text", "text": "結果一"}, {"type": "text", "text": "結果二"}],
        },
    ]
    assert render(messages) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\n"
        "系統提示<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n第一段\n第二段<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n好的<|eot_id|>"
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"output": "結果一"}\n{"output": "結果二"}<|eot_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_list_of_parts_first_user_message_with_tools() -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "台北"}, {"type": "text", "text": "天氣？"}],
        }
    ]
    assert render(messages, [WEATHER_TOOL]).endswith(
        "Do not use variables.\n\n"
        + FORMAT_AND_TOOLS.split("Do not use variables.\n\n")[1]
        + "台北\n天氣？<|eot_id|>"
        + ASSISTANT
    )


def test_no_system_message_and_no_tools() -> None:
    assert render([{"role": "user", "content": "你好"}]) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\n<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n你好<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_tools_without_a_user_message_go_into_the_system_prompt() -> None:
    messages = [{"role": "system", "content": FOXBRAIN_SYSTEM}]
    assert render(messages, [WEATHER_TOOL]) == (
        TOOL_SYSTEM_HEAD
        + "You have access to the following functions. To call a function, please respond with JSON for a function call. "
        + FORMAT_AND_TOOLS
        + FOXBRAIN_SYSTEM
        + "\n\n"
        + TOOL_RULES
        + "<|eot_id|>"
        + ASSISTANT
    )


def test_tools_skip_a_leading_assistant_message_to_reach_the_first_user() -> None:
    messages = [
        {"role": "assistant", "content": "您好，我是 FoxBrain。"},
        {"role": "user", "content": "台北天氣如何？"},
        {"role": "user", "content": "還有東京？"},
    ]
    prompt = render(messages, [WEATHER_TOOL])
    assert prompt.count("Given the following functions") == 1
    assert prompt.endswith(
        "<|start_header_id|>assistant<|end_header_id|>\n\n您好，我是 FoxBrain。<|eot_id|>"
        + USER_WITH_TOOLS
        + "台北天氣如何？<|eot_id|>"
        + "<|start_header_id|>user<|end_header_id|>\n\n還有東京？<|eot_id|>"
        + ASSISTANT
    )


def test_tools_in_system_prompt_when_asked() -> None:
    template = _environment().from_string(template_path().read_text(encoding="utf-8"))
    prompt = template.render(
        messages=[{"role": "user", "content": "台北天氣如何？"}],
        tools=[WEATHER_TOOL],
        tools_in_user_message=False,
        date_string=DATE,
        bos_token="<|begin_of_text|>",
        add_generation_prompt=True,
    )
    assert prompt == (
        TOOL_SYSTEM_HEAD
        + "You have access to the following functions. To call a function, please respond with JSON for a function call. "
        + FORMAT_AND_TOOLS
        + "You are a helpful assistant with tool calling capabilities.\n\n"
        + TOOL_RULES
        + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n台北天氣如何？<|eot_id|>"
        + ASSISTANT
    )


def test_empty_tools_list_means_no_tools() -> None:
    messages = [{"role": "user", "content": "你好"}]
    assert render(messages, []) == render(messages)


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "robot", "content": "x"}], 'Unknown message role "robot" in message 0'),
        (
            [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "u"},
                {"role": "function", "content": "x"},
            ],
            'Unknown message role "function" in message 2',
        ),
    ],
)
def test_unknown_role_raises(messages: list[dict[str, Any]], expected: str) -> None:
    with pytest.raises(jinja2.exceptions.TemplateError) as info:
        render(messages)
    assert str(info.value) == expected + ": expected system, user, assistant, tool or ipython."


def test_today_date_uses_strftime_now_by_default() -> None:
    before = datetime.now().strftime("%d %b %Y")
    prompt = render_chat([{"role": "user", "content": "hi"}])
    after = datetime.now().strftime("%d %b %Y")
    assert f"Today Date: {before}\n\n" in prompt or f"Today Date: {after}\n\n" in prompt


def test_today_date_falls_back_without_strftime_now() -> None:
    env = _environment()
    del env.globals["strftime_now"]
    template = env.from_string(template_path().read_text(encoding="utf-8"))
    prompt = template.render(
        messages=[{"role": "user", "content": "hi"}], bos_token="<|begin_of_text|>"
    )
    assert "Today Date: 26 Jul 2024\n\n" in prompt


def test_template_path_is_the_file_vllm_loads() -> None:
    path = template_path()
    repo_copy = Path(__file__).resolve().parent.parent / "templates" / "llama31_chattemplate.jinja"
    assert path.name == "llama31_chattemplate.jinja"
    assert path.is_file()
    assert path.read_bytes() == repo_copy.read_bytes()


def test_import_foxagent_does_not_import_jinja2() -> None:
    code = "import sys, foxagent, foxagent._templates; print('jinja2' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
