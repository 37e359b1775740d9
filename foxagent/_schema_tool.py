"""Tools known only by their OpenAI schema (from MCP, a JSON file, another framework).

There is no Python signature behind them, so arguments are checked with ``jsonschema`` against the
schema itself, after the same `loosen` pass as ``@tool`` functions and
with the same phrasing of refusals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from foxagent._coercion import describe_expected, loosen_object, short_repr
from foxagent._exceptions import ArgumentProblem, ToolArgumentsError, UserError
from foxagent._tools import CheckedArguments

if TYPE_CHECKING:  # jsonschema is imported by the first SchemaTool (~35 ms, not at import)
    import jsonschema

__all__ = ["SchemaTool"]

JsonDict = dict[str, Any]


class SchemaTool:
    """A tool described by an OpenAI ``{"type": "function", "function": {...}}`` dict.

    Attributes:
        name: the function's name.
        description: its description ("" when absent).
        parameters: its JSON schema (an empty object schema when absent).
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        function = schema.get("function", schema)
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise UserError(f"Not an OpenAI tool schema (no function name): {short_repr(schema)}")
        self.name: str = function["name"]
        self.description: str = str(function.get("description") or "")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        self.parameters: JsonDict = dict(parameters)
        import jsonschema  # see TYPE_CHECKING above

        validator_class = jsonschema.validators.validator_for(self.parameters)
        try:
            validator_class.check_schema(self.parameters)
        except jsonschema.SchemaError as error:
            raise UserError(f"Tool '{self.name}' has an invalid schema: {error.message}") from None
        self._validator = validator_class(self.parameters)

    def __repr__(self) -> str:
        return f"SchemaTool(name={self.name!r})"

    def openai_schema(self) -> JsonDict:
        """The tool as an OpenAI ``tools=[...]`` entry."""
        function = {"name": self.name, "description": self.description}
        return {"type": "function", "function": {**function, "parameters": self.parameters}}

    def validate_arguments(self, arguments: Mapping[str, Any]) -> JsonDict:
        """Coerce clear mistakes, then validate; ``ToolArgumentsError`` names each problem."""
        return self.check_arguments(arguments).arguments

    def check_arguments(self, arguments: Mapping[str, Any]) -> CheckedArguments:
        """`validate_arguments`, in the form the loop runs calls with (the same dict)."""
        data = loosen_object(arguments, self.parameters)
        problems: dict[str, ArgumentProblem] = {p.argument: p for p in self._unknown(data)}
        for error in self._validator.iter_errors(data):
            for problem in _problems(error, self.parameters):
                problems.setdefault(problem.argument, problem)
        if problems:
            raise ToolArgumentsError(self.name, sorted(problems.values(), key=_order(data)))
        return CheckedArguments(data, data)

    def _unknown(self, data: Mapping[str, Any]) -> list[ArgumentProblem]:
        """Arguments the schema does not declare, unless it explicitly allows more.

        Most schemas (MCP's included) leave ``additionalProperties`` unset; a misnamed argument is
        still a mistake worth telling the model about, as for ``@tool`` functions.
        """
        if "additionalProperties" in self.parameters:
            return []
        known = list(self.parameters.get("properties") or {})
        text = f"unknown argument (known: {', '.join(known) or 'none'})"
        return [ArgumentProblem(name, text) for name in data if name not in known]


def _order(data: Mapping[str, Any]) -> Any:
    keys = list(data)

    def key(problem: ArgumentProblem) -> tuple[int, str]:
        top = problem.argument.split(".")[0]
        return (keys.index(top) if top in keys else -1, problem.argument)

    return key


def _problems(error: jsonschema.ValidationError, root: Mapping[str, Any]) -> list[ArgumentProblem]:
    path = ".".join(str(step) for step in error.absolute_path)
    prefix = f"{path}." if path else ""
    instance = error.instance
    if error.validator == "required" and isinstance(instance, Mapping):
        missing = [name for name in error.validator_value if name not in instance]
        return [ArgumentProblem(prefix + name, "required argument is missing") for name in missing]
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = list(error.schema.get("properties") or {})
        extra = [name for name in instance if name not in known]
        text = f"unknown argument (known: {', '.join(known) or 'none'})"
        return [ArgumentProblem(prefix + name, text) for name in extra]
    if error.validator in ("type", "enum", "const", "anyOf", "oneOf"):
        expected = describe_expected(error.schema)
        return [ArgumentProblem(path, f"expected {expected}, got {short_repr(instance)}")]
    message = error.message.replace(repr(instance), "").strip()
    return [ArgumentProblem(path, f"{message}, got {short_repr(instance)}")]
