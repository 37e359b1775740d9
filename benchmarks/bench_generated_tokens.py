"""What asking for the generated tokens (``logprobs``) costs the client, per reply.

Run from the repo root::

    python -m benchmarks.bench_generated_tokens

For a FoxBrain reply with a tool call (a ``<step>`` then the call, ~60 tokens) and a longer one
(~600 tokens), it builds vLLM 0.32's response body the way ``FakeVLLMServer`` sends it, with and
without ``logprobs``, and times what the agent does with each: decode the body, read the
response (`foxagent.models.vllm._parse_completion`), and decide which reply to recover from
(`foxagent._reask.settle`), then recover. It prints the body sizes, the median microseconds of
each variant (interleaved, repeated) and their ratio. The server side was measured on vLLM
0.32 (CPU, SmolLM2-135M, 100 generated tokens, 6 interleaved pairs): 2.18 s without and
2.21 s with logprobs, the same within noise.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from foxagent import ModelSettings
from foxagent._json_text import loads_json
from foxagent._reask import Settled, decide_calls, settle
from foxagent._recovery import ToolIndex
from foxagent._tokens import estimate_tokens
from foxagent.models.vllm import _parse_completion
from foxagent.testing._fake_logprobs import logprobs_content
from foxagent.testing._vllm_llama3_json import server_message

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather now.",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
]
CALL = json.dumps({"name": "get_weather", "parameters": {"location": "台北"}}, ensure_ascii=False)
SHORT = "<step>使用者問台北天氣，我先呼叫工具查詢。</step>\n" + CALL
LONG = "<step>" + "先整理使用者的問題，再決定要查哪個城市的天氣。" * 30 + "</step>\n" + CALL
SETTINGS = ModelSettings()
INDEX = ToolIndex(TOOLS)


def body(text: str, *, logprobs: bool) -> bytes:
    message, finish = server_message(text, generation="brace", tools=TOOLS)
    tokens = estimate_tokens(text)
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
    choice["logprobs"] = (
        {"content": logprobs_content(text, tokens, stopped=True)} if logprobs else None
    )
    usage = {"prompt_tokens": 600, "completion_tokens": tokens, "total_tokens": 600 + tokens}
    document = {"id": "chatcmpl-1", "model": "foxbrain", "choices": [choice], "usage": usage}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class Reasks:
    """Stands in for the re-ask with ``tool_choice: "none"``: the raw text, at once (only the
    client's decoding is timed; the server would generate the reply a second time)."""

    def __init__(self, text: str) -> None:
        self.count = 0
        self._body = json.dumps(
            {
                "choices": [{"message": {"role": "assistant", "content": text}}],
                "usage": {"completion_tokens": estimate_tokens(text)},
            },
            ensure_ascii=False,
        ).encode()

    async def __call__(self, reason: str) -> Any:
        self.count += 1
        return _parse_completion(loads_json(self._body))


async def handle(raw: bytes, reask: Reasks) -> int:
    response = _parse_completion(loads_json(raw))  # the backend's decoder
    settled: Settled = await settle(response, SETTINGS, INDEX, reask, tools=True)
    recovery = await decide_calls(settled, INDEX, SETTINGS)
    return len(recovery.calls)


def median_us(raw: bytes, reask: Reasks, loop: asyncio.AbstractEventLoop) -> float:
    batch = 200
    start = time.perf_counter()
    for _ in range(batch):
        loop.run_until_complete(handle(raw, reask))
    return (time.perf_counter() - start) / batch * 1e6


def main() -> None:
    loop = asyncio.new_event_loop()
    for name, text in (("short", SHORT), ("long", LONG)):
        plain, tokens = body(text, logprobs=False), body(text, logprobs=True)
        counted, listed = Reasks(text), Reasks(text)
        calls = loop.run_until_complete(handle(plain, counted))
        assert calls == loop.run_until_complete(handle(tokens, listed)) == 1
        samples: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(21):  # interleaved, so drift on a shared machine hits both alike
            samples[False].append(median_us(plain, counted, loop))
            samples[True].append(median_us(tokens, listed, loop))
        without, with_ = statistics.median(samples[False]), statistics.median(samples[True])
        extra = "a re-ask (a second generation)" if counted.count else "no re-ask"
        print(
            f"{name} reply (~{estimate_tokens(text)} tokens): body {len(plain):,} B, "
            f"{len(tokens):,} B with logprobs; {without:.1f} us -> {with_:.1f} us per reply "
            f"(x{with_ / without:.2f}); without the tokens: {extra}"
        )
    loop.close()


if __name__ == "__main__":
    main()
