"""A backend for users who already hold an ``openai.AsyncOpenAI`` client.

It costs more CPU per request than `VLLMModel` (the SDK builds typed
objects for every response), so the default backend stays the lean one; this adapter is for
applications that configure their client centrally (proxies, custom headers, Azure-style
endpoints). The SDK's own retries apply; its exceptions are translated into foxagent's.

The ``openai`` package is an extra (``pip install 'foxagent[openai]'``); without it this module
still imports, and building an `OpenAIClientModel` raises `UserError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from foxagent._affinity import DEFAULT_AFFINITY_HEADERS, affinity_header_names, affinity_headers
from foxagent._exceptions import (
    ModelConnectionError,
    ModelHTTPError,
    ModelResponseError,
    ModelTimeoutError,
    UserError,
)
from foxagent._messages import ModelResponse, ModelSettings, Usage
from foxagent.models._base import Model
from foxagent.models._generated import generated_text

if TYPE_CHECKING:
    import openai

__all__ = ["OpenAIClientModel"]


class OpenAIClientModel(Model):
    """Use an existing ``openai.AsyncOpenAI`` client pointed at a vLLM server.

    Args:
        client: the user's client (its ``base_url`` and ``api_key`` are used as they are).
        model_name: the served model's name; ``None`` asks the server's ``/models``.
        close_client: close the client in `aclose` (off: the client is the user's).
        affinity_headers: header names that carry the run's session-affinity id on every
            request, as for `VLLMModel`. ``None`` or empty: no such header.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model_name: str | None = None,
        *,
        close_client: bool = False,
        affinity_headers: str | Sequence[str] | None = DEFAULT_AFFINITY_HEADERS,
    ) -> None:
        _require_openai()
        try:
            self.affinity_headers = affinity_header_names(affinity_headers)
        except ValueError as error:
            raise UserError(f"OpenAIClientModel: {error}") from None
        self.client = client
        self.model_name = model_name
        self.close_client = close_client

    def __repr__(self) -> str:
        base_url = str(self.client.base_url)
        return f"OpenAIClientModel(base_url={base_url!r}, model_name={self.model_name!r})"

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        import openai

        fields = settings.request_fields()
        # Fields the SDK does not know by name travel in extra_body, as vLLM expects them.
        known = {"temperature", "max_tokens", "top_p", "stop", "seed"}
        extra = {key: value for key, value in fields.items() if key not in known}
        arguments: dict[str, Any] = {key: value for key, value in fields.items() if key in known}
        if tools:
            arguments["tools"] = settings.request_tools(tools)
            arguments["tool_choice"] = settings.tool_choice
            if settings.asks_generated_tokens(tools=True):
                arguments["logprobs"] = True  # see foxagent.models._generated
        try:
            completion = await self.client.chat.completions.create(
                model=self.model_name or await self._served_model(),
                messages=list(messages),  # type: ignore[arg-type]
                extra_body=extra or None,
                extra_headers=affinity_headers(self.affinity_headers),
                **arguments,
            )
        except openai.APITimeoutError:
            raise ModelTimeoutError("The model server did not answer in time") from None
        except openai.APIConnectionError as error:
            raise ModelConnectionError(f"Cannot talk to the model server: {error}") from None
        except openai.APIStatusError as error:
            raise ModelHTTPError(error.status_code, _status_message(error)) from None
        if not completion.choices:
            raise ModelResponseError("The server's chat completion has no choices")
        choice = completion.choices[0]
        message = choice.message.model_dump(exclude_none=False)
        usage = completion.usage.model_dump() if completion.usage else None
        logprobs = choice.logprobs.model_dump() if choice.logprobs else None
        return ModelResponse(
            message=message,
            finish_reason=choice.finish_reason,
            usage=Usage.from_wire(usage),
            model=completion.model,
            generated_text=generated_text(logprobs),
        )

    async def _served_model(self) -> str:
        import openai

        try:
            page = await self.client.models.list()
        except openai.OpenAIError as error:
            raise ModelConnectionError(f"Cannot list the server's models: {error}") from None
        if not page.data:
            raise ModelResponseError("The server lists no model")
        self.model_name = page.data[0].id
        return self.model_name

    async def aclose(self) -> None:
        if self.close_client:
            await self.client.close()


def _require_openai() -> None:
    try:
        import openai  # noqa: F401
    except ImportError as error:
        raise UserError(
            f"OpenAIClientModel needs the 'openai' package ({error}): "
            "pip install 'foxagent[openai]'"
        ) from error


def _status_message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and "message" in inner:
            return str(inner["message"])
        if "message" in body:
            return str(body["message"])
    return str(getattr(error, "message", error))
