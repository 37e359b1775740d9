"""A calculator tool that evaluates arithmetic safely.

The expression is parsed with `ast.parse` and evaluated by walking the tree, so only numbers,
arithmetic operators and a fixed table of math functions ever run; nothing is handed to ``eval``.
Every way of making the evaluator do unbounded work (huge powers, huge factorials, long or deeply
nested input) is refused *before* the work starts, with a one-line `ToolError`.
Arithmetic on Python ints runs inside one C call that holds the GIL, where no timeout can fire, so
every argument of every operator and function is bounded; one call takes milliseconds at most:

- input: at most 1000 characters, 100 levels of nesting, 300 numbers and operations (parsing and
  the walk are linear in these; a literal therefore has at most 1000 digits); the normalising
  regular expressions start a match only where a number starts, so none backtracks quadratically.
- every int value, literal or intermediate: below 10**10000, checked after each step, so every
  operand below is at most 10000 digits and no single step costs more than about a millisecond.
- ``+ -`` and unary ``- +``: linear in the operands' size; the result is checked.
- ``*``: two ints whose bit lengths already promise 10000+ digits are refused before multiplying.
- ``/ // %``: operands below 10**10000 (quadratic at worst, ~0.4 ms); an int too large for a float
  mixed with a float is an OverflowError, reported as beyond the floating-point range.
- ``**``: an int power is refused when ``exponent * log10(|base|)`` says 10000+ digits, decided
  before the power runs; bases 0, 1 and -1 take any exponent without looping over its bits; a
  float or negative power is a float operation (overflow reported, never slow).
- ``<< >> & | ^ ~ @``: not offered (``^`` means ``**``), refused as unsupported operators.
- ``round(x, ndigits)``: ndigits from -10000 to 10000, because Python computes 10**-ndigits for a
  negative one (``round(1, -10**7)`` took seconds, ``round(1, -10**9999)`` never ended); an int
  that is certainly smaller than half of 10**-ndigits rounds to 0 without that power.
- ``factorial(n)``: n a whole number from 0 to 1000 (a 2568-digit result).
- ``gcd``, ``min``, ``max``, ``abs``, ``floor``, ``ceil``, ``log``, ``log10``, ``log2``: ints
  below 10**10000 (quadratic ``gcd`` ~1 ms; the others linear); at most 300 arguments.
- the float functions (``sqrt exp sin cos tan asin acos atan atan2 hypot fabs degrees radians``):
  an int argument is converted to a float first, so one beyond 1.8e308 is refused (OverflowError);
  a float result that is infinite is refused too.
- numbers over 1000 digits: at most 30 uses (as an operand or result) per expression, so an
  expression repeating a millisecond step many times is refused instead of adding up.
- the result: converted to text in 500-digit chunks, under Python's int-to-str limit; should that
  limit still refuse (a ValueError), the tool reports it as a one-line error.

Input is normalised first so that expressions typed on a Traditional-Chinese keyboard work:
full-width forms (``３×（４＋５）``), ``×`` ``÷`` ``^``, superscripts (``2³``), ``π``, ``√``,
thousands separators (``1,000``), percentages (``15%``) and a trailing ``=`` or ``=?``.
"""

import ast
import keyword
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from foxagent import ToolError, tool

__all__ = ["calculator"]

Number: TypeAlias = int | float

MAX_EXPRESSION_CHARS = 1000
MAX_NESTING = 100
MAX_PARTS = 300
MAX_DIGITS = 10_000
MAX_FACTORIAL = 1000
MAX_ROUND_DIGITS = MAX_DIGITS
BIG_DIGITS = 1000
MAX_BIG_USES = 30

_INT_LIMIT = 10**MAX_DIGITS
# 10**MAX_DIGITS < 2**_INT_LIMIT_BITS: a product of at least that many bits is refused unbuilt.
_INT_LIMIT_BITS = _INT_LIMIT.bit_length()
_BIG_INT = 10**BIG_DIGITS
_SIGNIFICANT_DIGITS = 12
# Below the smallest value sys.set_int_max_str_digits() accepts (640), so str() never refuses.
_CHUNK_DIGITS = 500


