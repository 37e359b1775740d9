"""FoxBrain in the same process: vLLM's Python API (the guide's deployment method 1).

The guide builds ``vllm.LLM(model=..., tensor_parallel_size=N, dtype="bfloat16")``, renders the
prompt with ``tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)``
and calls ``llm.generate(prompt, sampling_params)``. `InProcessVLLMModel` does the same
behind foxagent's `Model` interface and returns the raw generated text:
the agent loop recovers FoxBrain's tool calls from it, as it does for every backend.

Batching is the reason to run in process. ``llm.generate`` blocks and takes a whole list of
prompts, so concurrent runs (``asyncio.gather(*(agent.arun(q) for q in questions))``) queue their
requests and one flush sends every queued prompt in ONE ``generate`` call, in a worker thread:
each step of all runs is a single batch on the GPU. Requests that arrive while a batch is
generating wait for the next one. Only one ``generate`` runs at a time (``vllm.LLM`` is not
thread-safe).

vLLM is imported only inside the functions that need it: ``import foxagent`` and the tests
work without it (``pip install 'foxagent[vllm]'`` installs it).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from foxagent._exceptions import ModelError, ModelResponseError, UserError
from foxagent._messages import ModelResponse, ModelSettings, Usage
from foxagent.models._base import Model

__all__ = ["InProcessVLLMModel"]

_INSTALL_HINT = "pip install 'foxagent[vllm]'"


class _Shipped(enum.Enum):
    """Default of ``chat_template``: foxagent's own ``llama31_chattemplate.jinja``."""

    TEMPLATE = "foxagent's llama31_chattemplate.jinja"


@dataclass(slots=True)
class _Pending:
    """One request waiting for the next batch."""

    prompt: str
    params: Any
    future: asyncio.Future[Any]


