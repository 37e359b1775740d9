"""The documentation site: its CLI reference follows the parser, its pages link to one another,
and ``mkdocs build --strict`` builds it, searchable, when mkdocs is installed.

The build test also serves the built site over HTTP and opens the home page, a guide and an
API page in headless Chromium (when it is on PATH), checking the rendered DOM.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import importlib.util
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from foxagent.cli._main import _parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "_hooks/cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands(
    parser: argparse.ArgumentParser, words: list[str]
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield " ".join([*words, name]), child
                yield from _commands(child, [*words, name])


def test_the_cli_reference_has_every_command_and_flag_of_the_parser() -> None:
    page = _hook().render()
    for command, parser in _commands(_parser(), ["foxagent"]):
        assert f"`{command}`" in page, command
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue  # every command has -h; the page leaves it out
            for option in action.option_strings:
                assert f"`{option}" in page, (command, option)


def test_every_guide_is_in_the_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in DOCS.rglob("*.md"):
        if "_hooks" not in page.parts:
            assert str(page.relative_to(DOCS)) in config, page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (
        importlib.util.find_spec("mkdocs") is None
        or importlib.util.find_spec("mkdocstrings") is None
    ):
        pytest.skip("mkdocs-material and mkdocstrings are not installed (the dev extra has them)")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    return out


def test_the_site_builds_strict_with_its_pages(site: Path) -> None:
    for page in (
        "index.html",
        "guides/recovery/index.html",
        "reference/cli/index.html",
        "reference/api/foxagent/index.html",
    ):
        assert (site / page).is_file(), page
    cli = (site / "reference/cli/index.html").read_text(encoding="utf-8")
    assert "--strict-tools" in cli and "foxagent batch" in cli
    api = (site / "reference/api/foxagent/index.html").read_text(encoding="utf-8")
    assert "recover_tool_calls" in api and "ToolArgumentsError" in api


def test_search_finds_english_and_chinese_terms(site: Path) -> None:
    index = json.loads((site / "search/search_index.json").read_text(encoding="utf-8"))
    assert "search" in index["config"]["lang"] or index["config"]["lang"]
    docs = index["docs"]
    assert any("recover_tool_calls" in doc["text"] for doc in docs)
    assert any("天氣" in doc["text"] for doc in docs)
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "search" in home and 'data-md-component="search' in home


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass

    server = Quiet(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("page", "text"),
    [
        ("", "Start here"),
        ("guides/recovery/", "What each vLLM generation does"),
        ("reference/api/foxagent/", "recover_tool_calls"),
    ],
)
def test_pages_render_in_a_headless_browser(
    served: str, page: str, text: str, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not on PATH (.ci/run installs it)")
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path}",
            "--virtual-time-budget=3000",
            "--dump-dom",
            f"{served}/{page}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert text in done.stdout, done.stderr[-2000:]
    assert 'class="md-search' in done.stdout  # the search box, rendered
