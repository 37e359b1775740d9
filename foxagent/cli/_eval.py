"""``foxagent eval``: BFCL or the local suite through foxagent's loop, against any backend.

The backend is chosen as for ``foxagent run`` (`foxagent.cli._backend.choose_backend`: a flag,
the environment or a config file, else the default server if one answers, else the embedded
model) and built the same way. One model is shared by every case; each case gets an agent of
its own, because each BFCL case offers its own functions. stdout gets the summary table; the
backend line, progress and errors go to stderr.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from foxagent._exceptions import UserError
from foxagent._messages import ModelSettings
from foxagent._prompts import DEFAULT_SYSTEM_PROMPT
from foxagent.cli._backend import Backend, announce_backend
from foxagent.cli._config import RunConfig
from foxagent.cli._exit import ExitCode
from foxagent.cli._run import _local_model, _request_timeout, _system_prompt
from foxagent.eval._bfcl_run import AgentOptions
from foxagent.eval._capture import RecordingModel
from foxagent.eval._evaluate import EvalPlan, evaluate
from foxagent.models._base import Model
from foxagent.models.vllm import VLLMModel

__all__ = ["eval_command"]


def eval_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    """Run ``foxagent eval``.

    Returns:
        ``OK`` the report was written (whatever the accuracy); ``USAGE`` bad flags, or the
        local suite is missing; ``UNREACHABLE`` no case got a single reply;
        ``INTERRUPTED`` Ctrl-C (the finished cases are kept: run again to resume).
    """
    try:
        config = RunConfig.resolve(flags)
        plan = _plan(flags)
        backend = announce_backend("eval", flags, config, err)
        options = _options(config, backend, flags, err)
        plan = dataclasses.replace(plan, meta=_meta(config, backend, options))
        report = asyncio.run(_evaluate(plan, options, out, err))
    except KeyboardInterrupt:
        err.write("\nfoxagent eval: interrupted; run the same command again to resume\n")
        return ExitCode.INTERRUPTED
    except UserError as error:
        err.write(f"foxagent eval: {error}\n")
        return ExitCode.USAGE
    cases = report["cases"]
    if cases and not any(case.get("replied") for case in cases):
        first = next((case["error"] for case in cases if "error" in case), "no reply")
        err.write(f"foxagent eval: no case got a reply from the model: {first}\n")
        return ExitCode.UNREACHABLE
    return ExitCode.OK


async def _evaluate(plan: EvalPlan, options: AgentOptions, out: TextIO, err: TextIO) -> Any:
    try:
        return await evaluate(plan, options, out=out, err=err)
    finally:
        await options.model.aclose()  # the shared model's connections belong to this loop


def _plan(flags: Mapping[str, Any]) -> EvalPlan:
    suite = str(flags.get("suite") or "bfcl")
    limit, concurrency = flags.get("limit"), flags.get("concurrency") or 4
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 case per category, got {limit}.")
    if concurrency < 1:
        raise UserError(f"--concurrency must be at least 1, got {concurrency}.")
    categories = [
        name.strip()
        for group in flags.get("categories") or ()
        for item in group
        for name in str(item).split(",")
        if name.strip()
    ]
    json_path = Path(flags.get("json") or f"foxagent-eval-{suite}.json")
    html = flags.get("html")
    return EvalPlan(
        suite=suite,
        categories=tuple(categories) or None,
        limit=limit,
        seed=int(flags["seed"]) if flags.get("seed") is not None else 42,
        concurrency=int(concurrency),
        json_path=json_path,
        html_path=Path(html) if html else None,
        meta={},
    )


def _options(
    config: RunConfig, backend: Backend, flags: Mapping[str, Any], err: TextIO
) -> AgentOptions:
    if config.max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, got {config.max_steps}.")
    if config.max_tokens is not None and config.max_tokens < 1:
        raise UserError(f"--max-tokens must be at least 1, got {config.max_tokens}.")
    settings = ModelSettings()
    if flags.get("seed") is not None:
        settings = dataclasses.replace(settings, seed=int(flags["seed"]))
    if config.temperature is not None:
        settings = dataclasses.replace(settings, temperature=config.temperature)
    if config.max_tokens is not None:
        settings = dataclasses.replace(settings, max_tokens=config.max_tokens)
    system_prompt = _system_prompt(config)
    model: Model
    if backend.url is None:
        model = _local_model(backend, err)
        if config.system_prompt is None:
            system_prompt = None  # as `foxagent run`: the small model gets no FoxBrain prompt
    else:
        timeout = _request_timeout(config.request_timeout)
        if timeout is None:
            model = VLLMModel(backend.url, api_key=config.api_key, model_name=config.model)
        else:  # the whole request, retries included, as `foxagent run` counts it
            model = VLLMModel(
                backend.url,
                api_key=config.api_key,
                model_name=config.model,
                timeout=timeout,
                retry_budget=timeout,
            )
    return AgentOptions(
        model=RecordingModel(model),
        settings=settings,
        system_prompt=system_prompt,
        max_steps=config.max_steps,
    )


def _meta(config: RunConfig, backend: Backend, options: AgentOptions) -> dict[str, Any]:
    settings = options.settings
    return {
        "backend": backend.line,
        "base_url": backend.url,
        "model": config.model,
        "model_file": backend.model_file,
        "system_prompt": _prompt_kind(options.system_prompt),
        "max_steps": options.max_steps,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
    }


def _prompt_kind(prompt: str | None) -> str:
    if not prompt:
        return "none"
    return "FoxBrain's" if prompt == DEFAULT_SYSTEM_PROMPT else "custom"
