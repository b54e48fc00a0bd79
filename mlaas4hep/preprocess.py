"""New branches and cuts, applied to one chunk of events at a time."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from .config import Cut, Preproc
from .errors import UserError
from .expressions import Expression
from .flatten import Jagged, as_column


def _depth(value: Any) -> int:
    if isinstance(value, (ak.Array, Jagged)):
        return value.ndim
    return np.ndim(value)


def _evaluate(expression: Expression, columns: dict[str, Any], where: str) -> Any:
    """Evaluate on the columns it names (numpy arrays and :class:`Jagged` lists)."""
    try:
        with np.errstate(all="ignore"):  # log(0) etc. give inf/nan, masked later
            return expression.evaluate({n: columns[n] for n in expression.names
                                        if n in columns})
    except ValueError as exc:
        raise UserError(f"{where}: '{expression.text}': {exc}") from None


def add_new_branches(columns: dict[str, Any], preproc: Preproc) -> None:
    """Evaluate each new branch in order and add it to ``columns``."""
    n = len(next(iter(columns.values()))) if columns else 0
    for branch in preproc.new_branches:
        value = _evaluate(branch.expression, columns, branch.where)
        depth = _depth(value)
        if depth == 0:
            value = np.full(n, value, dtype=np.float64)
            depth = 1
        expected = 1 if branch.kind == "flat" else 2
        if depth != expected:
            got = "flat (one value per event)" if depth == 1 else "jagged (a list per event)"
            raise UserError(f"{branch.where}: declared type '{branch.kind}' but "
                            f"'{branch.expression.text}' is {got}; set \"type\" accordingly")
        columns[branch.name] = as_column(value)


def _cut_mask(cut: Cut, columns: dict[str, Any]) -> np.ndarray:
    passed = as_column(_evaluate(cut.expression, columns, cut.where))
    depth = _depth(passed)
    if depth == 2 and cut.reduce is None:
        raise UserError(f"{cut.where}: '{cut.expression.text}' is jagged; say which events "
                        f"pass: [\"{cut.expression.text}\", \"any\"] or [..., \"all\"]")
    if depth == 1 and cut.reduce is not None:
        raise UserError(f"{cut.where}: '{cut.expression.text}' is flat (one value per event); "
                        f"'{cut.reduce}' only applies to jagged cuts: give the expression alone")
    if getattr(passed, "dtype", None) != np.bool_:
        raise UserError(f"{cut.where}: '{cut.expression.text}' is not a condition "
                        "(use a comparison such as x > 0)")
    if depth == 2:
        return (passed.reduce(np.logical_or, False) if cut.reduce == "any"
                else passed.reduce(np.logical_and, True))
    return np.asarray(passed)


def event_mask(columns: dict[str, Any], preproc: Preproc, n_events: int) -> np.ndarray:
    """Boolean mask of the events passing every cut (all True without cuts)."""
    mask = np.ones(n_events, dtype=bool)
    for cut in preproc.cuts:
        mask &= _cut_mask(cut, columns)
    return mask
