"""Plain data passed between the model backends and the agent loop.

Messages themselves stay OpenAI-style dicts (``{"role": ..., "content": ...}``): that is what the
server takes, what users already hold, and what a later run continues from. The values around
them (settings, usage, a model's response) are typed here. This module imports nothing from
foxagent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "FOXBRAIN_STOP",
    "Message",
    "ModelResponse",
    "ModelRetry",
    "ModelSettings",
    "StreamEnd",
    "StreamEvent",
    "TextDelta",
    "ToolCallDelta",
    "Usage",
]

Message = dict[str, Any]

# The guide's function-calling stop strings, plus <|eom_id|>: Llama 3.1 ends a tool-call turn with
# it when "Environment: ipython" is in the prompt, and a checkpoint that does not mark it as EOS
# would otherwise run on into an invented tool result.
FOXBRAIN_STOP = ("<|eot_id|>", "<|end_of_text|>", "<|end_header_id|>", "<|eom_id|>")


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSettings:
    """Sampling settings; the defaults are the FoxBrain guide's function-calling client's.

    Attributes:
        temperature: 0.5 in the guide's function-calling example.
        max_tokens: 2048 in the guide's server examples.
        top_p: not set by the guide's server clients (the server default applies).
        stop: the guide's stop strings plus ``<|eom_id|>``.
        seed: 42 in the guide; ``None`` for no seed.
        tool_choice: ``"auto"`` lets vLLM's llama3_json parser run.
        strict_tools: send every tool with ``"strict": true``. vLLM 0.32 then constrains a
            call's arguments to the tool's JSON schema (xgrammar's llama structural tag): always
            with a forcing ``tool_choice``, and in auto mode once the model has written
            ``{"name": ``. Without it only the call's envelope is constrained, and a small model
            may copy the schema itself into the arguments.
        generated_tokens: on requests whose tool parser may drop text (tools offered,
            ``tool_choice: "auto"``), also ask for the generated tokens (``logprobs: true``).
            vLLM then sends every token the model wrote, whatever its parser kept, and the agent
            decides which calls to run from that text. Measured on vLLM 0.32 (CPU): about
            90 bytes per generated token on the wire and no measurable server time. Without
            it (or on a server that ignores ``logprobs``), the agent compares token counts and
            asks again with the parser off when the counts show text was dropped.
        extra_body: any other request fields (``repetition_penalty``, ``top_k``, ...).
    """

    temperature: float | None = 0.5
    max_tokens: int | None = 2048
    top_p: float | None = None
    stop: Sequence[str] = FOXBRAIN_STOP
    seed: int | None = 42
    tool_choice: str | Mapping[str, Any] = "auto"
    strict_tools: bool = False
    generated_tokens: bool = True
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    def request_tools(self, tools: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """``tools`` as the request's ``tools`` field (marked strict with `strict_tools`)."""
        if not self.strict_tools:
            return list(tools)
        return [{**tool, "function": {**tool["function"], "strict": True}} for tool in tools]

    def parser_may_drop_text(self, *, tools: bool) -> bool:
        """Whether a server's tool parser runs on the free text of this request's reply: tools
        offered and ``tool_choice: "auto"`` (forced calls are constrained by the server, and
        ``"none"`` turns the parser off)."""
        return tools and self.tool_choice == "auto"

    def asks_generated_tokens(self, *, tools: bool) -> bool:
        """Whether a request with these settings asks for the generated tokens."""
        return self.generated_tokens and self.parser_may_drop_text(tools=tools)

    def request_fields(self) -> dict[str, Any]:
        """The settings as chat-completion request fields (unset ones left out)."""
        fields: dict[str, Any] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "stop": list(self.stop) if self.stop else None,
            "seed": self.seed,
        }
        return {key: value for key, value in fields.items() if value is not None} | dict(
            self.extra_body
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    """Token counts of one request, or of a whole run."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )

    @classmethod
    def from_wire(cls, usage: Any) -> Usage:
        """Read an OpenAI ``usage`` object (a dict, or ``None`` when the server sent none)."""
        if not isinstance(usage, Mapping):
            return cls()
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelResponse:
    """One assistant reply as a backend hands it to the loop.

    Attributes:
        message: the assistant message as the server sent it (``content``, ``tool_calls``).
        finish_reason: the choice's finish reason (``stop``, ``length``, ``tool_calls``).
        usage: tokens of this request.
        model: the model name the server reported.
        generated_text: every token the model generated, joined, when the server sent them
            (``logprobs``); ``None`` otherwise. It can differ from ``message``: a server's tool
            parser may drop text, and tokens that split a character decode to U+FFFD.
    """

    message: Message
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    generated_text: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TextDelta:
    """A piece of the reply's text, as the server streamed it."""

    kind: Literal["text"] = "text"
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call the *server* detected while streaming (vLLM sends the name once,
    then argument fragments, some of them empty)."""

    kind: Literal["tool_call"] = "tool_call"
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamEnd:
    """The stream is over; ``response`` is the whole reply, assembled from the deltas."""

    kind: Literal["end"] = "end"
    response: ModelResponse


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelRetry:
    """A model request failed in a retryable way and is sent again after ``delay`` seconds.

    Backends report it while the run waits (``foxagent.models.report_retry``); the run passes
    it on as an event.
    """

    kind: Literal["retry"] = "retry"
    attempt: int  # the retry about to be made, from 1
    delay: float
    reason: str


StreamEvent = TextDelta | ToolCallDelta | StreamEnd
