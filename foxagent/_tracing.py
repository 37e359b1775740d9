"""OpenTelemetry spans for runs, model requests and tool calls, when OpenTelemetry is installed.

With ``opentelemetry-api`` importable (``pip install foxagent[otel]`` plus an SDK and exporter
of the service's choice), each run records, following the GenAI semantic conventions:

* ``invoke_agent foxagent`` (INTERNAL): ``gen_ai.operation.name=invoke_agent``,
  ``gen_ai.agent.name``, ``gen_ai.conversation.id`` (the session), ``foxagent.run_id``;
* ``chat <model>`` (CLIENT) per model request: ``gen_ai.operation.name=chat``,
  ``gen_ai.provider.name=vllm``, ``gen_ai.request.model``, ``.temperature``, ``.max_tokens``,
  ``.top_p``, ``.seed``, ``gen_ai.response.model``, ``gen_ai.response.finish_reasons``,
  ``gen_ai.usage.input_tokens``/``output_tokens``, ``server.address``/``server.port``;
* ``execute_tool <name>`` (INTERNAL) per call: ``gen_ai.operation.name=execute_tool``,
  ``gen_ai.tool.name``, ``gen_ai.tool.call.id``, ``gen_ai.tool.type=function``.

Failures set the span's status to ERROR and ``error.type`` (the exception's class, or the call's
status). Prompts, answers and arguments are not recorded (they may hold personal data), and
nothing here ever sees the API key: the server is named by host and port only.

Without OpenTelemetry every helper is a no-op context manager.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "chat_span",
    "enabled",
    "recording",
    "response_attributes",
    "run_span",
    "server_attributes",
    "tool_span",
]

try:
    from opentelemetry import trace as _trace
except ImportError:  # the optional dependency is absent: tracing costs nothing
    _trace = None  # type: ignore[assignment]

enabled = _trace is not None
# A proxy tracer: it follows whatever tracer provider the service installs, even later.
_TRACER: Any = _trace.get_tracer("foxagent") if _trace is not None else None


def recording() -> bool:
    """A tracer provider is installed (the API alone gives no-op spans, which still cost ~20
    µs each on the hot path: skip them until a service sets a provider up).

    Asking costs a few µs (``get_tracer_provider`` reads the environment), so a run asks once,
    when it starts (``RunState.traced``), and passes the answer to each span.
    """
    if not enabled:
        return False
    # No provider set and none named in the environment: get_tracer_provider() would hand out
    # its proxy (after reading os.environ several times); say so from the module's own state.
    if (
        getattr(_trace, "_TRACER_PROVIDER", _UNKNOWN) is None
        and _PROVIDER_VARIABLE not in os.environ
    ):
        return False
    return not isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider)


_UNKNOWN = object()  # an opentelemetry-api without the module global: ask it each time
_PROVIDER_VARIABLE = "OTEL_PYTHON_TRACER_PROVIDER"


class _Span:
    """What the agent may add to a span once it knows more (a no-op without tracing)."""

    def __init__(self, span: Any = None) -> None:
        self._span = span

    def set(self, attributes: Mapping[str, Any]) -> None:
        if self._span is not None:
            self._span.set_attributes({k: v for k, v in attributes.items() if v is not None})

    def rename(self, name: str) -> None:
        if self._span is not None:
            self._span.update_name(name)

    def fail(self, error_type: str, description: str = "") -> None:
        if self._span is not None and _trace is not None:
            self._span.set_attribute("error.type", error_type)
            self._span.set_status(_trace.Status(_trace.StatusCode.ERROR, description or None))


_NOTHING = _Span()
# What every span helper returns when nothing is recorded: one shared, reentrant no-op.
_NO_SPAN: contextlib.AbstractContextManager[_Span] = contextlib.nullcontext(_NOTHING)


@contextlib.contextmanager
def _span(name: str, kind: str, attributes: Mapping[str, Any]) -> Iterator[_Span]:
    if _TRACER is None:
        yield _NOTHING
        return
    clean = {k: v for k, v in attributes.items() if v is not None}
    with _TRACER.start_as_current_span(
        name,
        kind=getattr(_trace.SpanKind, kind),
        attributes=clean,
        record_exception=False,  # a traceback's text could quote request data
        set_status_on_exception=False,
    ) as span:
        handle = _Span(span)
        try:
            yield handle
        except BaseException as error:
            handle.fail(type(error).__name__)
            raise


def server_attributes(base_url: str | None) -> dict[str, Any]:
    """``server.address``/``server.port`` of a URL (never its user, password or query)."""
    if not base_url:
        return {}
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return {"server.address": parts.hostname, "server.port": port}


def run_span(
    run_id: str, conversation_id: str | None, *, traced: bool | None = None
) -> contextlib.AbstractContextManager[_Span]:
    """The span of a whole run (``traced``: `recording`'s answer, when the caller has it)."""
    if not (recording() if traced is None else traced):
        return _NO_SPAN
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "foxagent",
        "gen_ai.conversation.id": conversation_id,
        "foxagent.run_id": run_id,
    }
    return _span("invoke_agent foxagent", "INTERNAL", attributes)


def chat_span(
    model: str | None, settings: Any, server: Mapping[str, Any], *, traced: bool | None = None
) -> contextlib.AbstractContextManager[_Span]:
    """The span of one model request (``settings``: the request's ``ModelSettings``)."""
    if not (recording() if traced is None else traced):
        return _NO_SPAN
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "vllm",
        "gen_ai.request.model": model,
        "gen_ai.request.temperature": settings.temperature,
        "gen_ai.request.max_tokens": settings.max_tokens,
        "gen_ai.request.top_p": settings.top_p,
        "gen_ai.request.seed": settings.seed,
        **server,
    }
    return _span(f"chat {model}" if model else "chat", "CLIENT", attributes)


def response_attributes(model: str | None, response: Any) -> dict[str, Any]:
    """What a chat span records of the reply (``response``: a ``ModelResponse``)."""
    return {
        "gen_ai.request.model": model,
        "gen_ai.response.model": response.model or None,
        "gen_ai.response.finish_reasons": [response.finish_reason or "unknown"],
        "gen_ai.usage.input_tokens": response.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": response.usage.completion_tokens,
    }


def tool_span(
    name: str, call_id: str, *, traced: bool | None = None
) -> contextlib.AbstractContextManager[_Span]:
    """The span of one tool call."""
    if not (recording() if traced is None else traced):
        return _NO_SPAN
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.tool.type": "function",
    }
    return _span(f"execute_tool {name}", "INTERNAL", attributes)
