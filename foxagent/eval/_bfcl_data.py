"""BFCL's single-turn cases, read straight from the ``bfcl-eval`` wheel (a zip; never installed).

Each category is one JSON-lines file ``bfcl_eval/data/BFCL_v4_<category>.json`` (``id``,
``question``: a list of turns, each a list of messages; ``function``: the offered functions), and,
except for the irrelevance categories (right = no call), one possible-answer file
``bfcl_eval/data/possible_answer/BFCL_v4_<category>.json`` (``id``, ``ground_truth``: a list of
``{function name: {argument: [accepted values]}}``).
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foxagent._exceptions import UserError

__all__ = ["CATEGORIES", "BFCLCase", "is_irrelevance", "load_cases", "select"]

#: The single-turn categories, in the order reports list them.
CATEGORIES: tuple[str, ...] = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "irrelevance",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_irrelevance",
)

_QUESTIONS = "bfcl_eval/data/BFCL_v4_{}.json"
_ANSWERS = "bfcl_eval/data/possible_answer/BFCL_v4_{}.json"


@dataclass(frozen=True, kw_only=True)
class BFCLCase:
    """One BFCL test case.

    Attributes:
        id: BFCL's id (``simple_python_1``).
        category: its category (one of `CATEGORIES`).
        messages: the one turn's messages (a system message, rarely earlier turns, the question).
        functions: the offered functions as BFCL writes them (dotted names, BFCL types).
        ground_truth: the possible answers; ``None`` for the irrelevance categories.
    """

    id: str
    category: str
    messages: tuple[dict[str, Any], ...]
    functions: tuple[dict[str, Any], ...]
    ground_truth: tuple[dict[str, Any], ...] | None

    @property
    def question(self) -> str:
        """The last user message's text: what the agent is asked."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""


def is_irrelevance(category: str) -> bool:
    """Whether right means no call at all (BFCL's relevance rule)."""
    return "irrelevance" in category


def load_cases(wheel: Path, categories: Sequence[str]) -> list[BFCLCase]:
    """Every case of ``categories`` in the wheel, in BFCL's order.

    Raises:
        UserError: an unknown category, or the wheel lacks a file it should hold.
    """
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise UserError(
            f"unknown BFCL categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
            f"known: {', '.join(CATEGORIES)}."
        )
    cases: list[BFCLCase] = []
    with zipfile.ZipFile(wheel) as archive:
        for category in categories:
            rows = _json_lines(archive, _QUESTIONS.format(category))
            answers: dict[str, Any] = {}
            if not is_irrelevance(category):
                answers = {
                    row["id"]: row["ground_truth"]
                    for row in _json_lines(archive, _ANSWERS.format(category))
                }
            for row in rows:
                truth = answers.get(row["id"]) if answers else None
                if not is_irrelevance(category) and truth is None:
                    raise UserError(f"{wheel.name}: no possible answer for {row['id']}.")
                cases.append(
                    BFCLCase(
                        id=row["id"],
                        category=category,
                        messages=tuple(row["question"][0]),  # single-turn: one turn
                        functions=tuple(row["function"]),
                        ground_truth=tuple(truth) if truth is not None else None,
                    )
                )
    return cases


def select(cases: Sequence[BFCLCase], limit: int | None, seed: int) -> list[BFCLCase]:
    """At most ``limit`` cases per category, the same ones for the same ``seed`` (so a resumed
    or repeated run asks the same questions), kept in BFCL's order."""
    if limit is None:
        return list(cases)
    chosen: set[str] = set()
    by_category: dict[str, list[BFCLCase]] = {}
    for case in cases:
        by_category.setdefault(case.category, []).append(case)
    for category, members in by_category.items():
        # A generator per category: adding a category does not change the others' picks.
        rng = random.Random(f"{seed}:{category}")
        picked = members if len(members) <= limit else rng.sample(members, limit)
        chosen.update(case.id for case in picked)
    return [case for case in cases if case.id in chosen]


def _json_lines(archive: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    try:
        text = archive.read(name).decode("utf-8")
    except KeyError:
        raise UserError(f"the BFCL wheel holds no {name}.") from None
    return [json.loads(line) for line in text.splitlines() if line.strip()]
