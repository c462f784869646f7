"""Exact arithmetic and date differences over a whitelisted AST (never ``eval``).

Numbers are ``Fraction``s, so ``0.1 + 0.2`` is exactly ``0.3``. Supported: numbers,
``+ - * / // % **``, parentheses, unary minus/plus, and ``days_between(a, b)`` /
``years_between(a, b)`` on dates written ``YYYY-MM-DD`` (or ``YYYY-MM`` / ``YYYY``).
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from datetime import date
from decimal import Context, Decimal
from fractions import Fraction

MAX_CHARS = 300
MAX_BITS = 4096
"""Largest numerator/denominator, so ``9**9**9`` fails fast instead of eating memory."""

_BINARY: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: lambda a, b: Fraction(a // b),
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Fraction], Fraction]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
# Symbols models write for Python operators; "^" means power in their arithmetic.
_SYMBOLS = {"^": "**", "×": "*", "÷": "/", "−": "-"}
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DATE = re.compile(r"(\d{1,4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


class CalcError(ValueError):
    """The expression is unsupported or its value undefined; the message says why."""


def calculate(expression: str) -> str:
    """Evaluate ``expression`` and format the result (exact where it terminates)."""
    return format_number(evaluate(expression))


def evaluate(expression: str) -> Fraction:
    text = expression.strip()
    if len(text) > MAX_CHARS:
        raise CalcError(f"expression longer than {MAX_CHARS} characters")
    for symbol, python in _SYMBOLS.items():
        text = text.replace(symbol, python)
    text = _THOUSANDS.sub("", text)
    try:
        return _eval(ast.parse(text, mode="eval").body)
    except SyntaxError as exc:
        raise CalcError(f"cannot parse {expression!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        # A chain like "-(-(-…" fits MAX_CHARS but not a stack that is already deep.
        raise CalcError("expression nested too deeply") from None


def _eval(node: ast.expr) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise CalcError("True/False are not numbers")
        return _number(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_eval(node.left), _eval(node.right))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        try:
            return _bounded(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalcError("division by zero") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Call):
        return _date_function(node)
    raise CalcError(f"unsupported syntax: {type(node).__name__}")


def _number(value: int | float) -> Fraction:
    try:
        # repr keeps the decimal the model wrote: Fraction("0.1") is exactly 1/10.
        return _bounded(Fraction(repr(value)))
    except ValueError:
        raise CalcError(f"not a finite number: {value!r}") from None


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise CalcError("only whole-number exponents are supported")
    size = max(base.numerator.bit_length(), base.denominator.bit_length())
    if size * abs(exponent.numerator) > MAX_BITS:
        raise CalcError("result too large")
    try:
        return Fraction(base**exponent.numerator)
    except ZeroDivisionError:
        raise CalcError("zero to a negative power") from None


def _bounded(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_BITS:
        raise CalcError("result too large")
    return value


def _date_function(node: ast.Call) -> Fraction:
    name = node.func.id if isinstance(node.func, ast.Name) else ""
    if name not in ("days_between", "years_between"):
        raise CalcError("the only functions are days_between and years_between")
    args = node.args
    if node.keywords or len(args) != 2:
        raise CalcError(f"{name} takes two dates: {name}('YYYY-MM-DD', 'YYYY-MM-DD')")
    start, end = (_date(a) for a in args)
    if name == "days_between":
        return Fraction((end - start).days)
    return Fraction(_whole_years(start, end))


def _date(node: ast.expr) -> date:
    text = node.value if isinstance(node, ast.Constant) else None
    match = _DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise CalcError("dates must be quoted strings written YYYY-MM-DD")
    year, month, day = (int(g) if g else 1 for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise CalcError(f"invalid date {text!r}: {exc}") from None


def _whole_years(start: date, end: date) -> int:
    """Complete years from ``start`` to ``end`` (an age); negative when ``end`` is earlier."""
    if end < start:
        return -_whole_years(end, start)
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))


def format_number(value: Fraction) -> str:
    """Integers as such, terminating fractions as exact decimals, others as ``p/q ≈ x``."""
    if value.denominator == 1:
        return str(value.numerator)
    places = _decimal_places(value.denominator)
    if places is None:
        return f"{value.numerator}/{value.denominator} ≈ {_approximate(value)}"
    scaled = abs(value.numerator) * 10**places // value.denominator
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


_APPROXIMATION = Context(prec=12)


def _approximate(value: Fraction) -> str:
    """Twelve significant digits without trailing zeros, like a float's ``.12g`` but in
    decimal: values within MAX_BITS can lie beyond the range of a float (``10**1000 / 7``)
    or below its smallest step."""
    quotient = _APPROXIMATION.divide(Decimal(value.numerator), value.denominator)
    mantissa, e, exponent = f"{quotient:.12g}".partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa + e + exponent


def _decimal_places(denominator: int) -> int | None:
    """Digits after the point when 1/denominator terminates (only factors 2 and 5)."""
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    return max(twos, fives) if denominator == 1 else None
