"""The specs pass: what every input branch looks like, computed once.

For each input: flat or jagged, its dtype, min/max/mean/std over the
*training split* after cuts (the normalisation statistics), the longest
list (jagged, over all events after cuts, which sets the padded width)
and how many values were not finite. For each file: entries read and
events kept per split. Saved as ``global-specs.json`` with the hash of
everything it was computed from, so it is never reused for other inputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .flatten import Jagged, jagged_parts, select_events
from .split import SPLIT_NAMES, TRAIN
from .stream import RawChunk

log = logging.getLogger("mlaas4hep")

SPECS_VERSION = 1


@dataclass
class BranchSpec:
    """Summary of one input branch."""

    kind: str
    dtype: str
    min: float = float("inf")
    max: float = float("-inf")
    mean: float = 0.0
    std: float = 0.0
    count: int = 0
    non_finite: int = 0
    max_len: int | None = None
    sum: float = field(default=0.0, repr=False)
    sumsq: float = field(default=0.0, repr=False)

    def add(self, values: np.ndarray) -> None:
        """Accumulate training-split values (flat contents for jagged branches)."""
        values = values.astype(np.float64, copy=False)
        finite = np.isfinite(values)
        self.non_finite += int(values.size - finite.sum())
        values = values[finite]
        if values.size:
            self.min = min(self.min, float(values.min()))
            self.max = max(self.max, float(values.max()))
            self.sum += float(values.sum())
            self.sumsq += float(np.square(values).sum())
            self.count += int(values.size)

    def finish(self) -> None:
        """Turn the running sums into mean and std."""
        if self.count:
            self.mean = self.sum / self.count
            self.std = float(np.sqrt(max(self.sumsq / self.count - self.mean**2, 0.0)))
        else:
            self.min = self.max = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (without the running sums)."""
        d = asdict(self)
        d.pop("sum"), d.pop("sumsq")
        if self.kind == "flat":
            d.pop("max_len")
        return d


@dataclass
class Specs:
    """Result of the specs pass (see the module docstring)."""

    hash: str
    tree: str
    inputs: list[str]
    branches: dict[str, BranchSpec]
    files: list[dict[str, Any]]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def widths(self) -> dict[str, int | None]:
        """Padded width per input: None for flat branches."""
        return {n: self.branches[n].max_len for n in self.inputs}

    @property
    def n_features(self) -> int:
        """Columns of the input matrix."""
        return sum(1 if w is None else w for w in self.widths.values())

    @property
    def events(self) -> int:
        """Events that passed the cuts, all files and splits."""
        return sum(f["selected"] for f in self.files)

    def stats(self) -> dict[str, dict[str, float]]:
        """Normalisation statistics per input."""
        return {n: {"min": b.min, "max": b.max, "mean": b.mean, "std": b.std}
                for n, b in self.branches.items()}

    def summary(self) -> str:
        """The original's first-pass line."""
        kinds = [self.branches[n].kind for n in self.inputs]
        return (f"--- first pass: {self.events} events, ({kinds.count('flat')}-flat, "
                f"{kinds.count('jagged')}-jagged) branches, {self.n_features} attrs")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"version": SPECS_VERSION, "hash": self.hash, "tree": self.tree,
                "events": self.events, "n_features": self.n_features, "inputs": self.inputs,
                "branches": {n: b.to_dict() for n, b in self.branches.items()},
                "files": self.files, "skipped": self.skipped}

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Specs:
        """Read a specs file written by :meth:`save`."""
        from .config import read_json

        raw = read_json(path)
        try:
            if raw.get("version") != SPECS_VERSION:
                raise KeyError("version")
            branches = {n: BranchSpec(**b) for n, b in raw["branches"].items()}
            return cls(raw["hash"], raw["tree"], raw["inputs"], branches, raw["files"],
                       raw.get("skipped", {}))
        except (KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"{path}: not a specs file of this version of mlaas4hep "
                            f"(problem with {exc}); delete it or leave out --specs") from None


def specs_hash(material: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of what the specs are computed from."""
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _depth(value: Any) -> int:
    return value.ndim if isinstance(value, (Jagged, np.ndarray)) else 0


def _dtype(value: Any) -> str:
    return str(value.dtype)


@dataclass
class SpecsPart:
    """What one chunk adds to the specs (mergeable, so chunks can be summarised anywhere)."""

    branches: dict[str, BranchSpec]
    counts: list[dict[str, int]]
    """Per file: read, selected and the events of each split."""


def summarise_chunk(chunk: RawChunk, inputs: list[str], n_files: int) -> SpecsPart:
    """The statistics of one chunk's training split and its per-file counts."""
    branches: dict[str, BranchSpec] = {}
    passing = chunk.rows()  # positions in the columns of the events that passed the cuts
    train_rows = chunk.rows(np.flatnonzero(chunk.split == TRAIN))
    train = np.zeros(len(chunk.columns[inputs[0]]), dtype=bool)  # the same, as a mask
    train[train_rows] = True
    for name in inputs:
        column = chunk.columns[name]
        kind = {1: "flat", 2: "jagged"}.get(_depth(column))
        if kind is None:
            raise UserError(f"branch '{name}' is neither flat nor a list of numbers")
        spec = branches[name] = BranchSpec(kind, _dtype(column),
                                           max_len=0 if kind == "jagged" else None)
        if kind == "flat":
            spec.add(np.asarray(column)[train_rows])
        else:
            counts, _ = jagged_parts(column)
            if passing is not None:
                counts = counts[passing]
            if len(counts):
                spec.max_len = int(counts.max())
            spec.add(jagged_parts(select_events(column, train))[1])
    counts = []
    for i in range(n_files):
        mine = chunk.file_index == i
        entry = {"read": chunk.read_per_file.get(i, 0), "selected": int(mine.sum())}
        entry.update({split: int((chunk.split[mine] == code).sum())
                      for code, split in enumerate(SPLIT_NAMES)})
        counts.append(entry)
    return SpecsPart(branches, counts)


def _merge_branch(total: BranchSpec, part: BranchSpec) -> None:
    total.non_finite += part.non_finite
    if part.max_len is not None:
        total.max_len = max(total.max_len or 0, part.max_len)
    if part.count:
        total.min = min(total.min, part.min)
        total.max = max(total.max, part.max)
        total.sum += part.sum
        total.sumsq += part.sumsq
        total.count += part.count


def merge_specs(parts: Iterable[SpecsPart], inputs: list[str], files: list[dict[str, Any]],
                *, tree: str, hash: str, skipped: dict[str, str]) -> Specs:
    """Add up chunk summaries in chunk order; ``files`` gets per-file counts added."""
    branches: dict[str, BranchSpec] = {}
    for f in files:
        f.update({"read": 0, "selected": 0, **{s: 0 for s in SPLIT_NAMES}})
    for part in parts:
        for name, spec in part.branches.items():
            if name not in branches:
                branches[name] = BranchSpec(spec.kind, spec.dtype,
                                            max_len=0 if spec.kind == "jagged" else None)
            _merge_branch(branches[name], spec)
        for f, counts in zip(files, part.counts, strict=True):
            for key, n in counts.items():
                f[key] += n
    for spec in branches.values():
        spec.finish()
    return Specs(hash, tree, inputs, branches, files, skipped)