@dataclass(frozen=True)
class _Function:
    impl: Callable[..., Number]
    min_args: int
    max_args: int | None = 1


def _log(x: Number, base: Number = math.e) -> float:
    return math.log(x, base)


def _round(x: Number, ndigits: int | None = None) -> Number:
    if ndigits is None:
        return round(x)
    if isinstance(ndigits, int):
        if not -MAX_ROUND_DIGITS <= ndigits <= MAX_ROUND_DIGITS:
            raise ToolError(
                f"round() needs ndigits from -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}, "
                f"got {_brief(ndigits)}."
            )
        # k = -ndigits-1: |x| < 2**(3*k) <= 10**k = 10**-ndigits / 10, so x rounds to 0 unbuilt.
        if isinstance(x, int) and ndigits < 0 and abs(x).bit_length() <= 3 * (-ndigits - 1):
            return 0
    return round(x, ndigits)


def _factorial(n: Number) -> int:
    whole = int(n) if isinstance(n, float) and n.is_integer() else n
    if not isinstance(whole, int) or not 0 <= whole <= MAX_FACTORIAL:
        raise ToolError(
            f"factorial() needs a whole number from 0 to {MAX_FACTORIAL}, got {_brief(n)}."
        )
    return math.factorial(whole)


_FUNCTIONS: dict[str, _Function] = {
    "abs": _Function(abs, 1),
    "acos": _Function(math.acos, 1),
    "asin": _Function(math.asin, 1),
    "atan": _Function(math.atan, 1),
    "atan2": _Function(math.atan2, 2, 2),
    "ceil": _Function(math.ceil, 1),
    "cos": _Function(math.cos, 1),
    "degrees": _Function(math.degrees, 1),
    "exp": _Function(math.exp, 1),
    "fabs": _Function(math.fabs, 1),
    "factorial": _Function(_factorial, 1),
    "floor": _Function(math.floor, 1),
    "gcd": _Function(math.gcd, 1, None),
    "hypot": _Function(math.hypot, 1, None),
    "log": _Function(_log, 1, 2),
    "log10": _Function(math.log10, 1),
    "log2": _Function(math.log2, 1),
    "max": _Function(lambda *args: max(args), 1, None),
    "min": _Function(lambda *args: min(args), 1, None),
    "radians": _Function(math.radians, 1),
    "round": _Function(_round, 1, 2),
    "sin": _Function(math.sin, 1),
    "sqrt": _Function(math.sqrt, 1),
    "tan": _Function(math.tan, 1),
}

_CONSTANTS: dict[str, float] = {"e": math.e, "pi": math.pi, "tau": math.tau}

_BINARY_OPERATORS: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}

_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
}

# Strings, keywords (lambda, if, for, and, ...) never reach the parser; see _check_characters.
_UNSUPPORTED_NODES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Compare: "comparisons",
    ast.List: "lists",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.NamedExpr: "assignment",
    ast.Starred: "unpacking",
    ast.keyword: "keyword arguments",
}

# Characters NFKC leaves alone but a person typing maths means as an operator.
_OPERATOR_TRANSLATION = str.maketrans(
    {
        "×": "*",
        "÷": "/",
        "·": "*",
        "⋅": "*",
        "∗": "*",
        "∕": "/",
        "⁄": "/",
        "−": "-",
        "–": "-",
        "π": "pi",
    }
)
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")

