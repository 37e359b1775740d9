"""The evaluation's summaries, its JSON report and the table printed at the end.

Accuracies are fractions (0 to 1) of a category's cases. Latency is per case, split into
model, tools and foxagent's own time (``framework_ms``: wall time minus model and tool time,
as ``RunResult.timings`` counts it). A case that failed counts as wrong, and is counted under
``errors`` too.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["bfcl_summary", "local_summary", "table", "write_json"]

Record = Mapping[str, Any]

#: The scores of each suite: (record field, summary name).
BFCL_SCORES: tuple[tuple[str, str], ...] = (
    ("raw_ok", "raw"),
    ("foxagent_ok", "foxagent"),
    ("run_ok", "run"),
)
LOCAL_SCORES: tuple[tuple[str, str], ...] = (("right", "right"), ("tool_ok", "tool_choice"))


def bfcl_summary(records: Sequence[Record], categories: Sequence[str]) -> dict[str, Any]:
    """Per category and over all cases: n, raw/foxagent/run accuracy, repairs, latency, tokens."""
    return _summaries(records, categories, "category", BFCL_SCORES)


def local_summary(records: Sequence[Record]) -> dict[str, Any]:
    """Per category, per language and over all: n, right and tool-choice accuracy, latency."""
    categories = list(dict.fromkeys(str(r.get("category")) for r in records))
    summary = _summaries(records, categories, "category", LOCAL_SCORES)
    languages = list(dict.fromkeys(str(r.get("lang")) for r in records))
    by_lang = _summaries(records, languages, "lang", LOCAL_SCORES)
    by_lang.pop("all", None)
    summary["by_lang"] = by_lang
    return summary


def _summaries(
    records: Sequence[Record],
    groups: Sequence[str],
    key: str,
    scores: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for group in groups:
        members = [r for r in records if r.get(key) == group]
        if members:
            result[group] = _summary(members, scores)
    if records:
        result["all"] = _summary(records, scores)
    return result


def _summary(records: Sequence[Record], scores: Sequence[tuple[str, str]]) -> dict[str, Any]:
    n = len(records)
    summary: dict[str, Any] = {"n": n}
    for field, name in scores:
        right = sum(1 for r in records if r.get(field) is True)
        summary[f"{name}_right"] = right
        summary[f"{name}_accuracy"] = round(right / n, 4) if n else 0.0
    summary["errors"] = sum(1 for r in records if "error" in r)
    summary["repairs"] = _added(r.get("repairs") or {} for r in records)
    if any("run_repairs" in r for r in records):
        summary["run_repairs"] = _added(r.get("run_repairs") or {} for r in records)
    latency = [float(r.get("latency_ms") or 0.0) for r in records]
    summary["latency_ms"] = {
        "mean": round(statistics.fmean(latency), 2) if latency else 0.0,
        "p50": round(_quantile(latency, 0.5), 2),
        "p90": round(_quantile(latency, 0.9), 2),
        "max": round(max(latency, default=0.0), 2),
    }
    for part in ("model_ms", "tools_ms", "framework_ms"):
        values = [float(r.get(part) or 0.0) for r in records]
        summary[part] = round(statistics.fmean(values), 2) if values else 0.0
    summary["tokens"] = {
        "prompt": sum(int(r.get("prompt_tokens") or 0) for r in records),
        "completion": sum(int(r.get("completion_tokens") or 0) for r in records),
    }
    return summary


def _added(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for one in counts:
        for family, count in one.items():
            total[family] = total.get(family, 0) + int(count)
    return dict(sorted(total.items(), key=lambda item: (-item[1], item[0])))


def _quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by the nearest rank (exact for small samples, no interpolation)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def write_json(path: Path, report: Mapping[str, Any]) -> None:
    """Write ``report`` to ``path`` atomically (a reader never sees half a report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n"
    descriptor, name = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def table(summary: Mapping[str, Any], scores: Sequence[tuple[str, str]]) -> str:
    """The summary as a plain-text table (one row per category, ``all`` last)."""
    names = [name for _, name in scores]
    header = ["category", "n", *names, "errors", "p50 ms", "model ms", "foxagent ms"]
    rows = [header]
    for group, values in summary.items():
        if group == "by_lang" or not isinstance(values, Mapping):
            continue
        rows.append(
            [
                group,
                str(values["n"]),
                *(f"{values[f'{name}_accuracy'] * 100:.1f}%" for name in names),
                str(values["errors"]),
                f"{values['latency_ms']['p50']:.0f}",
                f"{values['model_ms']:.0f}",
                f"{values['framework_ms']:.1f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
