"""``@tool``: typed Python functions as tools FoxBrain can call.

A `Tool` is built once, at decoration time, from the function's signature and docstring:
its name, description, the JSON schema of its parameters (in the Llama dialect of
`foxagent._schema`) and a pydantic model that validates incoming arguments. Everything that
can go wrong with the signature is reported then, as a `UserError`, not later in
the middle of a run.
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
import functools
import inspect
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from types import UnionType
from typing import (
    Annotated,
    Any,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    overload,
)

import pydantic
from pydantic.fields import FieldInfo

from foxagent._coercion import argument_path, describe_expected, loosen_object, short_repr
from foxagent._docstrings import parse_docstring
from foxagent._exceptions import ArgumentProblem, ToolArgumentsError, UserError
from foxagent._schema import LlamaJsonSchema, to_llama_dialect
from foxagent._threads import tool_threads

__all__ = ["CheckedArguments", "Tool", "ToolContext", "ToolLike", "tool"]

P = ParamSpec("P")
R = TypeVar("R")
JsonDict = dict[str, Any]

_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
#: A sync tool (``inline=None``) runs on the event loop once this many calls in a row, run in
#: a thread, each took under `INLINE_LIMIT` seconds and never waited (see `Tool.runs_inline`).
TRIAL_CALLS = 8
#: The most CPU seconds a sync call may use, on the loop or in its trial, to stay (or become)
#: inline.
INLINE_LIMIT = 0.001
_INFERABLE_DEFAULTS = (bool, int, float, str)
_KEYWORD = inspect.Parameter.VAR_KEYWORD


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToolContext:
    """What a tool may ask for by annotating a parameter with this type.

    The parameter is filled in by foxagent and never appears in the schema the model sees.

    Attributes:
        run_id: the id of the run that made the call.
        tool_call_id: the id of this call.
        messages: the conversation so far (OpenAI-style message dicts).
        deps: whatever the application passed to the run (a database handle, a user id, ...).
    """

    run_id: str = ""
    tool_call_id: str = ""
    messages: Sequence[Mapping[str, Any]] = ()
    deps: Any = None


@dataclasses.dataclass(frozen=True, slots=True)
class CheckedArguments:
    """A call's arguments, validated once.

    Attributes:
        arguments: the JSON-compatible form, written back into the transcript.
        native: the tool's own validated form, which it runs with (no second validation).
    """

    arguments: JsonDict
    native: Any


class ToolLike(Protocol):
    """The one tool protocol: what recovery and the loop need of any tool.

    ``Tool`` (a Python function), ``SchemaTool`` (a JSON schema; recovery only) and ``MCPTool``
    (an MCP server's tool) implement it.
    """

    name: str
    description: str
    parameters: JsonDict

    def openai_schema(self) -> JsonDict: ...

    def check_arguments(self, arguments: Mapping[str, Any]) -> CheckedArguments: ...

    def validate_arguments(self, arguments: Mapping[str, Any]) -> JsonDict: ...


@dataclasses.dataclass(frozen=True, slots=True)
class _Param:
    name: str
    kind: inspect._ParameterKind
    annotation: Any
    default: Any
    # TypedDict keys that are NotRequired have no real default: the key is simply left out.
    omittable: bool = False


class Tool(Generic[P, R]):
    """A function the model can call, with everything needed to offer, check and run it.

    Calling the tool object calls the function unchanged, so decorated functions stay usable
    (and testable) as plain Python.

    Attributes:
        name: the name the model calls it by.
        description: what the model is told the tool does.
        parameters: JSON schema of the arguments (Llama dialect).
        function: the wrapped function.
        timeout: seconds a call may take, or ``None`` for the agent's default.
        strict: when true, arguments are validated without coercion.
        requires_approval: a person must approve each call before it runs (see
            ``Agent(approver=...)`` and ``Agent.resume``).
        inline: for a sync function, where its calls run. ``True``: on the event loop, no
            thread (declared cheap: it never blocks, and its ``timeout`` cannot stop it);
            ``False``: always in a worker thread; ``None`` (the default): measured, see
            `runs_inline`.
    """

    def __init__(
        self,
        function: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        strict: bool = False,
        requires_approval: bool = False,
        inline: bool | None = None,
    ) -> None:
        if not callable(function):
            raise UserError(f"@tool needs a function, got {function!r}.")
        self.function = function
        self.inline = inline
        self._fast_calls = 0  # trial calls in a row that were cheap (inline=None)
        self._demoted = False  # a call was slow or waited: threads from now on
        self.name = name if name is not None else function.__name__
        self.timeout = timeout
        self.strict = strict
        self.requires_approval = requires_approval
        _check_name(self.name, function)
        doc = parse_docstring(inspect.getdoc(function))
        self.description = description if description is not None else doc.description
        params = _signature_params(function)
        self._context_param = _context_param_name(params)
        self._positional_only = [
            p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_ONLY
        ]
        arg_params = [p for p in params if p.name != self._context_param]
        # Parameters whose Python default is a pydantic Field must always be passed explicitly.
        self._always_pass = [p.name for p in arg_params if isinstance(p.default, FieldInfo)]
        self._model = _arguments_model(function, self.name, arg_params, doc.params, strict)
        self.parameters = _parameters_schema(self._model, function)
        self.is_async = inspect.iscoroutinefunction(function)
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r}, function={self.function.__qualname__})"

    def openai_schema(self) -> JsonDict:
        """The tool as OpenAI's ``tools=[...]`` entry (the format vLLM accepts)."""
        function: JsonDict = {"name": self.name, "description": self.description}
        function["parameters"] = self.parameters
        return {"type": "function", "function": function}

    def validate_arguments(self, arguments: Mapping[str, Any] | str | None) -> JsonDict:
        """Check and coerce arguments the model sent; return them as a JSON-compatible dict.

        Only the arguments the model sent are returned (defaults are not filled in), so the dict
        can be written back into the conversation as the call the model made.

        Raises:
            ToolArgumentsError: naming every argument that is wrong, what came, what was expected.
        """
        return self.check_arguments(arguments).arguments

    def check_arguments(self, arguments: Mapping[str, Any] | str | None) -> CheckedArguments:
        """`validate_arguments`, also keeping the validated values to run with."""
        instance = self._validate(arguments)
        # instance.model_dump(mode="json", exclude_unset=True), without its dozen keywords
        dumped = self._model.__pydantic_serializer__.to_python(
            instance, mode="json", exclude_unset=True
        )
        return CheckedArguments(dumped, instance)

    async def invoke(
        self, arguments: Mapping[str, Any] | str | None, context: ToolContext | None = None
    ) -> Any:
        """Validate ``arguments`` and run the function (sync functions in a worker thread)."""
        return await self.run_checked(self.check_arguments(arguments), context)

    async def run_checked(
        self, checked: CheckedArguments, context: ToolContext | None = None
    ) -> Any:
        """Run the function with arguments `check_arguments` accepted (no second validation)."""
        if self.is_async:
            return await self._bind(checked.native, context)()
        if self.runs_inline:
            return self.call_inline(checked, context)
        call = self._bind(checked.native, context)
        # Daemon threads, not the loop's executor: a hanging call past its timeout is abandoned
        # instead of holding `asyncio.run` and the interpreter's exit (see foxagent._threads).
        if self.inline is not None or self._demoted:
            return await tool_threads.run(call, name=self.name)
        trial = _Timed(call)  # measured in its thread: may the next calls skip the hop?
        try:
            return await tool_threads.run(trial, name=self.name)
        finally:
            self._observe(trial)

    @property
    def wants_context(self) -> bool:
        """Whether the function takes a `ToolContext` (the loop builds one only then)."""
        return self._context_param is not None

    @property
    def runs_inline(self) -> bool:
        """Whether the next call of this sync tool runs on the event loop, without a thread.

        Declared with ``inline=True``/``False``. Otherwise measured: the first calls run in a
        worker thread, measured there; after `TRIAL_CALLS` in a row that each used under
        `INLINE_LIMIT` of CPU and never waited (no sleep, I/O or lock wait: a function that
        never lets go of the GIL gains nothing from a thread but its timeout, which a call that
        short never meets), the calls run inline. Every inline call is measured too: one that
        used more CPU, or waited, sends the tool back to threads for good, as does any trial
        call that did (or that timed out). A tool that ever blocked is therefore never run
        inline; the cost is that a tool cheap for its first calls that blocks later stalls the
        loop once, for that call (declare such a tool ``inline=False``).
        """
        if self.is_async:
            return False
        if self.inline is not None:
            return self.inline
        return not self._demoted and self._fast_calls >= TRIAL_CALLS

    def call_inline(self, checked: CheckedArguments, context: ToolContext | None = None) -> Any:
        """Run the sync function here, on the caller's thread (when `runs_inline` says so), in
        a copy of the context variables, as a worker thread would."""
        call = self._bind(checked.native, context)
        if self.inline:
            return contextvars.copy_context().run(call)
        timed = _Timed(call)
        try:
            return contextvars.copy_context().run(timed)
        finally:
            self._observe(timed)

    def _observe(self, call: _Timed) -> None:
        """Count a cheap call towards inline; demote for good on a slow or waiting one."""
        if call.cpu is None or call.cpu > INLINE_LIMIT or call.waited:
            self._demoted = True  # also abandoned calls (timeout, cancelled): never finished
        else:
            self._fast_calls += 1

    def _bind(self, instance: pydantic.BaseModel, context: ToolContext | None) -> Callable[[], Any]:
        names = instance.model_fields_set.union(self._always_pass)
        kwargs = {key: getattr(instance, key) for key in names}
        if self._context_param is not None:
            kwargs[self._context_param] = context if context is not None else ToolContext()
        args = [kwargs.pop(name) for name in self._positional_only if name in kwargs]
        return functools.partial(self.function, *args, **kwargs)

    def _validate(self, arguments: Mapping[str, Any] | str | None) -> pydantic.BaseModel:
        # A JSON object as decoded is only read on the way (loosening copies what it changes).
        data = arguments if type(arguments) is dict else _arguments_mapping(self.name, arguments)
        if not self.strict:
            data = loosen_object(data, self.parameters)
        try:  # the model's model_validate(data), without its keyword checks
            instance: pydantic.BaseModel = self._model.__pydantic_validator__.validate_python(data)
        except pydantic.ValidationError as error:
            raise ToolArgumentsError(self.name, _problems(error, self.parameters)) from None
        return instance


@overload
def tool(function: Callable[P, R], /) -> Tool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    strict: bool = False,
    requires_approval: bool = False,
    inline: bool | None = None,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    strict: bool = False,
    requires_approval: bool = False,
    inline: bool | None = None,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Turn a typed function (sync or async) into a `Tool`.

    Example:
        >>> @tool
        ... def add(a: int, b: int = 1) -> int:
        ...     '''Add two numbers.
        ...
        ...     Args:
        ...         a: The first number.
        ...         b: The second number.
        ...     '''
        ...     return a + b
        >>> add.parameters["properties"]["b"]
        {'default': 1, 'description': 'The second number.', 'type': 'integer'}

    Args:
        function: the function, when used bare as ``@tool``.
        name: the name the model sees (default: the function's name).
        description: overrides the docstring's description.
        timeout: seconds a call may take before it is stopped.
        strict: validate arguments without coercing ``"5"`` to ``5`` and the like.
        requires_approval: each call waits for a person's approval before it runs.
        inline: a sync function's calls run on the event loop (``True``: declared cheap), in
            a worker thread (``False``), or, by default, inline once measured cheap
            (`Tool.runs_inline`).

    Raises:
        UserError: the signature cannot be expressed as a tool schema; the message names the
            function and the parameter.
    """

    def decorate(func: Callable[P, R]) -> Tool[P, R]:
        return Tool(
            func,
            name=name,
            description=description,
            timeout=timeout,
            strict=strict,
            requires_approval=requires_approval,
            inline=inline,
        )

    return decorate(function) if function is not None else decorate


class _Timed:
    """A call that notes whether it was cheap: its CPU time (the thread's) and whether it
    waited, that is, gave up the CPU by itself (sleep, I/O, a lock). Where the system counts
    a thread's voluntary context switches (Linux), that count says it; a preemption by the
    scheduler on a busy machine is involuntary and does not count. Elsewhere, wall time well
    past CPU time stands for waiting."""

    __slots__ = ("call", "cpu", "waited")

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.cpu: float | None = None  # None: it never finished
        self.waited = False

    def __call__(self) -> Any:
        switches = _voluntary_switches()
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return self.call()
        finally:
            self.cpu = time.thread_time() - cpu
            if switches is not None:
                self.waited = (_voluntary_switches() or 0) > switches
            else:
                wall = time.perf_counter() - wall
                self.waited = wall - self.cpu > max(0.25 * wall, 50e-6)


def _voluntary_switches() -> int | None:
    """This thread's voluntary context switches so far (``None`` where not counted)."""
    if _RUSAGE_THREAD is None:
        return None
    return int(resource.getrusage(_RUSAGE_THREAD).ru_nvcsw)


try:
    import resource

    _RUSAGE_THREAD: int | None = resource.RUSAGE_THREAD  # Linux
except (ImportError, AttributeError):  # pragma: no cover - not Linux
    _RUSAGE_THREAD = None


def _where(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', function)}"


def _check_name(name: str, function: Callable[..., Any]) -> None:
    if not _NAME_PATTERN.match(name):
        raise UserError(
            f"Tool name {name!r} of {_where(function)} is not usable: use 1-64 letters, digits, "
            "'_' or '-', starting with a letter or '_'."
        )


def _signature_params(function: Callable[..., Any]) -> list[_Param]:
    where = _where(function)
    try:
        signature = inspect.signature(function)
        hints = get_type_hints(function, include_extras=True)
    except (NameError, TypeError, ValueError) as error:
        raise UserError(f"Cannot read the signature of {where}: {error}") from None
    params: list[_Param] = []
    for p in signature.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            raise UserError(
                f"{where}: parameter '*{p.name}' cannot be a tool argument; "
                "a model sends named arguments only. Use a list parameter instead."
            )
        annotation = hints.get(p.name, inspect.Parameter.empty)
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            params.extend(_unpacked_params(where, p.name, annotation))
            continue
        annotation = _annotation_or_inferred(where, p, annotation)
        params.append(_Param(p.name, p.kind, annotation, p.default))
    return params


def _annotation_or_inferred(where: str, p: inspect.Parameter, annotation: Any) -> Any:
    if annotation is not inspect.Parameter.empty:
        return annotation
    if p.default is not inspect.Parameter.empty and type(p.default) in _INFERABLE_DEFAULTS:
        return type(p.default)  # `unit="celsius"` says enough: the type is str
    raise UserError(
        f"{where}: parameter '{p.name}' has no type annotation, so foxagent cannot tell the "
        "model what to send. Annotate it (e.g. `str`, `int`, `list[str]`)."
    )


def _unpacked_params(where: str, name: str, annotation: Any) -> list[_Param]:
    """``**kwargs: Unpack[SomeTypedDict]`` declares its keyword arguments through the TypedDict."""
    typed_dict = get_args(annotation)[0] if _is_unpack(annotation) else None
    if typed_dict is None or not hasattr(typed_dict, "__required_keys__"):
        raise UserError(
            f"{where}: parameter '**{name}' accepts anything, which a schema cannot describe. "
            "Declare the arguments, or annotate it as `**kwargs: Unpack[SomeTypedDict]`."
        )
    hints = get_type_hints(typed_dict, include_extras=True)
    params = []
    for key, hint in hints.items():
        required = _wrapper_name(hint) == "Required" or (
            key in typed_dict.__required_keys__ and _wrapper_name(hint) != "NotRequired"
        )
        if required:
            params.append(_Param(key, _KEYWORD, _strip_required(hint), inspect.Parameter.empty))
        else:
            params.append(_Param(key, _KEYWORD, _strip_required(hint), None, omittable=True))
    return params


def _wrapper_name(hint: Any) -> str | None:
    # Under `from __future__ import annotations` a TypedDict cannot see NotRequired[...] in its
    # own string annotations, so __required_keys__ is wrong; the resolved hint still says it.
    return getattr(get_origin(hint), "_name", None)


def _strip_required(hint: Any) -> Any:
    if _wrapper_name(hint) in ("Required", "NotRequired"):
        return get_args(hint)[0]
    return hint


def _is_unpack(annotation: Any) -> bool:
    origin = get_origin(annotation)
    return origin is not None and getattr(origin, "_name", None) == "Unpack"


def _context_param_name(params: Sequence[_Param]) -> str | None:
    names = [p.name for p in params if _is_context_type(p.annotation)]
    return names[0] if names else None


def _is_context_type(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        return any(_is_context_type(a) for a in get_args(annotation) if a is not type(None))
    return isinstance(annotation, type) and issubclass(annotation, ToolContext)


def _field(param: _Param, doc_description: str | None) -> tuple[Any, Any]:
    if isinstance(param.default, FieldInfo):  # `n: int = Field(ge=1)`, FastAPI-style
        field = param.default
        if doc_description and not field.description:
            field = copy.copy(field)  # the developer's Field object is not ours to change
            field.description = doc_description
        return param.annotation, field
    if param.omittable:
        hide = _hide_default
        return param.annotation, pydantic.Field(
            None, description=doc_description, json_schema_extra=hide
        )
    default = ... if param.default is inspect.Parameter.empty else param.default
    if doc_description is None or _annotated_description(param.annotation):
        return param.annotation, pydantic.Field(default)
    return param.annotation, pydantic.Field(default, description=doc_description)


def _hide_default(schema: JsonDict) -> None:
    schema.pop("default", None)


def _annotated_description(annotation: Any) -> bool:
    if get_origin(annotation) is not Annotated:
        return False
    return any(isinstance(m, FieldInfo) and m.description for m in get_args(annotation)[1:])


def _arguments_model(
    function: Callable[..., Any],
    tool_name: str,
    params: Sequence[_Param],
    docs: Mapping[str, str],
    strict: bool,
) -> type[pydantic.BaseModel]:
    config = pydantic.ConfigDict(
        extra="forbid",
        strict=strict,
        coerce_numbers_to_str=not strict,
        arbitrary_types_allowed=False,
        protected_namespaces=(),
    )
    fields = {p.name: _field(p, docs.get(p.name)) for p in params}
    model_name = f"{tool_name}_arguments"
    try:
        return pydantic.create_model(model_name, __config__=config, **fields)  # type: ignore[call-overload,no-any-return]
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as error:
        raise UserError(_unsupported_param_message(function, params, error)) from None


def _unsupported_param_message(
    function: Callable[..., Any], params: Sequence[_Param], error: Exception
) -> str:
    for param in params:
        try:
            pydantic.TypeAdapter(param.annotation).json_schema()
        except Exception as param_error:  # any failure identifies the culprit
            reason = str(param_error).splitlines()[0]
            return (
                f"{_where(function)}: parameter '{param.name}' has type {param.annotation!r}, "
                f"which foxagent cannot turn into a JSON schema ({reason}). Use JSON-like types "
                "(str, int, float, bool, list, dict, Literal, Enum, TypedDict, dataclasses, "
                "pydantic models)."
            )
    first_line = str(error).splitlines()[0]
    return f"{_where(function)}: cannot build a schema for its parameters: {first_line}"


def _parameters_schema(model: type[pydantic.BaseModel], function: Callable[..., Any]) -> JsonDict:
    try:
        raw = model.model_json_schema(schema_generator=LlamaJsonSchema)
    except pydantic.PydanticUserError as error:
        first_line = str(error).splitlines()[0]
        raise UserError(
            f"{_where(function)}: cannot describe its parameters: {first_line}"
        ) from None
    schema = to_llama_dialect(raw)
    schema.setdefault("properties", {})
    return schema


def _arguments_mapping(tool_name: str, arguments: Mapping[str, Any] | str | None) -> JsonDict:
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        text = arguments.strip()
        if not text or text == "null":
            return {}
        try:
            arguments = json.loads(text)
        except ValueError:
            problem = ArgumentProblem("", f"arguments are not valid JSON: {short_repr(text)}")
            raise ToolArgumentsError(tool_name, [problem]) from None
    if not isinstance(arguments, Mapping):
        problem = ArgumentProblem(
            "", f"expected an object of arguments, got {short_repr(arguments)}"
        )
        raise ToolArgumentsError(tool_name, [problem])
    return dict(arguments)


def _problems(error: pydantic.ValidationError, schema: Mapping[str, Any]) -> list[ArgumentProblem]:
    problems: dict[str, ArgumentProblem] = {}
    for item in error.errors(include_url=False):
        path = argument_path(item["loc"], schema)
        if path in problems:  # a union reports once per branch; the first says enough
            continue
        if item["type"] == "extra_forbidden":
            parent = _schema_at(schema, path.rpartition(".")[0])
            known = ", ".join(parent.get("properties") or ()) or "none"
            problems[path] = ArgumentProblem(path, f"unknown argument (known: {known})")
        else:
            problems[path] = ArgumentProblem(path, _phrase(item, _schema_at(schema, path)))
    return list(problems.values())


def _schema_at(schema: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    node: Any = schema
    for step in path.split(".") if path else ():
        if isinstance(node, Mapping) and isinstance(node.get("properties"), Mapping):
            node = node["properties"].get(step, {})
        elif isinstance(node, Mapping) and isinstance(node.get("items"), Mapping):
            node = node["items"]
        else:
            return {}
    return node if isinstance(node, Mapping) else {}


def _phrase(item: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    kind = item["type"]
    received = short_repr(item.get("input"))
    if kind == "missing":
        return "required argument is missing"
    expected = describe_expected(schema) if schema else ""
    if kind in ("enum", "literal_error") and "expected" in item.get("ctx", {}):
        expected = "one of " + str(item["ctx"]["expected"]).replace(" or ", ", ")
    if expected and (kind.endswith(("_type", "_parsing")) or kind in ("enum", "literal_error")):
        return f"expected {expected}, got {received}"
    message = str(item["msg"])
    message = message.removeprefix("Input ").removeprefix("Value error, ")
    return f"{message[:1].lower()}{message[1:]}, got {received}"
