"""BFCL's own AST checker, imported from the wheel, and the scoring of one case's calls.

``bfcl_eval/eval_checker/ast_eval/ast_checker.py`` is the leaderboard's judge. Its module imports
``bfcl_eval.constants.model_config``, which imports a handler for every provider (the openai,
anthropic, google, ... SDKs), yet the checker reads only one field of it:
``MODEL_CONFIG_MAPPING[model].underscore_to_dot``, and only for dotted names. So the checker is
imported straight from the wheel (zipimport) with that one module replaced by a stub, for the
duration of the import only: afterwards ``sys.path`` and the stub entry are as they were, and
the checker keeps its own reference to the stub. The stub says ``underscore_to_dot=False``:
calls reach the checker under BFCL's own (dotted) names, mapped back by ``NameMap``.

The checker takes the functions as BFCL wrote them, the model's calls as a list of
``{name: {argument: value}}``, the possible answers, the language and the category, and
dispatches on the category's name: ``parallel`` → any order, ``multiple`` → the one expected
call among several functions, else exactly one call.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from foxagent.eval._bfcl_data import BFCLCase, is_irrelevance

__all__ = ["Call", "bfcl_checker", "score"]

Call = dict[str, Any]  # {"name": BFCL name, "arguments": {...}}
Checker = Callable[..., dict[str, Any]]

_MODEL_CONFIG = "bfcl_eval.constants.model_config"
_CHECKER = "bfcl_eval.eval_checker.ast_eval.ast_checker"
_ENUMS = "bfcl_eval.constants.enums"
_MODEL_NAME = "foxagent"  # any name: the stub answers for every one
_lock = threading.Lock()
_loaded: dict[Path, tuple[Checker, Any]] = {}


class _Registry(dict[str, Any]):
    """``MODEL_CONFIG_MAPPING`` as the checker uses it: any model, names kept dotted."""

    def __missing__(self, key: str) -> Any:
        return types.SimpleNamespace(underscore_to_dot=False)


def bfcl_checker(wheel: Path) -> tuple[Checker, Any]:
    """``(ast_checker, Language.PYTHON)`` from the wheel at ``wheel`` (imported once)."""
    with _lock:
        if wheel not in _loaded:
            _loaded[wheel] = _import(wheel)
        return _loaded[wheel]


def _import(wheel: Path) -> tuple[Checker, Any]:
    stub = types.ModuleType(_MODEL_CONFIG)
    stub.MODEL_CONFIG_MAPPING = _Registry()  # type: ignore[attr-defined]
    saved_path = list(sys.path)
    saved_stub = sys.modules.get(_MODEL_CONFIG)
    sys.path.insert(0, str(wheel))
    sys.modules[_MODEL_CONFIG] = stub
    try:
        __import__(_CHECKER)
        module, enums = sys.modules[_CHECKER], sys.modules[_ENUMS]
    finally:
        sys.path[:] = saved_path
        if saved_stub is None:
            sys.modules.pop(_MODEL_CONFIG, None)
        else:
            sys.modules[_MODEL_CONFIG] = saved_stub
    return module.ast_checker, enums.Language.PYTHON


def score(checker: tuple[Checker, Any], case: BFCLCase, calls: Sequence[Call] | None) -> str | None:
    """Whether ``calls`` answer ``case``: ``None`` when right, else BFCL's reason.

    ``calls=None`` means calls came back that a plain client cannot use (arguments a JSON
    parser rejects): always wrong. On irrelevance cases, right means no call at all.
    """
    if is_irrelevance(case.category):
        if calls is None:
            return "a call was attempted (its arguments unparseable) where no call was right"
        if not calls:
            return None
        return f"called {', '.join(str(c.get('name')) for c in calls)} where no call was right"
    if calls is None:
        return "the calls' arguments could not be parsed as JSON objects"
    if not calls:
        return "no call"
    output = [{str(call["name"]): call["arguments"]} for call in calls]
    if not all(isinstance(call["arguments"], Mapping) for call in calls):
        return "a call's arguments are not a JSON object"
    ast_checker, python = checker
    try:
        verdict = ast_checker(
            list(case.functions),
            output,
            list(case.ground_truth or ()),
            python,
            case.category,
            _MODEL_NAME,
        )
    except Exception as error:  # the checker trips on odd values (e.g. a list for a dict)
        return f"BFCL's checker raised {type(error).__name__}: {error}"
    if verdict.get("valid"):
        return None
    errors = verdict.get("error") or []
    first = errors[0] if isinstance(errors, list) and errors else errors
    return f"{verdict.get('error_type', 'invalid')}: {first}"
