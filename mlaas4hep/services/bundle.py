"""A trained model served with exactly the preprocessing it was trained with.

A bundle is a ``workflow.py`` output folder: ``metrics.json`` (task, which
ONNX file), ``global-specs.json`` (inputs, padded widths, normalisation
statistics), ``params.json`` and ``preproc.json`` (new branches, cuts) and
the ONNX copy of the model, which :mod:`mlaas4hep.onnx_export` kept only
after checking it gives the native model's scores. Events are given as raw
branch values (JSON rows, or a ROOT file); new branches are computed, jagged
branches padded and everything normalised as in training, then scored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.common import features
from ..config import Params, Preproc, load_params, load_preproc, read_json
from ..errors import UserError, did_you_mean, short_list
from ..flatten import Jagged, Normaliser, to_matrix
from ..onnx_export import onnx_scores, onnx_session
from ..preprocess import add_new_branches, event_mask
from ..specs import Specs
from ..tasks import Task

FILES = ("metrics.json", "global-specs.json", "params.json", "preproc.json")
"""Files every bundle has besides the ONNX model."""
READ_STEP = 100_000
"""Entries of a ROOT file scored at a time."""


@dataclass
class Scores:
    """Scores of the events that were given, and which of them pass the training's cuts."""

    scores: np.ndarray
    passes_cuts: np.ndarray

    def to_json(self) -> dict[str, Any]:
        """``{"scores": [...], "passes_cuts": [...]}``."""
        return {"scores": self.scores.tolist(), "passes_cuts": self.passes_cuts.tolist()}


def task_of(metrics: dict[str, Any]) -> Task:
    """The task recorded in metrics.json."""
    if metrics.get("task") == "regression":
        return Task(regression=True)
    return Task(int(metrics.get("classes", 2)))


class ModelBundle:
    """A loaded training output (see the module docstring)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        for name in FILES:
            if not (self.folder / name).is_file():
                raise UserError(f"{name}: missing; a model bundle is the whole output folder "
                                "of workflow.py (model, metrics.json, global-specs.json, "
                                "params.json, preproc.json)")
        self.metrics = read_json(self.folder / "metrics.json")
        onnx = self.metrics.get("onnx") or {}
        if "file" not in onnx or not (self.folder / onnx["file"]).is_file():
            why = onnx.get("error") or onnx.get("skipped") or "no ONNX file in the folder"
            raise UserError(f"metrics.json: the run has no ONNX copy of its model ({why}); "
                            "the services serve ONNX models: install mlaas4hep[onnx] and "
                            "train again")
        self.specs = Specs.load(self.folder / "global-specs.json")
        self.params: Params = load_params(self.folder / "params.json")
        self.preproc: Preproc = load_preproc(self.folder / "preproc.json")
        self.task = task_of(self.metrics)
        self.session = onnx_session(self.folder / onnx["file"])
        self.wants_mask = len(self.session.get_inputs()) == 2
        self._normalise = Normaliser(self.params.normalisation, self.specs.stats())
        new = {b.name for b in self.preproc.new_branches}
        direct = [n for n in self.specs.inputs if n not in new]
        used = sorted(self.preproc.names_used - new - set(direct))
        self.keys: list[str] = direct + used
        """Raw branches an event must give, inputs first."""

    def describe(self) -> dict[str, Any]:
        """What ``GET /params/{model}`` shows: the keys to send and how the model was made."""
        kinds = {n: self.specs.branches[n].kind if n in self.specs.branches else "any"
                 for n in self.keys}
        return {"keys": self.keys, "kinds": kinds, "task": self.task.name,
                "classes": self.task.n_classes, "backend": self.metrics.get("backend"),
                "n_features": self.specs.n_features, "tree": self.params.branch,
                "test": self.metrics.get("test", {}), "params": self.params.to_dict(),
                "preproc": self.preproc.source}

    def predict_columns(self, columns: dict[str, Any]) -> Scores:
        """Score events given as raw branch columns (numpy arrays, or Jagged lists)."""
        check_keys(list(columns), self.keys)
        columns = {k: columns[k] for k in self.keys}
        for key, column in columns.items():
            kind = self.specs.branches[key].kind if key in self.specs.branches else None
            if kind and (kind == "jagged") != isinstance(column, Jagged):
                raise UserError(f"key '{key}': the model was trained on "
                                + ("a list of numbers per event (jagged)" if kind == "jagged"
                                   else "one number per event (flat)"))
        n = len(columns[self.keys[0]])
        if n == 0:
            return Scores(self.task.no_scores(), np.zeros(0, dtype=bool))
        add_new_branches(columns, self.preproc)
        passes = event_mask(columns, self.preproc, n)
        X, mask = to_matrix(columns, self.specs.inputs, self.specs.widths, self._normalise)
        scores = onnx_scores(self.session, features(X, mask, self.wants_mask), self.task)
        return Scores(scores, passes)

    def predict_rows(self, keys: list[str], rows: list[list[Any]]) -> Scores:
        """Score JSON rows: ``rows[i][j]`` is the value of ``keys[j]`` (a number, or a list
        of numbers for a jagged branch)."""
        return self.predict_columns(columns_from_rows(keys, rows, self.keys))

    def predict_file(self, path: str, *, nevts: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Entry numbers and scores of the events of a ROOT file (local, root:// or https://)
        that pass the training's cuts; ``nevts`` limits the entries read (-1 = all)."""
        from ..sources import open_input

        source = open_input(path, self.params.branch, 0, redirector=self.params.redirector)
        try:
            present = set(source.tree.keys())
            missing = [k for k in self.keys if k not in present]
            if missing:
                raise UserError(f"{path}: branch(es) {short_list(missing)} that the model "
                                f"needs are missing in tree '{self.params.branch}'")
            total = source.entries if nevts < 0 else min(nevts, source.entries)
            entries, scores = [], []
            for start, stop in _steps(total):
                result = self.predict_columns(source.arrays(self.keys, start, stop))
                keep = result.passes_cuts
                entries.append(np.nonzero(keep)[0] + start)
                scores.append(result.scores[keep])
        finally:
            source.close()
        if not scores:
            return np.zeros(0, dtype=np.int64), self.task.no_scores()
        return np.concatenate(entries), np.concatenate(scores)


