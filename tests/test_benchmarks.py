"""The hot-path benchmark still runs and still compares like with like (no timing asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_agent_sends_the_loops_bytes_and_reports_every_client() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_agent", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # Before measuring, the stub compared the two clients' request bodies (it fails otherwise).
    checks = [line for line in done.stdout.splitlines() if ": requests " in line]
    assert len(checks) == 5 and all("byte-identical" in line for line in checks), checks
    rows = [line.split()[:8] for line in done.stdout.splitlines() if "  foxagent, " in line]
    assert len(rows) == 5  # four pairs, and issue 18's row again over aiohttp
    report = done.stdout.split("CPU ×", 1)[1]
    assert "foxagent, sync tool, aiohttp" in report and "loop, async tool" in report
