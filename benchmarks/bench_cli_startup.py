"""How long `foxagent --help` takes, against a bare `python -c pass` in the same run.

Run from the repo root (after `make demo` or `make test` created .venv)::

    python -m benchmarks.bench_cli_startup

Runs both commands interleaved, 30 times each, and prints the medians and the difference, which is
what foxagent's own start-up costs (the target is well under 150 ms).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _wall_ms(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    script = shutil.which("foxagent") or str(Path(sys.executable).with_name("foxagent"))
    cli, bare = [], []
    for _ in range(30):
        cli.append(_wall_ms([script, "--help"]))
        bare.append(_wall_ms([sys.executable, "-c", "pass"]))
    cli_ms, bare_ms = statistics.median(cli), statistics.median(bare)
    print(f"foxagent --help: {cli_ms:.1f} ms median; python -c pass: {bare_ms:.1f} ms;")
    print(f"foxagent's own start-up: {cli_ms - bare_ms:.1f} ms")


if __name__ == "__main__":
    main()