def _steps(total: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, READ_STEP):
        yield start, min(start + READ_STEP, total)


def check_keys(keys: Any, wanted: list[str]) -> None:
    """Refuse ``keys`` unless they are exactly the branch names ``wanted``, in any order."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise UserError("'keys' must be a list of branch names")
    if keys == wanted:
        return
    known = set(wanted)
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise UserError(f"unknown key '{unknown[0]}'{did_you_mean(unknown[0], wanted)}; this "
                        f"model needs {short_list(wanted)}")
    given = set(keys)
    missing = [k for k in wanted if k not in given]
    if missing:
        raise UserError(f"missing key(s) {short_list(missing)}; this model needs "
                        f"{short_list(wanted)}")


def ordered_row(keys: list[str], values: Any, wanted: list[str]) -> list[Any]:
    """One JSON event (``values[j]`` of ``keys[j]``) as its values in the order ``wanted``."""
    check_keys(keys, wanted)
    if not isinstance(values, list) or len(values) != len(keys):
        raise UserError(f"'values' must be a list with one value per key ({len(keys)})")
    by_key = dict(zip(keys, values, strict=True))
    return [by_key[k] for k in wanted]


def columns_from_rows(keys: list[str], rows: list[list[Any]], wanted: list[str]
                      ) -> dict[str, Any]:
    """Raw branch columns from JSON rows (each row one value per key)."""
    check_keys(keys, wanted)
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise UserError("'values' must be a list with one value per key ('rows': a list of "
                        "such lists)")
    for i, row in enumerate(rows):
        if len(row) != len(keys):
            raise UserError(f"row {i} has {len(row)} values for {len(keys)} keys")
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in keys]
    return {key: column_of(key, list(values)) for key, values in zip(keys, columns, strict=True)}


def column_of(key: str, values: list[Any]) -> np.ndarray | Jagged:
    """One branch's values of several events: numbers (flat) or lists of numbers (jagged)."""
    try:
        if values and isinstance(values[0], list):
            counts = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
            offsets = np.zeros(len(values) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            content = np.fromiter(chain.from_iterable(values), dtype=np.float64,
                                  count=int(offsets[-1]))
            return Jagged(offsets, content)
        column = np.array(values, dtype=np.float64)
        if column.ndim != 1:
            raise ValueError("lists mixed with numbers")
        return column
    except (TypeError, ValueError) as exc:
        raise UserError(f"key '{key}': expected a number per event (or a list of numbers for "
                        f"a jagged branch): {exc}") from None

