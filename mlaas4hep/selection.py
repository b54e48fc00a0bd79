"""Which branches are read, which are inputs, and which cannot be used.

A branch is usable when it holds numbers: one per event ("flat") or a
list per event ("jagged", including fixed-size arrays). Strings and
objects are skipped with a note, or refused when asked for by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from uproot.interpretation.jagged import AsJagged
from uproot.interpretation.numerical import AsDtype
from uproot.interpretation.objects import AsObjects

from .config import Params, Preproc
from .errors import UserError, did_you_mean
from .expressions import Expression


@dataclass
class Selection:
    """Branch roles for one workflow."""

    read: list[str]
    """Branches read from the files (inputs, identifiers, names in expressions)."""
    inputs: list[str]
    """Model inputs in column order: file branches then new branches."""
    identifiers: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    """Branches left out because their type is not numeric, with the reason."""


def unsupported_reason(branch: Any) -> str | None:
    """Why a TTree branch cannot be an input, or None if it can."""
    interp = getattr(branch, "interpretation", None)
    if interp is None:  # RNTuple fields: their types are checked on the data
        return None
    if isinstance(interp, AsDtype):
        return None
    if isinstance(interp, AsJagged) and isinstance(interp.content, AsDtype):
        return None
    typename = getattr(branch, "typename", "?")
    if isinstance(interp, AsObjects) and typename.startswith("std::vector<") and (
        typename[12:-1].strip() in _VECTOR_NUMBERS
    ):
        return None
    return f"type {typename} is not a number or a list of numbers"


_VECTOR_NUMBERS = {
    "float", "double", "bool", "char", "short", "int", "long", "unsigned char",
    "unsigned short", "unsigned int", "unsigned long", "int8_t", "uint8_t", "int16_t",
    "uint16_t", "int32_t", "uint32_t", "int64_t", "uint64_t", "Long64_t", "ULong64_t",
    "Float_t", "Double_t", "Int_t", "UInt_t", "Bool_t",
}


def _check_known(names: list[str], known: list[str], where: str) -> None:
    for name in names:
        if name not in known:
            raise UserError(f"{where}: unknown branch '{name}'{did_you_mean(name, known)}")


def select_branches(tree: Any, params: Params, preproc: Preproc, *, path: str) -> Selection:
    """Work out the branch roles from the tree, params and preproc; check every name."""
    available = list(tree.keys(recursive=False)) if hasattr(tree, "keys") else []
    new = [b.name for b in preproc.new_branches]
    for b in new:
        if b in available:
            raise UserError(f"preproc.json: new_branch '{b}' already exists in {path}; "
                            "choose another name")
    _check_known(params.selected_branches, available, f"params.json: selected_branches ({path})")
    _check_known(params.exclude_branches, available, f"params.json: exclude_branches ({path})")
    _check_known(params.identifier, available, f"params.json: identifier ({path})")
    if params.target and params.target not in available and params.target not in new:
        raise UserError(f"params.json: target: unknown branch '{params.target}' in {path}"
                        f"{did_you_mean(params.target, [*available, *new])}")
    target = [params.target] if params.target else []
    check_expression_names(preproc, available, path)
    _check_known([r for r in preproc.removed if r not in new], available,
                 f"preproc.json: keys_to_remove/remove ({path})")

    skipped: dict[str, str] = {}
    for name in available:
        reason = unsupported_reason(tree[name])
        if reason:
            skipped[name] = reason
    for name in params.selected_branches:
        if name in skipped:
            raise UserError(f"params.json: selected_branches: '{name}' in {path} cannot be an "
                            f"input: {skipped[name]}")
    for name in sorted(preproc.names_used - set(new)):
        if name in skipped:
            raise UserError(f"preproc.json: expressions use '{name}' in {path}, whose "
                            f"{skipped[name]}")

    base = params.selected_branches or [n for n in available if n not in skipped]
    dropped = (set(params.exclude_branches) | set(params.identifier) | set(preproc.removed)
               | set(target))
    inputs = [n for n in base if n not in dropped] + [n for n in new if n not in dropped]
    if not inputs:
        raise UserError("no input branches left after selected_branches, exclude_branches, "
                        "identifier and preproc.json removals")
    needed = (set(inputs) | set(params.identifier) | (preproc.names_used - set(new))
              | (set(target) - set(new)))
    read = [n for n in available if n in needed]
    return Selection(read=read, inputs=inputs, identifiers=list(params.identifier),
                     skipped={k: v for k, v in skipped.items() if k in base or
                              not params.selected_branches})


def check_names(expression: Expression, defined: set[str], where: str, source: str = "") -> None:
    """Every name ``expression`` reads must be in ``defined`` (``source`` names the file)."""
    for name in sorted(expression.names - defined):
        raise UserError(f"{where}: unknown branch '{name}' in '{expression.text}'"
                        f"{f' ({source})' if source else ''}{did_you_mean(name, defined)}")


def check_expression_names(preproc: Preproc, available: list[str], path: str) -> None:
    """Every name an expression reads must be a branch of ``path`` or an earlier new branch."""
    defined = set(available)
    for branch in preproc.new_branches:
        check_names(branch.expression, defined, f"{branch.where}.def", path)
        defined.add(branch.name)
    for cut in preproc.cuts:
        check_names(cut.expression, defined, cut.where, path)
