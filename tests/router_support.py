"""The real vllm-router (PyPI ``vllm-router``, a Rust binary behind a Python launcher) for tests.

`VLLMRouter` starts ``python -m vllm_router.launch_router`` on a free port of 127.0.0.1 in
front of the given workers, with session affinity (``--policy consistent_hash``: the key is
the ``x-session-id`` header, else ``x-user-id``, ... else a hash of the body) and settings that
keep a test short:

- ``--cb-failure-threshold 1``: one failed attempt on a worker opens its circuit breaker, so
  the router's own retry (``--retry-max-retries``) picks another worker instead of trying the
  dead one again (the policy skips workers whose breaker is open).
- ``--health-check-interval-secs 1`` and ``--health-failure-threshold 1``: a dead worker is
  marked unhealthy within about a second even without traffic.
- ``--prometheus-port``: a free port (the default, 29000, would collide between processes).

Its output (the Rust log, which names the hash key and the worker of every request) goes to a
temporary file, read back by `output` for assertion messages. `stop` terminates the process
(then kills it) and waits for it, so no router outlives its test.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from types import TracebackType

from tests.conftest import free_port, wait_listening

ROUTER_START_SECONDS = 20.0
"""How long the router may take to listen (it checks each worker's /health first)."""


def router_available() -> bool:
    """Whether ``vllm_router`` is installed (the ``dev`` extra installs it)."""
    return importlib.util.find_spec("vllm_router") is not None


class VLLMRouter:
    """``python -m vllm_router.launch_router`` in front of ``workers`` (``http://host:port``).

    Args:
        workers: the workers' root URLs (no ``/v1``).
        policy: the load-balancing policy.
        retries: the router's attempts per request (``--retry-max-retries``; 1: no retry).
        extra: more command-line arguments.
    """

    def __init__(
        self,
        workers: Sequence[str],
        *,
        policy: str = "consistent_hash",
        retries: int = 3,
        extra: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.command = [
            sys.executable,
            "-m",
            "vllm_router.launch_router",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--worker-urls",
            *workers,
            "--policy",
            policy,
            "--prometheus-port",
            str(free_port()),
            "--worker-startup-timeout-secs",
            "15",
            "--worker-startup-check-interval",
            "1",
            "--retry-max-retries",
            str(retries),
            "--retry-initial-backoff-ms",
            "20",
            "--retry-max-backoff-ms",
            "200",
            "--cb-failure-threshold",
            "1",
            "--health-check-interval-secs",
            "1",
            "--health-failure-threshold",
            "1",
            "--health-check-timeout-secs",
            "1",
            "--request-timeout-secs",
            "30",
            *extra,
        ]
        self._log = tempfile.TemporaryFile()
        self.process: subprocess.Popen[bytes] | None = None
        self._saved = ""

    @property
    def base_url(self) -> str:
        """The router's ``/v1`` URL, for `VLLMModel`."""
        return f"http://127.0.0.1:{self.port}/v1"

    def output(self) -> str:
        """What the router wrote so far (stdout and stderr); kept after `stop`."""
        if self._log.closed:
            return self._saved
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def start(self) -> VLLMRouter:
        """Start the router and wait until it listens (it first waits for healthy workers)."""
        # Its own process group: stop() can end the launcher and anything it started.
        self.process = subprocess.Popen(
            self.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
            start_new_session=True,
        )
        try:
            wait_listening(
                self.process, self.port, seconds=ROUTER_START_SECONDS, output=self.output
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the router (kill it after 5 s) and wait for it to be gone."""
        process, self.process = self.process, None
        if process is None:
            if not self._log.closed:
                self._log.close()
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self._saved = self.output()
        self._log.close()

    def __enter__(self) -> VLLMRouter:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