_SUPERSCRIPT_RUN = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+")
_TRAILING_EQUALS = re.compile(r"\s*=?\s*\?*\s*$")
_GROUPED_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w.])")
# A % with nothing it could take a modulo of is a percent sign: "15%", "50%*200", "max(5%, 1)".
# Matching only from a number's first digit keeps a long digit run from costing quadratic time.
_PERCENT = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)%(?=\s*(?:$|[)*/,]))")
_ROOT_OF_NUMBER = re.compile(r"√\s*(\d+(?:\.\d+)?)")
_IDENTIFIER = re.compile(r"[^\W\d]\w*")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression, like a scientific calculator.

    Supports + - * / // % ** (or ^), parentheses, integers, decimals and 1e3-style numbers; the
    constants pi, e and tau; and the functions sqrt, sin, cos, tan, asin, acos, atan, atan2, log
    (natural, or log(x, base)), log10, log2, exp, floor, ceil, abs, fabs, round, factorial, gcd,
    hypot, degrees, radians, min and max. Angles are in radians. Full-width input such as
    ３×（４＋５）, ÷, 2³ and 1,000 is understood.

    Args:
        expression: The expression to evaluate, e.g. "sqrt(2) * (3 + 4)^2".

    Returns:
        The result as text, e.g. "98.9949493661".
    """
    source = _normalize(expression)
    tree = _parse(source)
    _check_size(tree)
    value = _Evaluator(source).evaluate(tree.body)
    try:
        return _format(value)
    except ValueError as error:  # Python's int-to-str digit limit, should the chunks still trip it
        raise ToolError(f"Result too large to show: {error}.") from None


def _normalize(expression: str) -> str:
    text = " ".join(expression.split())  # newlines and tabs would end the expression early
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolError(
            f"Expression too long: {len(text)} characters (the limit is {MAX_EXPRESSION_CHARS})."
        )
    text = _translate_symbols(text)
    text = _remove_thousands_separators(text)
    text = _PERCENT.sub(r"(\1/100)", text)
    if not text:
        raise ToolError("Empty expression: give an arithmetic expression such as 2*(3+4).")
    _check_characters(text)
    return text


def _translate_symbols(text: str) -> str:
    # Before NFKC, which would turn "2³" into "23".
    text = _SUPERSCRIPT_RUN.sub(lambda m: "**(" + m.group().translate(_SUPERSCRIPTS) + ")", text)
    text = unicodedata.normalize("NFKC", text).translate(_OPERATOR_TRANSLATION)
    text = _TRAILING_EQUALS.sub("", text).replace("^", "**")
    return _ROOT_OF_NUMBER.sub(r"sqrt(\1)", text).replace("√", "sqrt")


def _remove_thousands_separators(text: str) -> str:
    # Inside a call's parentheses a comma separates arguments: max(1,000) is max(1, 0).
    in_call = _call_context(text)
    return _GROUPED_NUMBER.sub(
        lambda m: m.group() if in_call[m.start()] else m.group().replace(",", ""), text
    )


def _call_context(text: str) -> list[bool]:
    """For each character, whether it sits directly inside the parentheses of a call."""
    is_call: list[bool] = []
    context: list[bool] = []
    previous = ""
    for char in text:
        if char == "(":
            is_call.append(previous.isalnum() or previous == "_")
        elif char == ")" and is_call:
            is_call.pop()
        context.append(bool(is_call) and is_call[-1])
        previous = previous if char.isspace() else char
    return context


def _check_characters(text: str) -> None:
    # Python's parser warns (rather than fails) on some strings and on "1if"; no valid
    # arithmetic contains quotes or keywords, so refusing them first keeps parsing warning-free.
    if "'" in text or '"' in text:
        raise ToolError("Not supported: strings; write only numbers, operators and functions.")
    for position, char in enumerate(text, start=1):
        if unicodedata.category(char).startswith("C"):
            raise ToolError(
                f"Invalid expression: control character U+{ord(char):04X} at position {position}."
            )
    for match in _IDENTIFIER.finditer(text):
        if keyword.iskeyword(match.group()):
            raise ToolError(f"Not supported: the keyword '{match.group()}'.")


def _parse(source: str) -> ast.Expression:
    _check_parentheses(source)
    try:
        return ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise ToolError(_describe_syntax_error(error, source)) from None
    except (ValueError, RecursionError) as error:
        raise ToolError(f"Invalid expression: {error}.") from None


def _check_parentheses(source: str) -> None:
    # Python's own parser gives up at 200 levels with a confusing message; stop earlier, clearly.
    depth = 0
    for char in source:
        depth += (char == "(") - (char == ")")
        if depth > MAX_NESTING:
            raise _too_deep()


def _describe_syntax_error(error: SyntaxError, source: str) -> str:
    offset = error.offset or 0
    where = f"at position {offset}" if 1 <= offset <= len(source) else "at the end"
    shown = source if len(source) <= 80 else source[:77] + "..."
    return f"Invalid expression: {error.msg} {where} of '{shown}'."


def _check_size(tree: ast.Expression) -> None:
    parts = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        parts += isinstance(node, ast.expr)
        if parts > MAX_PARTS:
            raise ToolError(
                f"Expression too complex: more than {MAX_PARTS} numbers and operations."
            )
        if depth > MAX_NESTING:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _too_deep() -> ToolError:
    return ToolError(f"Expression nested too deeply: more than {MAX_NESTING} levels.")


class _Evaluator:
    """Evaluates a checked expression tree; ``source`` is kept to quote parts in messages."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._big_uses = 0

    def evaluate(self, node: ast.expr) -> Number:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        self._refuse(node)

    def _constant(self, node: ast.Constant) -> Number:
        value = node.value
        if type(value) is int:
            return self._checked(value, node)
        if type(value) is float:
            return self._checked(value, node)
        self._refuse(node, "complex numbers" if isinstance(value, complex) else "this value")

    def _name(self, node: ast.Name) -> float:
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if node.id in _FUNCTIONS:
            raise ToolError(f"'{node.id}' is a function: call it with parentheses, e.g. sqrt(2).")
        raise ToolError(
            f"Unknown name '{node.id}'. Known constants: {', '.join(sorted(_CONSTANTS))}."
        )

    def _unary(self, node: ast.UnaryOp) -> Number:
        if isinstance(node.op, ast.USub):
            return -self.evaluate(node.operand)
        if isinstance(node.op, ast.UAdd):
            return +self.evaluate(node.operand)
        raise self._unsupported_operator(node.op)

    def _binary(self, node: ast.BinOp) -> Number:
        operator = _BINARY_OPERATORS.get(type(node.op))
        if operator is None:
            raise self._unsupported_operator(node.op)
        left, right = self.evaluate(node.left), self.evaluate(node.right)
        if isinstance(node.op, ast.Mult):
            self._check_product(left, right, node)
        if isinstance(node.op, ast.Pow):
            self._check_power(left, right, node)
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) <= 1:
                # 0, 1 and -1 to any positive power, without looping over a huge exponent's bits.
                return self._apply(node, _power_of_unit, left, right)
        return self._apply(node, operator, left, right)

    def _check_product(self, left: Number, right: Number, node: ast.BinOp) -> None:
        if not (isinstance(left, int) and isinstance(right, int) and left and right):
            return
        # |left * right| >= 2**(bits(left) - 1 + bits(right) - 1), which is >= 2**_INT_LIMIT_BITS.
        if left.bit_length() + right.bit_length() - 2 >= _INT_LIMIT_BITS:
            raise self._too_large(node)

    def _check_power(self, base: Number, exponent: Number, node: ast.BinOp) -> None:
        if not (isinstance(base, int) and isinstance(exponent, int)):
            return  # float powers overflow with an OverflowError instead of running long
        if exponent <= 0 or abs(base) <= 1:
            return
        # Any base of 2 or more gives at least exponent*log10(2) digits; deciding on that first
        # keeps an astronomically large exponent from ever being converted to a float.
        if exponent > MAX_DIGITS / math.log10(2) or exponent * math.log10(abs(base)) > MAX_DIGITS:
            raise self._too_large(node)

    def _call(self, node: ast.Call) -> Number:
        function = self._function(node)
        if node.keywords:
            self._refuse(node.keywords[0])
        args = [self.evaluate(arg) for arg in node.args]
        return self._apply(node, function.impl, *args)

    def _function(self, node: ast.Call) -> _Function:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name is None:
            self._refuse(node.func)
        function = _FUNCTIONS.get(name)
        if function is None:
            known = ", ".join(_FUNCTIONS)
            raise ToolError(f"Unknown function '{name}'. Known functions: {known}.")
        count = len(node.args)
        if count < function.min_args or (
            function.max_args is not None and count > function.max_args
        ):
            raise ToolError(f"{name}() {_arity(function)}, got {count}.")
        return function

    def _apply(self, node: ast.expr, function: Callable[..., Number], *args: Number) -> Number:
        self._count_big_uses(args)
        try:
            result = function(*args)
        except ZeroDivisionError:
            raise ToolError(f"Division by zero: {self._quote(node)}.") from None
        except OverflowError:
            raise self._beyond_float_range(node) from None
        except ValueError:
            raise ToolError(f"Math domain error: {self._quote(node)} is undefined.") from None
        except TypeError as error:
            raise ToolError(f"Invalid argument: {self._quote(node)} ({error}).") from None
        if isinstance(result, complex):
            raise ToolError(f"Math domain error: {self._quote(node)} has no real result.")
        checked = self._checked(result, node)
        self._count_big_uses((checked,))
        return checked

    def _count_big_uses(self, values: tuple[Number, ...]) -> None:
        # One step on numbers under 10**MAX_DIGITS is fast; this keeps many from adding up.
        self._big_uses += sum(isinstance(v, int) and not -_BIG_INT < v < _BIG_INT for v in values)
        if self._big_uses > MAX_BIG_USES:
            raise ToolError(
                f"Expression too costly: more than {MAX_BIG_USES} uses of numbers "
                f"with more than {BIG_DIGITS} digits."
            )

    def _checked(self, value: Number, node: ast.expr) -> Number:
        if isinstance(value, int) and abs(value) >= _INT_LIMIT:
            raise self._too_large(node)
        if isinstance(value, float) and not math.isfinite(value):
            raise self._beyond_float_range(node)
        return value

    def _too_large(self, node: ast.expr) -> ToolError:
        return ToolError(
            f"Result too large: {self._quote(node)} would have more than {MAX_DIGITS} digits."
        )

    def _beyond_float_range(self, node: ast.expr) -> ToolError:
        return ToolError(
            f"Result too large: {self._quote(node)} is beyond the floating-point range (1.8e308)."
        )

    def _unsupported_operator(self, operator: ast.AST) -> ToolError:
        symbol = _OPERATOR_SYMBOLS.get(type(operator), type(operator).__name__)
        return ToolError(f"Operator {symbol} is not supported; use + - * / // % ** and functions.")

    def _refuse(self, node: ast.AST, what: str | None = None) -> NoReturn:
        if isinstance(node, ast.Tuple):
            raise ToolError(
                f"Not supported: a comma outside a function call in '{self._quote(node)}'; "
                "use '.' for decimals and 1000 or 1,000 for thousands."
            )
        what = what or _UNSUPPORTED_NODES.get(type(node), type(node).__name__)
        raise ToolError(f"Not supported: {what} in '{self._quote(node)}'.")

    def _quote(self, node: ast.AST) -> str:
        return ast.get_source_segment(self._source, node) or type(node).__name__


