"""The HTML report: self-contained, with its three SVG plots, and drawn by a real browser.

The browser test opens the page in headless Chromium (``apt-get install chromium``), takes a
screenshot and counts the pixels of each plot's colours in it (the PNG is decoded here, with
zlib: no imaging library needed). It is skipped, saying why, only when no browser is installed.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from foxagent.eval._html import _LATENCY_COLOR, _REPAIR_COLOR, COLORS, render_html
from foxagent.eval._report import BFCL_SCORES, bfcl_summary

CATEGORIES = ["simple_python", "parallel", "irrelevance"]


def records() -> list[dict[str, Any]]:
    made = []
    for index in range(30):
        category = CATEGORIES[index % 3]
        made.append(
            {
                "id": f"{category}_{index}",
                "category": category,
                "raw_calls": [{"name": "math.factorial", "arguments": {"number": 5}}],
                "foxagent_calls": [{"name": "math.factorial", "arguments": {"number": 5}}],
                "raw_ok": index % 2 == 0,
                "foxagent_ok": index % 3 != 0,
                "run_ok": True,
                "repairs": {"content:pythonic": 1} if index % 4 == 0 else {"server": 1},
                "run_calls": [],
                "latency_ms": 100.0 + index * 13,
                "model_ms": 90.0,
                "tools_ms": 1.0,
                "framework_ms": 2.0,
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "foxagent_why": None if index % 3 else "<script>alert(1)</script>",
            }
        )
    return made


def page() -> str:
    cases = records()
    return render_html(
        title="foxagent eval --suite bfcl",
        meta={"backend": "using the server at http://127.0.0.1:8883/v1", "seed": 42},
        summary=bfcl_summary(cases, CATEGORIES),
        scores=BFCL_SCORES,
        records=cases,
        columns=["id", "category", "raw_ok", "foxagent_ok", "run_ok", "foxagent_why"],
    )


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.svg: list[str] = []
        self._in: str | None = None
        self.rects: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag == "svg":
            self._in = found.get("id")
            self.svg.append(self._in or "")
        if tag == "rect" and self._in:
            self.rects[self._in] = self.rects.get(self._in, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._in = None


def test_the_report_is_self_contained_with_three_svg_plots() -> None:
    parsed = Page()
    parsed.feed(page())
    assert parsed.svg == ["accuracy", "repairs", "latency"]
    assert parsed.rects["accuracy"] == 3 * (len(CATEGORIES) + 1)  # raw, foxagent, run; + all
    assert parsed.rects["repairs"] == 2 and parsed.rects["latency"] >= 2
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    for _, attrs in parsed.tags:  # nothing is fetched: no src, no stylesheet, no remote href
        assert "src" not in attrs
        assert not str(attrs.get("href") or "").startswith(("http", "//"))
    assert "<script>alert(1)</script>" not in page()  # case text is escaped


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if found := shutil.which(name):
            return found
    return None


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB rows of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, data, header = 8, b"", b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        chunk = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            data += chunk
        position += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6)
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(data)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + best) & 0xFF
        rows.append(bytes(b for i, b in enumerate(line) if i % channels < 3))
        previous = line
    return width, height, rows


def _count(rows: list[bytes], color: str) -> int:
    rgb = bytes.fromhex(color.lstrip("#"))
    total = 0
    for row in rows:
        for x in range(0, len(row), 3):
            if row[x : x + 3] == rgb:
                total += 1
    return total


def test_a_headless_browser_draws_the_plots(tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium on this machine: apt-get install -y chromium")
    report = tmp_path / "report.html"
    report.write_text(page(), encoding="utf-8")
    shot = tmp_path / "shot.png"
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=1000,1200",
        f"--screenshot={shot}",
        report.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert shot.is_file(), done.stderr[-2000:]
    width, height, rows = _pixels(shot.read_bytes())
    assert (width, height) == (1000, 1200)
    # Every plot's colour is on screen in solid blocks: the bars were drawn.
    for color in (*COLORS, _REPAIR_COLOR, _LATENCY_COLOR):
        assert _count(rows, color) > 150, color
