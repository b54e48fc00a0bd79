"""Jagged branches to fixed-width columns with a mask, and normalisation.

Mask convention (the only place it is defined): ``mask == 1`` marks a real
value, ``mask == 0`` padding or a non-finite value (NaN, inf). Padded and
masked positions hold 0 after normalisation.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numba
import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin


class Jagged(NDArrayOperatorsMixin):
    """A list of numbers per event as numpy offsets and contents: what the pipeline passes
    around. Operators and numpy ufuncs act on the numbers (as on awkward arrays): a numpy
    array with one value per event, or a scalar, is broadcast to each event's list."""

    ndim = 2

    def __init__(self, offsets: np.ndarray, content: np.ndarray):
        self.offsets = offsets
        """int64, events + 1 entries (may start above 0)."""
        self.content = content

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def dtype(self) -> np.dtype:
        """Type of the numbers."""
        return self.content.dtype

    def events(self, start: int, stop: int) -> Jagged:
        """Events [start, stop) without copying."""
        return Jagged(self.offsets[start:stop + 1], self.content)

    def to_awkward(self) -> ak.Array:
        """The same lists as an awkward array (no copy)."""
        return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(self.offsets),
                                                    ak.contents.NumpyArray(self.content)))

    def counts(self) -> np.ndarray:
        """The length of each event's list."""
        return np.diff(self.offsets)

    def reduce(self, ufunc: np.ufunc, empty: Any) -> np.ndarray:
        """``ufunc`` over each event's list (``np.add``: sums, ``np.logical_or``: any...);
        ``empty`` for an empty list. Booleans are summed as integers."""
        offsets, content = jagged_offsets(self)
        if ufunc is np.add and content.dtype == np.bool_:
            content = content.astype(np.int64)
        filled = np.diff(offsets) > 0
        out = np.full(len(filled), empty, dtype=ufunc(content[:0], content[:0]).dtype)
        if filled.any():
            out[filled] = ufunc.reduceat(content, offsets[:-1][filled])
        return out

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any
                        ) -> Any:
        if method != "__call__" or kwargs:
            return NotImplemented
        if any(isinstance(x, ak.Array) for x in inputs):
            return ufunc(*(as_awkward(x) for x in inputs))
        lists = [Jagged(*jagged_offsets(x)) for x in inputs if isinstance(x, Jagged)]
        offsets = lists[0].offsets
        if any(not np.array_equal(j.offsets, offsets) for j in lists[1:]):
            raise ValueError("lists of different lengths cannot be combined element by "
                             "element")
        contents = iter(j.content for j in lists)
        args = [next(contents) if isinstance(x, Jagged) else _per_number(x, offsets)
                for x in inputs]
        return Jagged(offsets, ufunc(*args))


def _per_number(value: Any, offsets: np.ndarray) -> Any:
    """A value per event repeated for each number of the event's list; scalars as they are."""
    if np.ndim(value) == 0:
        return value
    if len(value) != len(offsets) - 1:
        raise ValueError(f"{len(value)} values for {len(offsets) - 1} events")
    return np.repeat(value, np.diff(offsets))


Column = np.ndarray | Jagged
"""A branch in the pipeline: numpy (flat) or :class:`Jagged`."""


def as_awkward(column: Any) -> Any:
    """``column`` for expression evaluation: awkward for jagged, numpy for flat."""
    return column.to_awkward() if isinstance(column, Jagged) else column


def as_column(value: Any) -> Any:
    """An expression's result as a pipeline column (awkward lists become :class:`Jagged`)."""
    if isinstance(value, ak.Array) and value.ndim == 2:
        return Jagged(*jagged_offsets(value))
    if isinstance(value, ak.Array) and value.ndim == 1:
        return np.asarray(ak.to_numpy(value))
    return value