class InProcessVLLMModel(Model):
    """FoxBrain through ``vllm.LLM`` in this process, batching concurrent runs.

    Example:
        >>> model = InProcessVLLMModel("/models/FoxBrain", tensor_parallel_size=2)  # doctest: +SKIP
        >>> agent = Agent(tools=[get_weather], model=model)  # doctest: +SKIP
        >>> results = await asyncio.gather(*(agent.arun(q) for q in questions))  # doctest: +SKIP

    Args:
        model: the model path or name, to build ``vllm.LLM(model=...)``; leave out when ``llm``
            is given.
        llm: an existing ``vllm.LLM`` (or anything with its ``generate(prompts,
            sampling_params)`` and ``get_tokenizer()``).
        tensor_parallel_size: GPUs to split the model over (the guide uses 2 for BF16).
        dtype: the weights' dtype (the guide's ``"bfloat16"``).
        chat_template: template text set as ``tokenizer.chat_template``; foxagent's shipped
            Llama 3.1 tool-calling template by default, ``None`` keeps the tokenizer's own.
        max_batch_size: the most prompts sent to one ``generate`` call.
        batch_window: seconds a batch waits for more requests before it is sent. Sync tools run
            in worker threads and finish at slightly different times; a few milliseconds lets
            their runs join one batch, and costs nothing next to generation.
        sampling_params_factory: builds one request's sampling parameters from keyword
            arguments (``temperature``, ``top_p``, ``max_tokens``, ``stop``, ``seed``,
            ``stop_token_ids`` for stop strings that are special tokens, and the settings'
            ``extra_body``); ``vllm.SamplingParams`` by default.
        generate_kwargs: extra keyword arguments for every ``generate`` call
            (``{"use_tqdm": False}`` by default: no progress bar per step).
        **llm_kwargs: further ``vllm.LLM`` arguments (``max_model_len``,
            ``gpu_memory_utilization``, ``quantization``, ...).

    Raises:
        UserError: neither or both of ``model`` and ``llm`` were given, or vLLM is needed and
            not installed.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        llm: Any = None,
        tensor_parallel_size: int = 1,
        dtype: str = "bfloat16",
        chat_template: str | _Shipped | None = _Shipped.TEMPLATE,
        max_batch_size: int = 256,
        batch_window: float = 0.005,
        sampling_params_factory: Callable[..., Any] | None = None,
        generate_kwargs: Mapping[str, Any] | None = None,
        **llm_kwargs: Any,
    ) -> None:
        if (model is None) == (llm is None):
            raise UserError("InProcessVLLMModel needs either a model path or an `llm`, not both.")
        if max_batch_size < 1:
            raise UserError(f"max_batch_size must be at least 1, got {max_batch_size}.")
        if llm is None:
            llm = _import_vllm().LLM(
                model=model, tensor_parallel_size=tensor_parallel_size, dtype=dtype, **llm_kwargs
            )
        self.llm: Any = llm
        self.model_name = model or ""
        self.tokenizer: Any = llm.get_tokenizer()
        if isinstance(chat_template, _Shipped):
            from foxagent._templates import template_path

            chat_template = template_path().read_text(encoding="utf-8")
        if chat_template is not None:
            self.tokenizer.chat_template = chat_template  # as the guide overrides it
        added_vocab = getattr(self.tokenizer, "get_added_vocab", None)  # transformers' API
        self._special_ids: dict[str, int] = dict(added_vocab()) if added_vocab else {}
        self.max_batch_size = max_batch_size
        self.batch_window = batch_window
        self._params_factory = sampling_params_factory or _import_vllm().SamplingParams
        self._generate_kwargs = dict(
            {"use_tqdm": False} if generate_kwargs is None else generate_kwargs
        )
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (
            f"InProcessVLLMModel(model={self.model_name!r}, max_batch_size={self.max_batch_size})"
        )

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        prompt = self.render(messages, tools)
        params = self._sampling_params(settings)
        output = await self._enqueue(prompt, params)
        return self._response(output)

    def render(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] = ()
    ) -> str:
        """The prompt text FoxBrain gets for this conversation (the tokenizer's chat template).

        Raises:
            ModelError: the template refused the conversation (an unknown role, ...).
        """
        try:
            return str(
                self.tokenizer.apply_chat_template(
                    [dict(m) for m in messages],
                    tools=[dict(t) for t in tools] or None,
                    tokenize=False,
                    add_generation_prompt=True,
                )
            )
        except Exception as error:
            raise ModelError(f"The chat template cannot render the conversation: {error}") from None

    def _sampling_params(self, settings: ModelSettings) -> Any:
        fields = settings.request_fields()  # temperature, top_p, max_tokens, stop, seed, extras
        # vLLM matches stop *strings* against text decoded without special tokens, so
        # "<|eom_id|>" as a string never matches; stop on those tokens by id as well.
        stop_ids = [self._special_ids[s] for s in settings.stop if s in self._special_ids]
        if stop_ids and "stop_token_ids" not in fields:
            fields["stop_token_ids"] = stop_ids
        try:
            return self._params_factory(**fields)
        except (TypeError, ValueError) as error:
            raise UserError(f"Cannot build sampling parameters from {fields!r}: {error}") from None

    # --- batching -------------------------------------------------------------------------

    async def _enqueue(self, prompt: str, params: Any) -> Any:
        """Queue one prompt for the next batch and wait for its ``RequestOutput``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Pending(prompt, params, future))
        # One flusher at a time, so one `generate` at a time. A flusher left over from an
        # earlier event loop (a finished sync `run()`) is done and gets replaced.
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Send the queued prompts in batches until the queue is empty."""
        while self._pending:
            # Let every run that is ready join: two loop turns for runs resuming right now,
            # then the window for runs whose sync tools are still finishing in threads.
            await asyncio.sleep(0)
            await asyncio.sleep(self.batch_window)
            batch = self._pending[: self.max_batch_size]
            del self._pending[: self.max_batch_size]
            batch = [item for item in batch if not item.future.done()]  # drop cancelled runs
            if batch:
                await self._generate(batch)

    async def _generate(self, batch: list[_Pending]) -> None:
        """One ``llm.generate`` call for the batch; each future gets its own output or error."""
        prompts = [item.prompt for item in batch]
        params = [item.params for item in batch]
        try:
            outputs = await asyncio.to_thread(
                self.llm.generate, prompts, params, **self._generate_kwargs
            )
            outputs = list(outputs)  # vLLM returns them in prompt order
            if len(outputs) != len(batch):
                raise ModelResponseError(
                    f"vLLM returned {len(outputs)} outputs for {len(batch)} prompts"
                )
        except Exception as error:
            for item in batch:  # one exception per run: each gets its own transcript
                if not item.future.done():
                    item.future.set_exception(_model_error(error))
            return
        for item, output in zip(batch, outputs, strict=True):
            if not item.future.done():
                item.future.set_result(output)

    def _response(self, output: Any) -> ModelResponse:
        """A vLLM ``RequestOutput`` as the loop's ``ModelResponse`` (raw text, no tool calls)."""
        try:
            completion = output.outputs[0]
            text = str(completion.text)
        except (AttributeError, IndexError, TypeError):
            raise ModelResponseError(f"not a vLLM RequestOutput: {output!r:.200}") from None
        usage = Usage(
            prompt_tokens=len(output.prompt_token_ids or ()),
            completion_tokens=len(completion.token_ids or ()),
        )
        return ModelResponse(
            message={"role": "assistant", "content": text, "tool_calls": []},
            finish_reason="length" if completion.finish_reason == "length" else "stop",
            usage=usage,
            model=self.model_name,
        )


def _model_error(error: Exception) -> ModelError:
    if isinstance(error, ModelResponseError):
        return ModelResponseError(str(error))
    return ModelError(f"vLLM's generate failed: {type(error).__name__}: {error}")


def _import_vllm() -> Any:
    try:
        import vllm  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise UserError(
            f"InProcessVLLMModel needs vLLM, which is not installed: {_INSTALL_HINT}"
        ) from None
    return vllm
