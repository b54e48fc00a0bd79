"""Reading events in chunks mixed across files, with new branches and cuts applied.

A chunk takes the same share of every file (so every chunk holds every
label in the proportions of the whole sample), reads only the branches
needed, computes new branches, applies the cuts and attaches labels and
the train/validation/test assignment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import Params, Preproc
from .flatten import Jagged, concatenate, jagged_offsets
from .preprocess import add_new_branches, event_mask
from .selection import Selection
from .sources import RootInput
from .split import split_codes

log = logging.getLogger("mlaas4hep")


@dataclass(frozen=True)
class ChunkPlan:
    """How many entries of each file are read, and in how many chunks."""

    per_file: tuple[int, ...]
    n_chunks: int

    @classmethod
    def make(cls, entries: list[int], nevts: int, chunk_size: int) -> ChunkPlan:
        """Share ``nevts`` (-1 = all) across files in proportion to their entries."""
        total = sum(entries)
        wanted = total if nevts < 0 else min(nevts, total)
        if wanted == total or total == 0:
            per_file = list(entries)
        else:
            exact = np.array(entries, dtype=np.float64) * wanted / total
            per_file = np.floor(exact).astype(int)
            order = np.argsort(-(exact - per_file), kind="stable")
            per_file[order[: wanted - int(per_file.sum())]] += 1
            per_file = [int(n) for n in per_file]
        return cls(tuple(per_file), max(1, -(-sum(per_file) // chunk_size)))

    @property
    def total(self) -> int:
        """Entries read over all files."""
        return sum(self.per_file)

    def ranges(self, k: int) -> list[tuple[int, int, int]]:
        """(file index, start, stop) of chunk ``k`` for every file."""
        return [(i, n * k // self.n_chunks, n * (k + 1) // self.n_chunks)
                for i, n in enumerate(self.per_file)]


@dataclass
class RawChunk:
    """Events of one chunk that passed the cuts, before flattening."""

    index: int
    columns: dict[str, Any]
    """Every event read (the cuts do not copy them: see ``events``)."""
    labels: np.ndarray
    split: np.ndarray
    file_index: np.ndarray
    read_per_file: dict[int, int]
    """Entries read from each file (before cuts)."""
    events: np.ndarray | None = None
    """Where the events that passed the cuts are in ``columns`` (None: all of them); labels,
    split and file_index hold those events only."""

    def rows(self, selected: np.ndarray | None = None) -> np.ndarray | None:
        """Positions in ``columns`` of the passing events ``selected`` (indices among them;
        None: all)."""
        if self.events is None:
            return selected
        return self.events if selected is None else self.events[selected]


def _nbytes(column: Any) -> int:
    if isinstance(column, Jagged):
        offsets, content = jagged_offsets(column)
        return offsets.nbytes + content.nbytes
    return column.nbytes


def _concat(parts: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    if len(parts) == 1:
        return parts[0]
    return {name: concatenate([p[name] for p in parts]) for name in names}


class EventStream:
    """Iterates :class:`RawChunk` objects over all input files."""

    def __init__(self, inputs: list[RootInput], selection: Selection, preproc: Preproc,
                 params: Params, plan: ChunkPlan, executor: Executor | None = None):
        self.inputs = inputs
        self.selection = selection
        self.preproc = preproc
        self.params = params
        self.plan = plan
        self.executor = executor

    def _read(self, file_index: int, start: int, stop: int) -> dict[str, Any]:
        source = self.inputs[file_index]
        names = self.selection.read
        t0 = time.perf_counter()
        columns = source.arrays(names, start, stop, self.executor)
        if self.params.verbose >= 1:
            seconds = max(time.perf_counter() - t0, 1e-9)
            mb = sum(_nbytes(c) for c in columns.values()) / 2**20
            log.info("# %d entries, %d branches, %.2f MB, %.3f sec, %.1f MB/sec, %.1f kHz  "
                     "%s [%d:%d]", stop - start, len(names), mb, seconds, mb / seconds,
                     (stop - start) / seconds / 1e3, source.path, start, stop)
        return columns

    def read(self, k: int) -> RawChunk:
        """Read chunk ``k``: every entry of its ranges, before new branches and cuts."""
        parts, labels, splits, files, read = [], [], [], [], {}
        for i, start, stop in self.plan.ranges(k):
            if stop <= start:
                continue
            read[i] = stop - start
            parts.append(self._read(i, start, stop))
            labels.append(np.full(stop - start, self.inputs[i].label, dtype=np.int64))
            splits.append(split_codes(self.params.seed, i, start, stop,
                                      self.params.validation_fraction,
                                      self.params.test_fraction))
            files.append(np.full(stop - start, i, dtype=np.int32))
        return RawChunk(k, _concat(parts, self.selection.read), np.concatenate(labels),
                        np.concatenate(splits), np.concatenate(files), read)

    def cut(self, raw: RawChunk) -> RawChunk:
        """Compute the new branches and apply the cuts to a chunk from :meth:`read`: the
        passing events are marked (``events``), not copied; only the columns used after the
        cuts (the model inputs and the target) are kept."""
        columns = dict(raw.columns)
        add_new_branches(columns, self.preproc)
        keep = event_mask(columns, self.preproc, len(raw.labels))
        needed = [*self.selection.inputs, *([self.params.target] if self.params.target else [])]
        columns = {name: columns[name] for name in needed}
        if keep.all():
            return RawChunk(raw.index, columns, raw.labels, raw.split, raw.file_index,
                            raw.read_per_file)
        return RawChunk(raw.index, columns, raw.labels[keep], raw.split[keep],
                        raw.file_index[keep], raw.read_per_file, np.flatnonzero(keep))

    def chunk(self, k: int) -> RawChunk:
        """Read, extend and cut chunk ``k``."""
        return self.cut(self.read(k))

    def reads(self) -> Iterator[RawChunk]:
        """:meth:`read` of every chunk in order; at the end of the pass the files' read-ahead
        is dropped, so every pass reads the files (memory between passes holds no events)."""
        try:
            for k in range(self.plan.n_chunks):
                yield self.read(k)
        finally:
            for source in self.inputs:
                source.release()

    def __iter__(self) -> Iterator[RawChunk]:
        """Chunks in order, read, extended and cut."""
        return (self.cut(raw) for raw in self.reads())