def jagged_parts(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """Counts per event and the flat contents of a jagged (or fixed-size) array."""
    offsets, content = jagged_offsets(array)
    return np.diff(offsets), content


def jagged_offsets(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (length events + 1, starting at 0) and flat contents of a jagged array
    (:class:`Jagged` or awkward)."""
    if isinstance(array, Jagged):
        offsets, content = array.offsets, array.content
    else:
        layout = ak.to_layout(ak.from_regular(array, axis=1)).to_ListOffsetArray64(False)
        offsets = np.asarray(layout.offsets)
        content = np.asarray(ak.to_numpy(layout.content))
    offsets = offsets.astype(np.int64, copy=False)
    return offsets - offsets[0], content[offsets[0]:offsets[-1]]


def select_events(column: Any, keep: np.ndarray) -> Any:
    """The events of ``column`` (numpy or :class:`Jagged`) where ``keep`` is True."""
    if not isinstance(column, Jagged):
        return column[keep]
    offsets, content = jagged_offsets(column)
    counts = np.diff(offsets)
    kept = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(counts[keep], out=kept[1:])
    return Jagged(kept, content[np.repeat(keep, counts)])


def concatenate(columns: list[Any]) -> Any:
    """Events of several columns of one branch, one after the other."""
    if not isinstance(columns[0], Jagged):
        return np.concatenate(columns)
    offsets, contents, shift = [np.zeros(1, dtype=np.int64)], [], 0
    for column in columns:
        o, c = jagged_offsets(column)
        offsets.append(o[1:] + shift)
        contents.append(c)
        shift += len(c)
    return Jagged(np.concatenate(offsets), np.concatenate(contents))


def columns_of(arrays: ak.Array, names: list[str]) -> dict[str, Any]:
    """Pipeline columns of the branches ``names`` of an array read by uproot."""
    layout = arrays.layout
    out: dict[str, Any] = {}
    for name in names:
        field = (layout.content(name) if isinstance(layout, ak.contents.RecordArray)
                 else arrays[name].layout)
        if isinstance(field, ak.contents.NumpyArray) and field.data.ndim == 1:
            out[name] = field.data
        elif (isinstance(field, ak.contents.ListOffsetArray)
              and isinstance(field.content, ak.contents.NumpyArray)
              and field.content.data.ndim == 1):
            out[name] = Jagged(np.asarray(field.offsets.data, dtype=np.int64),
                               field.content.data)
        else:
            out[name] = as_column(ak.Array(field))
    return out


def events_of(columns: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Events [start, stop) of every column, without copying."""
    return {name: (c.events(start, stop) if isinstance(c, Jagged) else c[start:stop])
            for name, c in columns.items()}


@numba.njit(cache=True, nogil=True)
def _fill(X: np.ndarray, mask: np.ndarray, flat: np.ndarray, flat_cols: np.ndarray,
          offsets: np.ndarray, content: np.ndarray, widths: np.ndarray, jagged_cols: np.ndarray,
          events: np.ndarray, out: np.ndarray, with_mask: bool) -> None:  # pragma: no cover
    """Row ``out[i]`` of X from event ``events[i]``, one whole row at a time: flat column
    ``f`` from ``flat[f]`` into ``flat_cols[f]``, jagged column ``c`` from its numbers
    ``content[offsets[c, e]:offsets[c, e + 1]]`` (the first ``widths[c]`` of them) from
    ``jagged_cols[c]`` on; values already normalised, written where finite (and marked in
    ``mask`` when ``with_mask``). Compiled."""
    for i in range(len(events)):
        event, row = events[i], out[i]
        for f in range(len(flat_cols)):
            v = flat[f, event]
            if np.isfinite(v):
                X[row, flat_cols[f]] = v
                if with_mask:
                    mask[row, flat_cols[f]] = 1
        for c in range(len(jagged_cols)):
            start = offsets[c, event]
            n = min(offsets[c, event + 1] - start, widths[c])
            col = jagged_cols[c]
            for j in range(n):
                v = content[start + j]
                if np.isfinite(v):
                    X[row, col + j] = v
                    if with_mask:
                        mask[row, col + j] = 1


class Normaliser:
    """Min-max (default) or standard scaling with fixed statistics per branch."""

    def __init__(self, method: str, stats: dict[str, dict[str, float]]):
        self.method = method
        self.offset: dict[str, float] = {}
        self.scale: dict[str, float] = {}
        for name, s in stats.items():
            if method == "minmax":
                lo, width = s["min"], s["max"] - s["min"]
            else:
                lo, width = s["mean"], s["std"]
            self.offset[name] = lo if np.isfinite(lo) else 0.0
            self.scale[name] = 1.0 / width if np.isfinite(width) and width > 0 else 0.0

    def constants(self, name: str) -> tuple[np.float32, np.float32]:
        """(offset, scale) of ``name`` in float32: normalised = (value - offset) * scale."""
        return np.float32(self.offset[name]), np.float32(self.scale[name])

    def into(self, out: np.ndarray, name: str, values: np.ndarray) -> None:
        """Write ``values`` of branch ``name`` normalised into ``out`` (float32, same shape):
        each value as float32, minus the offset, times the scale; NaN/inf stay non-finite."""
        offset, scale = self.constants(name)
        out[...] = values
        out -= offset
        out *= scale


def to_matrix(columns: dict[str, Any], inputs: list[str], widths: dict[str, int | None],
              normalise: Normaliser, events: np.ndarray | None = None, *,
              with_mask: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Build the (events x features) input matrix and its mask (None unless ``with_mask``)
    from ``columns``.

    ``widths[name]`` is None for flat branches and the padded length for jagged
    ones. With ``events`` (indices into the columns), output row ``i`` holds event
    ``events[i]``: a selection, a permutation or both. Each branch's numbers are
    normalised in one vectorised step; padding runs in one compiled (numba) loop
    through the events in file order (sequential reads), each event's whole row
    written at once.
    """
    if events is None:
        return _filled(columns, inputs, widths, normalise, None, None, with_mask)
    events = np.asarray(events, dtype=np.int64)
    if np.all(events[1:] > events[:-1]):
        return _filled(columns, inputs, widths, normalise, events, None, with_mask)
    order = np.argsort(events, kind="stable")
    return _filled(columns, inputs, widths, normalise, events[order], order, with_mask)


def _filled(columns: dict[str, Any], inputs: list[str], widths: dict[str, int | None],
            normalise: Normaliser, rows: np.ndarray | None, out: np.ndarray | None,
            with_mask: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`to_matrix` of the events ``rows`` (increasing; None: all), event ``rows[i]``
    in output row ``out[i]`` (None: row ``i``)."""
    n_events = len(columns[inputs[0]])
    every = np.arange(n_events) if rows is None else rows
    where = np.arange(len(every)) if out is None else out
    sizes = [1 if widths[n] is None else widths[n] for n in inputs]
    first_col = dict(zip(inputs, np.cumsum([0, *sizes]), strict=False))
    flat_names = [n for n in inputs if widths[n] is None]
    jagged_names = [n for n in inputs if widths[n] is not None]
    flat = np.empty((len(flat_names), n_events), dtype=np.float32)
    for values, name in zip(flat, flat_names, strict=True):
        normalise.into(values, name, np.asarray(columns[name]))
    offsets, content = _normalised_lists(columns, jagged_names, normalise)
    X = np.zeros((len(every), sum(sizes)), dtype=np.float32)
    mask = np.zeros(X.shape if with_mask else (0, 0), dtype=np.uint8)
    _fill(X, mask, flat, np.array([first_col[n] for n in flat_names], dtype=np.int64),
          offsets, content, np.array([widths[n] for n in jagged_names], dtype=np.int64),
          np.array([first_col[n] for n in jagged_names], dtype=np.int64), every, where,
          with_mask)
    return X, mask if with_mask else None


def _normalised_lists(columns: dict[str, Any], names: list[str], normalise: Normaliser,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The jagged columns ``names`` as one float32 array of their normalised numbers, one
    after the other, and the offsets of each column's events into it (a row per column)."""
    offsets = np.empty((len(names), len(columns[names[0]]) + 1 if names else 1),
                       dtype=np.int64)
    contents, base = [], 0
    for row, name in zip(offsets, names, strict=True):
        column_offsets, numbers = jagged_offsets(columns[name])
        np.add(column_offsets, base, out=row)
        contents.append(numbers)
        base += len(numbers)
    content = np.empty(base, dtype=np.float32)
    for row, name, numbers in zip(offsets, names, contents, strict=True):
        normalise.into(content[row[0]:row[0] + len(numbers)], name, numbers)
    return offsets, content


def feature_names(inputs: list[str], widths: dict[str, int | None]) -> list[str]:
    """Column names: 'x' for flat branches, 'x[0]'.. 'x[w-1]' for jagged ones."""
    names: list[str] = []
    for name in inputs:
        width = widths[name]
        names += [name] if width is None else [f"{name}[{i}]" for i in range(width)]
    return names
