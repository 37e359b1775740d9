"""Shared pytest hooks and fixtures: one weather tool, one fake vLLM server, one agent factory.

* `get_weather`: a deterministic tool (23 degrees anywhere, a `ToolError` for Atlantis) that
  notes its arguments in `WEATHER_CALLS` (read them through the `weather_calls` fixture).
  Modules import it: ``from tests.conftest import get_weather``.
* `fake_server`: a started `FakeVLLMServer` with an empty script (``fake_server.add(...)`` the
  replies), stopped after the test. A module changes its arguments by overriding the
  `fake_server_options` fixture (e.g. to require an API key).
* `make_agent`: ``make_agent(**overrides)`` builds an `Agent` on a `VLLMModel` talking to
  `fake_server` (started on first use), to another ``server=``, or on a given ``model=``. A
  module sets its defaults by overriding `agent_options` (the Agent's keyword arguments) and
  `model_options` (the VLLMModel's); ``model_options=`` in a call updates the latter.
* PostgreSQL: with ``FOXAGENT_TEST_POSTGRES`` unset, the first test that needs ``conninfo``
  gets a private server started for this session and stopped at its end (see
  `pytest_runtest_setup`); without PostgreSQL installed those tests skip, saying why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from foxagent import Agent, ToolError, tool
from foxagent.models import Model
from foxagent.models.vllm import VLLMModel
from foxagent.testing import FakeVLLMServer

AgentFactory = Callable[..., Agent]
"""The type of the `make_agent` fixture."""

WEATHER_CALLS: list[dict[str, Any]] = []
"""The arguments of each `get_weather` call, oldest first (cleared by `weather_calls`)."""


@tool
def get_weather(
    location: str, unit: Literal["celsius", "fahrenheit"] = "celsius"
) -> dict[str, Any]:
    """Weather now.

    Args:
        location: City.
        unit: Unit.
    """
    WEATHER_CALLS.append({"location": location, "unit": unit})
    if location == "Atlantis":
        raise ToolError("No place called 'Atlantis' was found.")
    return {"location": location, "temperature": 23, "unit": unit}


@pytest.fixture
def weather_calls() -> Iterator[list[dict[str, Any]]]:
    """`WEATHER_CALLS`, empty when the test starts (and emptied again after it)."""
    WEATHER_CALLS.clear()
    yield WEATHER_CALLS
    WEATHER_CALLS.clear()


@pytest.fixture
def fake_server_options() -> dict[str, Any]:
    """`FakeVLLMServer` keyword arguments for `fake_server`; override it in a module."""
    return {}


@pytest.fixture
def fake_server(fake_server_options: dict[str, Any]) -> Iterator[FakeVLLMServer]:
    """A running `FakeVLLMServer` on 127.0.0.1 with an empty script."""
    with FakeVLLMServer(**fake_server_options) as server:
        yield server


@pytest.fixture
def agent_options() -> dict[str, Any]:
    """The `Agent` keyword arguments `make_agent` starts from; override it in a module."""
    return {"tools": [get_weather]}


@pytest.fixture
def model_options(fake_server_options: dict[str, Any]) -> dict[str, Any]:
    """The `VLLMModel` keyword arguments `make_agent` starts from: the fake server's API key and
    a short backoff between retries. Override it in a module."""
    return {"api_key": fake_server_options.get("api_key"), "backoff": 0.01}


@pytest.fixture
def make_agent(
    request: pytest.FixtureRequest,
    agent_options: dict[str, Any],
    model_options: dict[str, Any],
) -> AgentFactory:
    """``make_agent(*, server=None, model=None, model_options=None, **overrides)``: an `Agent`
    with `agent_options` updated by ``overrides``, on ``model`` when given, else on a
    `VLLMModel` for ``server`` (default: the `fake_server` fixture) with `model_options`
    updated by the ``model_options`` argument."""
    defaults = model_options

    def build(
        *,
        server: FakeVLLMServer | None = None,
        model: Model | None = None,
        model_options: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Agent:
        if model is None:
            if server is None:
                server = request.getfixturevalue("fake_server")
            model = VLLMModel(server.base_url, **{**defaults, **(model_options or {})})
        elif model_options is not None:
            raise TypeError("model_options only applies to the VLLMModel make_agent builds")
        return Agent(model=model, **{**agent_options, **overrides})

    return build


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the recovery corpus's per-family rates when that module ran."""
    module = sys.modules.get("tests.test_corpus_recovery")
    if module is None:
        return
    for line in module.summary_lines():
        terminalreporter.write_line(line)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(
    process: subprocess.Popen[bytes], port: int, *, seconds: float, output: Callable[[], str]
) -> None:
    """Wait until ``process`` accepts connections on ``port``; raise (and kill it) otherwise.

    ``output`` tells what the process said, for the error when it exits first.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}: {output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{process.args} did not listen on {port}")


# --- PostgreSQL for the PostgresStore tests ------------------------------------------------
#
# With FOXAGENT_TEST_POSTGRES set (.ci/run sets it), the tests use that server and never skip:
# an unreachable server fails them. Without it, the first test that needs the `conninfo`
# fixture starts a private server with .ci/postgres.sh (a fresh cluster in a new temporary
# directory on a free port, about 1.5 s), and the session's end stops it and deletes the
# directory, so `make test` leaves nothing running and shares nothing with another session.
# The script installs nothing; without PostgreSQL installed those tests skip and say how to
# get it (`make postgres-deps`).

_PG_ENV = "FOXAGENT_TEST_POSTGRES"
_PG_SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "postgres.sh"
_PG_NOT_INSTALLED = 3  # .ci/postgres.sh's exit status when initdb and pg_ctl are missing


@dataclass
class _PrivatePostgres:
    """This session's own server, once the first PostgreSQL test asked for one."""

    asked: bool = False
    directory: Path | None = None
    environment: dict[str, str] | None = None
    skip_reason: str | None = None
    failure: str | None = None


