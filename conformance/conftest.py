"""Runs the real vLLM (in its own venv) once per session over every conformance case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.cases import conformance_cases
from conformance.vllm_env import ensure_venv

ORACLE = Path(__file__).with_name("vllm_oracle.py")
_VERSION: list[str] = []  # filled by the vllm_version fixture, printed in the summary


def _vllm_python() -> Path:
    configured = os.environ.get("FOXAGENT_VLLM_PYTHON")
    return Path(configured) if configured else ensure_venv()


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The interpreter of the venv with the real vLLM."""
    return _vllm_python()


@pytest.fixture(scope="session")
def vllm_version(vllm_python: Path) -> str:
    """The real vLLM's version, as it reports it."""
    done = subprocess.run(
        [str(vllm_python), str(ORACLE), "--version"], capture_output=True, text=True, check=True
    )
    _VERSION.append(done.stdout.strip().splitlines()[-1])
    return _VERSION[-1]


@pytest.fixture(scope="session")
def real_vllm(vllm_python: Path, vllm_version: str) -> dict[str, dict[str, Any]]:
    """The real server's non-streaming body and SSE chunks for each case, by case id."""
    cases = conformance_cases()
    done = subprocess.run(
        [str(vllm_python), str(ORACLE)],
        input=json.dumps(cases, ensure_ascii=False),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        pytest.fail(f"the vLLM oracle failed with exit code {done.returncode}")
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {answer["id"]: answer for answer in answers}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The vLLM version compared against, and how older parser generations differ from it."""
    module = sys.modules.get("conformance.test_vllm_parser")
    version = _VERSION[0] if _VERSION else "?"
    if module is None:
        return
    terminalreporter.write_line(f"conformance: real vLLM {version}")
    for line in module.report_lines(version):
        terminalreporter.write_line(line)
