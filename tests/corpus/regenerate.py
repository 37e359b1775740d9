"""Rewrite (or, with ``--check``, verify) the ``server`` field of every corpus case.

Usage::

    python -m tests.corpus.regenerate          # rewrite tests/corpus/cases/*.json
    python -m tests.corpus.regenerate --check  # exit 1 and name every stale case

Run it from the repository root, as a module (``tests.corpus`` is a package).

The ``server`` field is what vLLM's ``llama3_json`` parser (three generations,
emulated by ``foxagent.testing._vllm_llama3_json``) hands the client for the case's
``model_text``; tool-call ids are replaced by ``"<id>"``.
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.corpus import FAMILIES, Case, case_file, expected_server, load_cases, stale_case_ids


def dump_cases(cases: list[Case]) -> str:
    """The stored form of a case file: indented UTF-8 JSON with a final newline."""
    return json.dumps(cases, ensure_ascii=False, indent=2) + "\n"


def rewrite() -> int:
    """Recompute ``server`` for every case and rewrite the files that changed."""
    changed = 0
    for family in FAMILIES:
        cases = load_cases(family)
        if not cases:
            continue
        for case in cases:
            case["server"] = expected_server(case)
        text = dump_cases(cases)
        path = case_file(family)
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed += 1
    print(f"rewrote {changed} case file(s)")
    return 0


def check() -> int:
    """Exit status 1 and one line per case whose stored ``server`` is stale."""
    stale = stale_case_ids(load_cases())
    for case_id in stale:
        print(f"stale server field: {case_id}")
    if stale:
        print(f"{len(stale)} case(s) out of date; run python -m tests.corpus.regenerate")
        return 1
    print("all server fields up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale cases")
    args = parser.parse_args(argv)
    return check() if args.check else rewrite()


if __name__ == "__main__":
    sys.exit(main())
