"""Deciding from what the model generated when the server's tool parser threw text away.

vLLM's ``llama3_json`` parser (0.11 to 0.32) keeps only the JSON objects it finds in a reply and
drops the rest. So a JSON example inside an ``<answer>`` comes back as a call to a real tool,
and the prose around a call vanishes. The message alone then looks like a clean call. Two
things in the response say otherwise, and `settle` uses the better one the server sent:

- **The generated tokens** (``logprobs``, asked for by ``ModelSettings.generated_tokens``):
  every token the model wrote, whatever the parser kept. Joined, they are the reply's text, and
  foxagent's own ladder decides from it. Calls decided that way, where the server's parse named
  other calls, carry the label ``generated_text``. When a token split a character (U+FFFD in
  the text), the text still says which calls were meant: if they are the server's, the server's
  exact values run; if not, the request is asked again with the parser off.
- **The usage.** ``completion_tokens`` counts everything the model generated. `dropped_text`
  compares that count with what came back. When far more was generated than returned, or a
  reply with tools on came back empty, the agent asks the same request again, once, with
  ``tool_choice: "none"``. vLLM then returns the raw text: with the same prompt and the
  guide's ``seed`` it regenerates the same text (checked on vLLM 0.32, CPU), and foxagent's
  ladder decides from it. Calls recovered that way carry the label ``reasked_raw``.

A server that answers 5xx after the backend's retries may have discarded a finished generation
in its parser (seen on llama.cpp 2026 builds): that request is asked again the same way.

Token counts of what came back are estimated (``foxagent._tokens``): ASCII / 4, one per other
character, plus `_ENVELOPE` tokens per call for the ``{"name": ..., "parameters": ...}``
around the arguments. A re-ask needs ``completion_tokens > returned * _RATIO + _MARGIN``.
Those margins keep clean calls, whose envelope and special tokens vLLM counts too, from
triggering a re-ask; a false alarm costs one request, never a wrong call. A short drop (a few
words of example cue before a JSON example) hides in those margins: only the generated tokens
see it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from foxagent._messages import Message, ModelResponse, ModelSettings
from foxagent._offload import off_the_loop_if_long, reply_chars
from foxagent._recovery import Recovery, ToolIndex, recover_tool_calls, was_cut
from foxagent._tokens import estimate_tokens

__all__ = ["Settled", "decide_calls", "dropped_text", "reaskable", "settle"]

_NON_ASCII = re.compile(r"[^\x00-\x7f]+")

Source = Literal["served", "generated_text", "reasked_raw"]

_RATIO = 1.2
_MARGIN = 6
_ENVELOPE = 10


def dropped_text(response: ModelResponse, settings: ModelSettings, *, tools: bool) -> str | None:
    """Why the server's parse of ``response`` cannot be trusted (it dropped generated text),
    or ``None`` when what came back accounts for what was generated.

    Only with ``tool_choice: "auto"`` and tools offered: forced calls are constrained by the
    server, and with ``"none"`` there is no parser to drop anything.
    """
    generated = response.usage.completion_tokens
    if not reaskable(settings, tools=tools) or generated <= 0:
        return None
    if response.finish_reason == "length" or was_cut(generated, settings.max_tokens):
        return None  # a cut reply: its calls are refused as truncated anyway
    message = response.message
    content = message.get("content")
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, Mapping)]
    if not calls:
        if isinstance(content, str) and content.strip():
            return None
        return f"the server returned an empty reply for {generated} generated tokens"
    returned = estimate_tokens(content) if isinstance(content, str) else 0
    returned += sum(_ENVELOPE + _call_tokens(call) for call in calls)
    if generated <= returned * _RATIO + _MARGIN:
        return None
    return (
        f"the server returned {len(calls)} call(s) and about {returned} tokens of text for "
        f"{generated} generated tokens, so its parser dropped the rest"
    )


def reaskable(settings: ModelSettings, *, tools: bool) -> bool:
    """A request whose reply may be asked again with the parser off: tools offered and
    ``tool_choice: "auto"`` (forced calls are constrained; ``"none"`` has no parser)."""
    return settings.parser_may_drop_text(tools=tools)


@dataclass(frozen=True, slots=True)
class Settled:
    """The reply to decide from, and how it was obtained.

    Attributes:
        response: what recovery reads: the server's reply, the reply rebuilt from the generated
            tokens, or the reply asked again with the parser off.
        source: which of the three.
        served: the server's own message, when ``response`` was rebuilt from the tokens.
    """

    response: ModelResponse
    source: Source = "served"
    served: Message | None = None

    def label(self, recovery: Recovery) -> Recovery:
        """``recovery`` with its calls labelled by how the reply was obtained (a call decided
        from the generated text is labelled only when the server's parse named other calls)."""
        if self.source == "served" or not recovery.calls:
            return recovery
        if self.source == "generated_text" and [c.name for c in recovery.calls] == _names(
            self.served
        ):
            return recovery
        label = self.source
        calls = tuple(replace(c, repairs=(*c.repairs, label)) for c in recovery.calls)
        return replace(recovery, calls=calls)


async def settle(
    response: ModelResponse,
    settings: ModelSettings,
    index: ToolIndex,
    reask: Callable[[str], Awaitable[ModelResponse]],
    *,
    tools: bool,
) -> Settled:
    """The reply the agent decides from (module docstring). ``reask(reason)`` sends the same
    request with the parser off; ``tools`` says whether the request offered any."""
    if not reaskable(settings, tools=tools):
        return Settled(response)
    generated = response.generated_text
    if generated is not None and generated.strip():
        if "\ufffd" not in generated:
            return Settled(_from_text(response, generated), "generated_text", response.message)
        if await _same_calls(response, generated, index, settings):
            return Settled(response)
        split = "the generated text names other calls than the server's parse"
        return Settled(await reask(split), "reasked_raw")
    dropped = dropped_text(response, settings, tools=tools)
    if dropped is None:
        return Settled(response)
    return Settled(await reask(dropped), "reasked_raw")


async def decide_calls(settled: Settled, index: ToolIndex, settings: ModelSettings) -> Recovery:
    """The calls ``settled``'s reply asks to run, refused candidates, and the rest of its text.

    With ``tool_choice: "none"`` in the caller's ``settings`` nothing runs, whatever the reply
    holds: the server returns a call as plain text then, and recovering it would overrule the
    caller. (The agent's own re-ask sends ``"none"`` too, but its reply is decided under the
    caller's settings.)
    """
    message = settled.response.message
    if settings.tool_choice == "none":
        content = message.get("content")
        return Recovery(text=content if isinstance(content, str) else "")
    recovery = await off_the_loop_if_long(
        reply_chars(message),
        recover_tool_calls,
        message,
        index,
        finish_reason=settled.response.finish_reason,
        completion_tokens=settled.response.usage.completion_tokens,
        max_tokens=settings.max_tokens,
    )
    return settled.label(recovery)


def _from_text(response: ModelResponse, text: str) -> ModelResponse:
    """``response`` as if the server's parser had been off: the generated text as content."""
    # vLLM reports "tool_calls" whenever its parser found a call, even for a generation cut at
    # max_tokens; the usage still tells a cut (recovery's was_cut).
    finish = "stop" if response.finish_reason == "tool_calls" else response.finish_reason
    message = {"role": "assistant", "content": text}
    # Built directly: dataclasses.replace reads the fields anew on every call (a few µs).
    return ModelResponse(
        message=message,
        finish_reason=finish,
        usage=response.usage,
        model=response.model,
        generated_text=text,
    )


async def _same_calls(
    response: ModelResponse, text: str, index: ToolIndex, settings: ModelSettings
) -> bool:
    """Whether ``text`` (with U+FFFD for split characters) calls what the server parsed."""
    decide = _from_text(response, text)
    meant = await off_the_loop_if_long(
        len(text),
        recover_tool_calls,
        decide.message,
        index,
        completion_tokens=response.usage.completion_tokens,
        max_tokens=settings.max_tokens,
    )
    if [c.name for c in meant.calls] != _names(response.message) or meant.rejected:
        return False
    # The text around the calls must be what the server returned too: a cue like "例如：" is
    # unreadable in U+FFFD, so text the server dropped cannot be judged from the tokens.
    rest = meant.text.strip()
    served = response.message.get("content")
    return not rest or (isinstance(served, str) and _skeleton(rest) == _skeleton(served))


def _skeleton(text: str) -> list[str]:
    """The ASCII words of ``text``: what survives a character split into U+FFFD halves."""
    return _NON_ASCII.sub(" ", text).split()


def _names(message: Message | None) -> list[str]:
    names: list[str] = []
    if not message:
        return names
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        names.append(name if isinstance(name, str) else "")
    return names


def _call_tokens(call: Mapping[str, Any]) -> int:
    function = call.get("function")
    if not isinstance(function, Mapping):
        return 0
    name, arguments = function.get("name"), function.get("arguments")
    text = (name if isinstance(name, str) else "") + (
        arguments if isinstance(arguments, str) else str(arguments or "")
    )
    return estimate_tokens(text)
