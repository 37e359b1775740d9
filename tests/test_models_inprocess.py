"""InProcessVLLMModel against a stand-in with vLLM's ``LLM`` surface (vLLM cannot run here)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from foxagent import Agent, ModelError, ModelSettings, RunError, UserError, tool
from foxagent._messages import FOXBRAIN_STOP
from foxagent._templates import render_chat, template_path
from foxagent.models.vllm_inprocess import InProcessVLLMModel

DATE = "26 Jul 2024"
IPYTHON = "<|start_header_id|>ipython<|end_header_id|>"
LLAMA31_SPECIAL = {
    "<|begin_of_text|>": 128000,
    "<|end_of_text|>": 128001,
    "<|start_header_id|>": 128006,
    "<|end_header_id|>": 128007,
    "<|eom_id|>": 128008,
    "<|eot_id|>": 128009,
    "<|python_tag|>": 128010,
}


# --- a stand-in for vllm.LLM ---------------------------------------------------------------


@dataclass(kw_only=True)
class FakeSamplingParams:
    """The fields foxagent sets on ``vllm.SamplingParams``."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = 16
    stop: list[str] | None = None
    seed: int | None = None
    stop_token_ids: list[int] | None = None


class FakeTokenizer:
    """``apply_chat_template`` renders foxagent's template, as transformers would."""

    def __init__(self) -> None:
        self.chat_template: str | None = "{{ tokenizer's own }}"

    def get_added_vocab(self) -> dict[str, int]:
        return dict(LLAMA31_SPECIAL)

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        tokenize: bool = False,
        add_generation_prompt: bool = True,
    ) -> str:
        assert tokenize is False
        return render_chat(
            messages, tools, add_generation_prompt=add_generation_prompt, date_string=DATE
        )


@dataclass
class FakeCompletion:
    text: str
    token_ids: list[int]
    finish_reason: str | None = "stop"


@dataclass
class FakeRequestOutput:
    prompt: str
    prompt_token_ids: list[int]
    outputs: list[FakeCompletion]