def _arity(function: _Function) -> str:
    if function.max_args is None:
        return f"takes at least {function.min_args} argument{'s' * (function.min_args > 1)}"
    if function.min_args == function.max_args:
        return f"takes {function.min_args} argument{'s' * (function.min_args > 1)}"
    return f"takes {function.min_args} or {function.max_args} arguments"


def _power_of_unit(base: int, exponent: int) -> int:
    return base if base != -1 or exponent % 2 else 1


def _brief(value: Number) -> str:
    text = _format(value)
    if len(text) <= 30:
        return text
    sign = "negative " if text.startswith("-") else ""
    return f"a {sign}{len(text.lstrip('-'))}-digit number"


def _format(value: Number) -> str:
    if isinstance(value, int):
        return _int_to_str(value)
    if value == 0:
        return "0"  # also for -0.0
    text = f"{value:.{_SIGNIFICANT_DIGITS}g}"
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def _int_to_str(value: int) -> str:
    # str() refuses ints longer than sys.get_int_max_str_digits() (4300 by default); converting in
    # chunks avoids changing that process-wide setting.
    sign, value = ("-" if value < 0 else ""), abs(value)
    chunk = 10**_CHUNK_DIGITS
    pieces: list[str] = []
    while value >= chunk:
        value, low = divmod(value, chunk)
        pieces.append(f"{low:0{_CHUNK_DIGITS}d}")
    pieces.append(str(value))
    return sign + "".join(reversed(pieces))
