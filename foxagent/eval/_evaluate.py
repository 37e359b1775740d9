"""An evaluation from start to end: pick the cases, run them, write the JSON and HTML reports.

The per-case records go to ``<report>.cases.jsonl`` next to the JSON report as they finish
(`foxagent.eval._jobs`), so the same command after an interruption resumes where it stopped.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from foxagent.eval._bfcl_data import CATEGORIES, BFCLCase, load_cases, select
from foxagent.eval._bfcl_run import AgentOptions, run_bfcl_case
from foxagent.eval._checker import bfcl_checker
from foxagent.eval._html import render_html
from foxagent.eval._jobs import CaseStore, run_all
from foxagent.eval._local_run import load_local_cases, run_local_case
from foxagent.eval._report import (
    BFCL_SCORES,
    LOCAL_SCORES,
    bfcl_summary,
    local_summary,
    table,
    write_json,
)
from foxagent.eval._wheel import BFCL_REQUIREMENT, BFCL_WHEEL_SHA256, fetch_bfcl_wheel

__all__ = ["EvalPlan", "cases_path", "evaluate"]

_BFCL_COLUMNS: tuple[str, ...] = (
    "id",
    "category",
    "raw_ok",
    "foxagent_ok",
    "run_ok",
    "raw_calls",
    "foxagent_calls",
    "run_calls",
    "repairs",
    "latency_ms",
    "foxagent_why",
    "error",
)
_LOCAL_COLUMNS: tuple[str, ...] = (
    "id",
    "category",
    "lang",
    "right",
    "tool_ok",
    "question",
    "called",
    "answer",
    "why",
    "latency_ms",
    "error",
)


@dataclass(frozen=True, kw_only=True)
class EvalPlan:
    """What to evaluate and where the reports go.

    Attributes:
        suite: ``bfcl`` or ``local``.
        categories: BFCL categories (``None``: all single-turn ones); for ``local``, a filter
            on the suite's categories.
        limit: at most this many cases per category (``None``: all).
        seed: picks the cases under ``limit`` (and is the requests' sampling seed).
        concurrency: cases run at the same time.
        json_path: the JSON report (the per-case JSON lines go next to it).
        html_path: the HTML report, if wanted.
        meta: what the reports say about the run (backend, model, settings).
    """

    suite: str
    categories: tuple[str, ...] | None
    limit: int | None
    seed: int
    concurrency: int
    json_path: Path
    html_path: Path | None
    meta: Mapping[str, Any]


def cases_path(json_path: Path) -> Path:
    """The per-case JSON lines file that goes with the report ``json_path``."""
    return json_path.with_name(json_path.stem + ".cases.jsonl")


async def evaluate(
    plan: EvalPlan, options: AgentOptions, *, out: TextIO, err: TextIO
) -> dict[str, Any]:
    """Run the plan's cases through agents built from ``options``; write and return the report."""
    started = time.time()
    store = CaseStore(cases_path(plan.json_path))
    meta: dict[str, Any] = {"suite": plan.suite, **plan.meta, "seed": plan.seed}
    if plan.suite == "bfcl":
        wheel = fetch_bfcl_wheel(lambda line: _say(err, line))
        checker = bfcl_checker(wheel)
        categories = list(plan.categories or CATEGORIES)
        cases: Sequence[Any] = select(load_cases(wheel, categories), plan.limit, plan.seed)
        meta |= {"bfcl": BFCL_REQUIREMENT, "bfcl_wheel_sha256": BFCL_WHEEL_SHA256}
        run_one: Any = functools.partial(_bfcl, options=options, checker=checker)
        scores, columns = BFCL_SCORES, _BFCL_COLUMNS
    else:
        every = load_local_cases()
        wanted = set(plan.categories or ())
        local = [case for case in every if not wanted or case.category in wanted]
        cases = _limited(local, plan.limit)
        run_one = functools.partial(run_local_case, options=options)
        scores, columns = LOCAL_SCORES, _LOCAL_COLUMNS
    _say(err, f"{len(cases)} cases, {plan.concurrency} at a time; records in {store.path}")
    records = await run_all(
        cases,
        run_one,
        case_id=lambda case: str(case.id),
        store=store,
        concurrency=plan.concurrency,
        err=err,
        describe=functools.partial(_describe, scores=scores),
    )
    if plan.suite == "bfcl":
        summary = bfcl_summary(records, [c for c in CATEGORIES if c in categories])
    else:
        summary = local_summary(records)
    meta["seconds"] = round(time.time() - started, 2)
    report = {"meta": meta, "summary": summary, "cases": records}
    write_json(plan.json_path, report)
    if plan.html_path is not None:
        title = f"foxagent eval --suite {plan.suite}"
        page = render_html(
            title=title,
            meta=meta,
            summary=summary,
            scores=scores,
            records=records,
            columns=columns,
        )
        plan.html_path.parent.mkdir(parents=True, exist_ok=True)
        plan.html_path.write_text(page, encoding="utf-8")
    out.write(table(summary, scores) + "\n")
    written = f"{plan.json_path}" + (f" and {plan.html_path}" if plan.html_path else "")
    _say(err, f"report written to {written}")
    return report


async def _bfcl(case: BFCLCase, *, options: AgentOptions, checker: Any) -> dict[str, Any]:
    return await run_bfcl_case(case, options, checker)


def _limited(cases: Sequence[Any], limit: int | None) -> list[Any]:
    """The first ``limit`` cases of each category (the local suite is small and ordered)."""
    if limit is None:
        return list(cases)
    taken: dict[str, int] = {}
    chosen = []
    for case in cases:
        if taken.get(case.category, 0) < limit:
            taken[case.category] = taken.get(case.category, 0) + 1
            chosen.append(case)
    return chosen


def _describe(records: list[dict[str, Any]], *, scores: Sequence[tuple[str, str]]) -> str:
    parts = []
    for field, name in scores:
        right = sum(1 for r in records if r.get(field) is True)
        parts.append(f"{name} {right}/{len(records)}")
    errors = sum(1 for r in records if "error" in r)
    return ", ".join(parts) + (f", {errors} errors" if errors else "")


def _say(err: TextIO, line: str) -> None:
    err.write(f"foxagent eval: {line}\n")
    err.flush()
