"""Safe, vectorised expressions for new branches and cuts.

An expression such as ``log(partonE)``, ``nJets**2`` or ``1<=nJets<=16`` is
parsed with :mod:`ast` and checked against a whitelist: branch names,
numbers, arithmetic (``+ - * / // % **``), comparisons (chained ones too),
``& | ~`` and the functions in :data:`FUNCTIONS`. Nothing else is accepted
(no attributes, subscripts, lambdas, keywords, strings, ``and``/``or``) and
nothing is ever passed to ``eval``: evaluation walks the checked tree and
applies numpy ufuncs, which work on numpy arrays, :class:`~mlaas4hep.flatten.Jagged`
lists and awkward arrays alike.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

from .errors import UserError
from .flatten import Jagged


def _count(x: Any) -> Any:
    return x.counts() if isinstance(x, Jagged) else ak.num(x, axis=-1)


def _sum(x: Any) -> Any:
    return x.reduce(np.add, 0) if isinstance(x, Jagged) else ak.sum(x, axis=-1)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{
        name: getattr(np, name)
        for name in (
            "abs", "sqrt", "exp", "log", "log10", "log2", "log1p", "expm1",
            "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2",
            "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
            "hypot", "minimum", "maximum", "sign", "floor", "ceil",
            "square", "isfinite",
        )
    },
    "count": _count,
    "sum": _sum,
}
"""Functions an expression may call. ``count(x)`` and ``sum(x)`` reduce a
jagged branch to one value per event; all others act element-wise."""

CONSTANTS: dict[str, float] = {"pi": float(np.pi)}

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
_COMPARE = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_HINTS = {
    ast.BoolOp: "use & and | (with parentheses) instead of 'and'/'or'",
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "indexing is not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.Call: "only calls of the whitelisted functions are allowed",
}


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, the branch names it reads, its tree."""

    text: str
    names: frozenset[str]
    tree: ast.expr = field(repr=False, compare=False)

    def evaluate(self, arrays: Mapping[str, Any]) -> Any:
        """Evaluate on ``arrays`` (branch name -> numpy or awkward array)."""
        return _evaluate(self.tree, arrays)


def parse_expression(text: str, *, where: str) -> Expression:
    """Parse and whitelist-check ``text``; ``where`` names it in messages.

    Raises :class:`UserError` for syntax errors and anything outside the
    whitelist, before anything is evaluated.
    """
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: expected an expression string, got {text!r}")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise UserError(f"{where}: invalid expression {text!r}: {exc.msg}") from None
    names: set[str] = set()
    _check(tree, text, where, names)
    return Expression(text=text.strip(), names=frozenset(names), tree=tree)


def _refuse(node: ast.AST, text: str, where: str) -> UserError:
    snippet = ast.get_source_segment(text.strip(), node) or type(node).__name__
    hint = next((h for t, h in _HINTS.items() if isinstance(node, t)), "")
    allowed = "branch names, numbers, + - * / // % **, comparisons, & | ~ and " + (
        ", ".join(sorted(FUNCTIONS))
    )
    detail = f"; {hint}" if hint else ""
    return UserError(
        f"{where}: {snippet!r} is not allowed in expression {text.strip()!r}{detail}."
        f" Allowed: {allowed}"
    )


def _check(node: ast.AST, text: str, where: str, names: set[str]) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _refuse(node, text, where)
    elif isinstance(node, ast.Name):
        if node.id not in CONSTANTS:
            names.add(node.id)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, text, where, names)
        _check(node.right, text, where, names)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, text, where, names)
    elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        for child in (node.left, *node.comparators):
            _check(child, text, where, names)
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in FUNCTIONS
        and not node.keywords
        and node.args
        and not any(isinstance(a, ast.Starred) for a in node.args)
    ):
        for arg in node.args:
            _check(arg, text, where, names)
    elif isinstance(node, ast.Call) and not isinstance(node.func, ast.Name):
        raise _refuse(node.func, text, where)
    else:
        raise _refuse(node, text, where)


def _evaluate(node: ast.expr, arrays: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return np.float64(node.value)  # never Python ints: 9**9**9 must not hang
    if isinstance(node, ast.Name):
        return CONSTANTS[node.id] if node.id in CONSTANTS else arrays[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, arrays), _evaluate(node.right, arrays))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, arrays))
    if isinstance(node, ast.Compare):
        values = [_evaluate(node.left, arrays), *(_evaluate(c, arrays) for c in node.comparators)]
        result = None
        for op, left, right in zip(node.ops, values, values[1:], strict=False):
            step = _COMPARE[type(op)](left, right)
            result = step if result is None else result & step
        return result
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](*(_evaluate(a, arrays) for a in node.args))
    raise AssertionError(f"unchecked node {ast.dump(node)}")  # parse_expression refuses these
