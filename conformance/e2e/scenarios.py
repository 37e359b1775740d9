"""The Tier 2 scenarios: foxagent's Agent and CLI against a real vLLM server.

``record.py`` runs each one against a real vLLM (through a recording proxy) and stores the HTTP
exchanges in ``tests/fixtures/vllm_e2e/``; ``tests/test_vllm_replay.py`` runs the same scenario
against a server that replays them. The model is SmolLM2-135M, so the scenarios ask for wire
shapes (auto, required and named tool choice, streaming and not), not for good answers: what a
run ends with is recorded and must come out the same on replay.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foxagent import Agent, ModelSettings, RunError, Toolset, tool
from foxagent.models.vllm import VLLMModel
from foxagent_tools.calculator import calculator

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "vllm_e2e"
QUESTION = "What is 17 * 23? Use the calculator."
QUESTION_ZH = "台北現在天氣如何？"
NAMED_CALCULATOR = {"type": "function", "function": {"name": "calculator"}}
NAMED_WEATHER = {"type": "function", "function": {"name": "get_weather"}}


@tool
def get_weather(location: str) -> dict[str, Any]:
    """Get the current weather for a place (a fixed answer: no network in tests).

    Args:
        location: City name in any language, e.g. "台北".
    """
    return {"location": location, "temperature_c": 23, "condition": "cloudy"}


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One run: through the ``Agent`` API or the ``foxagent run`` CLI."""

    name: str
    question: str = QUESTION
    tool_choice: str | Mapping[str, Any] = "auto"
    strict_tools: bool = False
    stream: bool = False
    cli: bool = False
    command: str = "run"  # the CLI's subcommand
    cli_args: tuple[str, ...] = ()
    # Greedy and short: a 135M model on 2 CPU cores writes ~7 tokens/s.
    settings: Mapping[str, Any] = field(
        default_factory=lambda: {"temperature": 0.0, "max_tokens": 64, "seed": 42}
    )
    max_steps: int = 3

    @property
    def fixture(self) -> Path:
        return FIXTURES / f"{self.name}.json"


# Without strict tools vLLM 0.32 constrains only the call's envelope, and SmolLM2 fills the
# arguments with a copy of the tool's schema; with them the arguments follow the schema.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(name="agent-auto"),
    Scenario(name="agent-auto-stream", stream=True),
    Scenario(name="agent-required-loose", tool_choice="required"),
    Scenario(name="agent-required", tool_choice="required", strict_tools=True),
    Scenario(name="agent-required-stream", tool_choice="required", strict_tools=True, stream=True),
    Scenario(name="agent-named", tool_choice=NAMED_CALCULATOR, strict_tools=True),
    Scenario(
        name="agent-named-stream", tool_choice=NAMED_CALCULATOR, strict_tools=True, stream=True
    ),
    Scenario(
        name="agent-named-zh", question=QUESTION_ZH, tool_choice=NAMED_WEATHER, strict_tools=True
    ),
    Scenario(name="cli-auto", cli=True, cli_args=("--json",)),
    Scenario(
        name="cli-required-stream",
        cli=True,
        cli_args=("--tool-choice", "required", "--strict-tools", "--stream"),
    ),
    Scenario(
        name="cli-named",
        cli=True,
        cli_args=("--tool-choice", "calculator", "--strict-tools", "--json"),
    ),
    Scenario(name="cli-doctor", cli=True, command="doctor"),
)


def agent_for(scenario: Scenario, base_url: str) -> Agent:
    """The agent a scenario runs (no system prompt: FoxBrain's tag format is beyond 135M)."""
    settings = ModelSettings(
        tool_choice=scenario.tool_choice, strict_tools=scenario.strict_tools, **scenario.settings
    )
    return Agent(
        tools=Toolset([calculator, get_weather]),
        model=VLLMModel(base_url, api_key="sk-e2e-key", backoff=0.01),
        system_prompt=None,
        max_steps=scenario.max_steps,
        settings=settings,
        stream=scenario.stream,
    )


async def run_agent(scenario: Scenario, base_url: str) -> dict[str, Any]:
    """Run an Agent scenario; what it ended with, as plain JSON."""
    async with agent_for(scenario, base_url) as agent:
        try:
            result = await agent.arun(scenario.question)
        except RunError as error:
            return {"error": type(error).__name__, "messages": len(error.messages)}
    calls = [
        {"name": c.name, "arguments": c.arguments, "status": c.status, "result": c.result}
        for c in result.tool_calls
    ]
    return {"answer": result.answer, "steps": result.steps, "calls": calls}


def cli_command(scenario: Scenario) -> list[str]:
    """``foxagent run`` for a CLI scenario (settings as flags, tools from the stock set), or
    another subcommand with the server from the environment."""
    if scenario.command != "run":
        return [sys.executable, "-m", "foxagent", scenario.command, *scenario.cli_args]
    return [
        sys.executable,
        "-m",
        "foxagent",
        "run",
        scenario.question,
        "--tools",
        "calculator",
        "--no-system-prompt",
        "--temperature",
        str(scenario.settings["temperature"]),
        "--max-tokens",
        str(scenario.settings["max_tokens"]),
        "--max-steps",
        str(scenario.max_steps),
        *scenario.cli_args,
    ]


def cli_environment(base_url: str) -> dict[str, str]:
    """The CLI's environment: the server, a key, and nothing that points elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOXAGENT_", "OPENAI_"))}
    return env | {"FOXAGENT_BASE_URL": base_url, "FOXAGENT_API_KEY": "sk-e2e-key"}


async def run_cli(scenario: Scenario, base_url: str, cwd: Path) -> dict[str, Any]:
    """Run a CLI scenario in a subprocess; its exit code and stdout."""
    process = await asyncio.create_subprocess_exec(
        *cli_command(scenario),
        env=cli_environment(base_url),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    return {"exit_code": process.returncode, "stdout": cli_output(out.decode(), base_url)}


def cli_output(stdout: str, base_url: str) -> Any:
    """The CLI's stdout, parsed when it is ``--json``; timings and the ids foxagent makes for
    calls it recovered or refused vary between runs and are left out."""
    try:
        document = json.loads(stdout)
    except ValueError:
        return stdout.replace(base_url, "<base_url>")  # doctor names the server's random port
    if isinstance(document, dict):
        document.pop("timings", None)
        for call in document.get("tool_calls", []):
            call.pop("duration", None)
            call.pop("id", None)
    return document