_POSTGRES = _PrivatePostgres()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a test that needs ``conninfo``: a private server, or a skip saying why not."""
    if "conninfo" not in getattr(item, "fixturenames", ()):
        return
    if not _POSTGRES.asked:
        _POSTGRES.asked = True
        if not os.environ.get(_PG_ENV, "").strip():
            _start_private_postgres()
    if _POSTGRES.skip_reason is not None:
        pytest.skip(_POSTGRES.skip_reason)
    if _POSTGRES.failure is not None:
        pytest.fail(_POSTGRES.failure, pytrace=False)


def _start_private_postgres() -> None:
    # Directly under the system's temporary directory and readable by all: as root, the
    # server runs as the postgres user, which must reach it (pytest's own are private).
    directory = Path(tempfile.mkdtemp(prefix="foxagent-postgres-"))
    directory.chmod(0o755)
    environment = {
        **os.environ,
        "FOXAGENT_PG_DIR": str(directory),
        "FOXAGENT_PG_PORT": str(free_port()),
    }
    try:
        done = subprocess.run(
            ["bash", str(_PG_SCRIPT)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        done = subprocess.CompletedProcess(error.cmd, -1, "", "timed out after 120 s")
    _POSTGRES.directory, _POSTGRES.environment = directory, environment
    conninfo = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
    if conninfo:
        os.environ[_PG_ENV] = conninfo[0]  # what test_postgres_store's `conninfo` reads
    elif done.returncode == _PG_NOT_INSTALLED:
        said = done.stderr.strip().removeprefix("postgres.sh: ")
        _POSTGRES.skip_reason = (
            f"the PostgresStore tests need a PostgreSQL server and {said} Or set {_PG_ENV} "
            f"to a server's conninfo. (.ci/run installs PostgreSQL and runs them.)"
        )
    else:
        _POSTGRES.failure = (
            f"{_PG_ENV} is unset and {_PG_SCRIPT} could not start a private PostgreSQL server "
            f"(exit {done.returncode}); set {_PG_ENV} to a server's conninfo, or fix what it "
            f"says:\n{done.stderr}{done.stdout}"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop and delete the private PostgreSQL server, if this session started one."""
    directory, environment = _POSTGRES.directory, _POSTGRES.environment
    if directory is None or environment is None:
        return
    _POSTGRES.directory = None
    os.environ.pop(_PG_ENV, None)
    try:
        subprocess.run(
            ["bash", str(_PG_SCRIPT), "stop"],
            env=environment,
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