@dataclass
class FakeLLM:
    """``generate(prompts, sampling_params)`` answers each prompt with ``script(prompt)``."""

    script: Callable[[str], str]
    finish_reason: str = "stop"
    fail: Exception | None = None
    calls: list[list[str]] = field(default_factory=list)
    params: list[list[Any]] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)
    tokenizer: FakeTokenizer = field(default_factory=FakeTokenizer)

    def get_tokenizer(self) -> FakeTokenizer:
        return self.tokenizer

    def generate(
        self, prompts: list[str], sampling_params: list[Any], *, use_tqdm: bool = True
    ) -> list[FakeRequestOutput]:
        assert use_tqdm is False
        assert len(sampling_params) == len(prompts)
        self.calls.append(list(prompts))
        self.params.append(list(sampling_params))
        self.threads.append(threading.current_thread().name)
        if self.fail is not None:
            raise self.fail
        return [self._output(prompt) for prompt in prompts]

    def _output(self, prompt: str) -> FakeRequestOutput:
        text = self.script(prompt)
        completion = FakeCompletion(text, list(range(len(text))), self.finish_reason)
        return FakeRequestOutput(prompt, list(range(len(prompt) // 4)), [completion])


def weather_script(prompt: str) -> str:
    """A FoxBrain call on the user's turn, a tagged answer after the tool result."""
    if IPYTHON not in prompt:
        city = re.findall(r"([^\s>]+)的天氣？", prompt)[-1]
        return json.dumps(
            {"name": "get_weather", "parameters": {"location": city}}, ensure_ascii=False
        )
    temperature = json.loads(prompt.rsplit(IPYTHON, 1)[1].split("<|eot_id|>")[0])["output"]
    return (
        f"<count>1</count><step>查到 {temperature}。</step><reflection>正確。</reflection>"
        f"<reward>0.9</reward><answer>{temperature}</answer><reflection>好。</reflection>"
        "<reward>0.9</reward>"
    )


# Not tests.conftest's get_weather: weather_script echoes this tool's text result ("台北 23°C")
# as the answer, and an async tool answers on the loop at once, so concurrent runs reach the
# next step together (sync tools: test_sync_tools_join_the_batch_within_the_window).
@tool
async def get_weather(location: str) -> str:
    """Current weather.

    Args:
        location: a city.
    """
    return f"{location} 23°C"


def make_model(llm: FakeLLM, **kwargs: Any) -> InProcessVLLMModel:
    return InProcessVLLMModel(llm=llm, sampling_params_factory=FakeSamplingParams, **kwargs)


# --- one run end to end ---------------------------------------------------------------------


async def test_agent_run_calls_the_tool_and_answers() -> None:
    llm = FakeLLM(weather_script)
    agent = Agent(tools=[get_weather], model=make_model(llm), system_prompt="你是 FoxBrain。")
    result = await agent.arun("台北的天氣？")
    assert result.answer == "台北 23°C"
    assert [r.name for r in result.tool_calls] == ["get_weather"]
    assert result.tool_calls[0].arguments == {"location": "台北"}
    assert len(llm.calls) == 2
    assert all(thread != threading.main_thread().name for thread in llm.threads)
    first, second = llm.calls[0][0], llm.calls[1][0]
    assert first.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
    assert "Environment: ipython" in first
    assert '"name": "get_weather"' in first  # the tool schema is in the prompt
    assert first.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert f'{IPYTHON}\n\n{{"output": "台北 23°C"}}<|eot_id|>' in second
    assert '{"name": "get_weather", "parameters": {"location": "台北"}}<|eom_id|>' in second
    assert result.usage[0].prompt_tokens == len(first) // 4
    assert result.usage[0].completion_tokens > 0


async def test_sampling_params_come_from_the_settings() -> None:
    llm = FakeLLM(weather_script)
    guide = ModelSettings(temperature=0.7, top_p=0.9, max_tokens=4096, seed=None)
    agent = Agent(tools=[get_weather], model=make_model(llm), settings=guide)
    await agent.arun("台北的天氣？")
    params = llm.params[0][0]
    assert params == FakeSamplingParams(
        temperature=0.7,
        top_p=0.9,
        max_tokens=4096,
        stop=list(FOXBRAIN_STOP),
        seed=None,
        stop_token_ids=[128009, 128001, 128007, 128008],  # the same stops, as token ids
    )
    assert "<|eom_id|>" in params.stop
    assert "<|eot_id|>" in params.stop


async def test_default_settings_carry_the_seed_and_stop_tokens() -> None:
    llm = FakeLLM(lambda prompt: "<answer>ok</answer>")
    response = await make_model(llm).request(
        [{"role": "user", "content": "hi"}], [], ModelSettings()
    )
    params = llm.params[0][0]
    assert (params.temperature, params.max_tokens, params.seed) == (0.5, 2048, 42)
    assert params.stop == list(FOXBRAIN_STOP)
    assert response.message == {
        "role": "assistant",
        "content": "<answer>ok</answer>",
        "tool_calls": [],
    }
    assert response.finish_reason == "stop"


async def test_explicit_stop_token_ids_win_and_plain_stops_have_none() -> None:
    llm = FakeLLM(lambda prompt: "")
    model = make_model(llm)
    user = [{"role": "user", "content": "hi"}]
    await model.request(user, [], ModelSettings(extra_body={"stop_token_ids": [7]}))
    await model.request(user, [], ModelSettings(stop=["</answer>"]))
    assert [call[0].stop_token_ids for call in llm.params] == [[7], None]


async def test_unknown_sampling_field_is_a_user_error() -> None:
    model = make_model(FakeLLM(lambda prompt: ""))
    settings = ModelSettings(extra_body={"no_such_field": 1})
    with pytest.raises(UserError, match="no_such_field"):
        await model.request([{"role": "user", "content": "hi"}], [], settings)


async def test_length_finish_reason() -> None:
    llm = FakeLLM(
        lambda prompt: '{"name": "get_weather", "parameters": {"loc', finish_reason="length"
    )
    response = await make_model(llm).request(
        [{"role": "user", "content": "hi"}], [], ModelSettings()
    )
    assert response.finish_reason == "length"
    llm.finish_reason = "abort"
    response = await make_model(llm).request(
        [{"role": "user", "content": "hi"}], [], ModelSettings()
    )
    assert response.finish_reason == "stop"


def test_chat_template_is_foxagents_unless_none() -> None:
    llm = FakeLLM(lambda prompt: "")
    make_model(llm)
    assert llm.tokenizer.chat_template == template_path().read_text(encoding="utf-8")
    own = FakeLLM(lambda prompt: "")
    make_model(own, chat_template=None)
    assert own.tokenizer.chat_template == "{{ tokenizer's own }}"
    custom = FakeLLM(lambda prompt: "")
    make_model(custom, chat_template="{{ custom }}")
    assert custom.tokenizer.chat_template == "{{ custom }}"


async def test_template_refusal_is_a_model_error() -> None:
    model = make_model(FakeLLM(lambda prompt: ""))
    with pytest.raises(ModelError, match="Unknown message role"):
        await model.request([{"role": "robot", "content": "hi"}], [], ModelSettings())


def test_sync_run_twice_uses_a_fresh_event_loop_each_time() -> None:
    llm = FakeLLM(weather_script)
    agent = Agent(tools=[get_weather], model=make_model(llm))
    assert agent.run("台北的天氣？").answer == "台北 23°C"
    assert agent.run("東京的天氣？").answer == "東京 23°C"
    assert len(llm.calls) == 4


# --- batching -------------------------------------------------------------------------------

CITIES = [f"城市{i}" for i in range(20)]


async def test_concurrent_runs_share_one_generate_call_per_step() -> None:
    llm = FakeLLM(weather_script)
    agent = Agent(tools=[get_weather], model=make_model(llm))
    results = await asyncio.gather(*(agent.arun(f"{city}的天氣？") for city in CITIES))
    assert [r.answer for r in results] == [f"{city} 23°C" for city in CITIES]
    assert [len(call) for call in llm.calls] == [20, 20]
    assert all(IPYTHON not in prompt for prompt in llm.calls[0])
    assert all(IPYTHON in prompt for prompt in llm.calls[1])


async def test_sync_tools_join_the_batch_within_the_window() -> None:
    @tool
    def slow_weather(location: str) -> str:
        """Current weather.

        Args:
            location: a city.
        """
        return f"{location} 23°C"

    def script(prompt: str) -> str:
        return weather_script(prompt).replace("get_weather", "slow_weather")

    llm = FakeLLM(script)
    agent = Agent(tools=[slow_weather], model=make_model(llm, batch_window=0.5))
    results = await asyncio.gather(*(agent.arun(f"{city}的天氣？") for city in CITIES[:8]))
    assert [r.answer for r in results] == [f"{city} 23°C" for city in CITIES[:8]]
    assert [len(call) for call in llm.calls] == [8, 8]


async def test_max_batch_size_splits_the_queue() -> None:
    llm = FakeLLM(weather_script)
    agent = Agent(tools=[get_weather], model=make_model(llm, max_batch_size=8))
    results = await asyncio.gather(*(agent.arun(f"{city}的天氣？") for city in CITIES))
    assert [r.answer for r in results] == [f"{city} 23°C" for city in CITIES]
    assert all(len(call) <= 8 for call in llm.calls)
    assert sum(len(call) for call in llm.calls) == 40
    assert llm.calls[0] == [p for p in llm.calls[0] if IPYTHON not in p]  # FIFO: first come first


async def test_each_output_goes_to_its_own_run() -> None:
    def script(prompt: str) -> str:
        question = re.findall(r"user<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", prompt)[-1]
        return f"<answer>{question}</answer>"

    llm = FakeLLM(script)
    model = make_model(llm)
    questions = [f"q{i}" for i in range(10)]
    responses = await asyncio.gather(
        *(model.request([{"role": "user", "content": q}], [], ModelSettings()) for q in questions)
    )
    assert [r.message["content"] for r in responses] == [f"<answer>{q}</answer>" for q in questions]
    assert len(llm.calls) == 1


async def test_a_cancelled_request_leaves_the_batch() -> None:
    llm = FakeLLM(lambda prompt: "<answer>ok</answer>")
    model = make_model(llm)
    kept = asyncio.ensure_future(
        model.request([{"role": "user", "content": "a"}], [], ModelSettings())
    )
    dropped = asyncio.ensure_future(
        model.request([{"role": "user", "content": "b"}], [], ModelSettings())
    )
    await asyncio.sleep(0)
    dropped.cancel()
    assert (await kept).message["content"] == "<answer>ok</answer>"
    assert len(llm.calls) == 1
    assert len(llm.calls[0]) == 1


# --- failures -------------------------------------------------------------------------------


async def test_generate_error_fails_every_run_of_the_batch_with_its_transcript() -> None:
    llm = FakeLLM(weather_script, fail=RuntimeError("CUDA out of memory"))
    agent = Agent(tools=[get_weather], model=make_model(llm))
    errors = await asyncio.gather(
        *(agent.arun(f"{city}的天氣？") for city in CITIES[:3]), return_exceptions=True
    )
    assert len(llm.calls) == 1
    for city, error in zip(CITIES[:3], errors, strict=True):
        assert isinstance(error, ModelError)
        assert isinstance(error, RunError)
        assert "CUDA out of memory" in str(error)
        assert error.messages[-1] == {"role": "user", "content": f"{city}的天氣？"}
    assert len({id(e) for e in errors}) == 3


async def test_wrong_number_of_outputs_is_a_model_error() -> None:
    class ShortLLM(FakeLLM):
        def generate(
            self, prompts: list[str], sampling_params: list[Any], *, use_tqdm: bool = True
        ) -> list[FakeRequestOutput]:
            return super().generate(prompts, sampling_params, use_tqdm=use_tqdm)[:-1]

    model = make_model(ShortLLM(lambda prompt: ""))
    results = await asyncio.gather(
        *(model.request([{"role": "user", "content": q}], [], ModelSettings()) for q in "ab"),
        return_exceptions=True,
    )
    assert all(isinstance(r, ModelError) and "1 outputs for 2 prompts" in str(r) for r in results)


def test_missing_vllm_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    with pytest.raises(UserError, match=re.escape("pip install 'foxagent[vllm]'")):
        InProcessVLLMModel("/models/FoxBrain", tensor_parallel_size=2)
    with pytest.raises(UserError, match=re.escape("pip install 'foxagent[vllm]'")):
        InProcessVLLMModel(llm=FakeLLM(lambda prompt: ""))  # no factory: needs SamplingParams


def test_model_or_llm_not_both() -> None:
    with pytest.raises(UserError, match="either"):
        InProcessVLLMModel()
    with pytest.raises(UserError, match="either"):
        InProcessVLLMModel("/models/FoxBrain", llm=FakeLLM(lambda prompt: ""))
    with pytest.raises(UserError, match="max_batch_size"):
        make_model(FakeLLM(lambda prompt: ""), max_batch_size=0)


def test_builds_vllm_llm_with_the_guides_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}

    class FakeVLLM:
        SamplingParams = FakeSamplingParams

        @staticmethod
        def LLM(**kwargs: Any) -> FakeLLM:  # vllm's class name
            built.update(kwargs)
            return FakeLLM(lambda prompt: "")

    monkeypatch.setitem(sys.modules, "vllm", FakeVLLM)
    model = InProcessVLLMModel("/models/FoxBrain", tensor_parallel_size=2, max_model_len=32768)
    assert built == {
        "model": "/models/FoxBrain",
        "tensor_parallel_size": 2,
        "dtype": "bfloat16",
        "max_model_len": 32768,
    }
    assert model._params_factory is FakeSamplingParams
    assert "FoxBrain" in repr(model)
