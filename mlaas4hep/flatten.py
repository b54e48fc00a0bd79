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


def jagged_parts(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """Counts per event and the flat contents of a jagged (or fixed-size) array."""
    offsets, content = jagged_offsets(array)
    return np.diff(offsets), content


def _lists_of_numbers(array: Any) -> Any:
    """The ListOffsetArray layout of ``array`` when it is one over plain numbers, else None
    (the common case, read straight from the numpy buffers: no awkward dispatch)."""
    layout = array.layout if isinstance(array, ak.Array) else array
    if (isinstance(layout, ak.contents.ListOffsetArray)
            and isinstance(layout.content, ak.contents.NumpyArray)
            and layout.content.data.ndim == 1 and not layout.parameters):
        return layout
    return None


def jagged_offsets(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (length events + 1, starting at 0) and flat contents of a jagged array."""
    layout = _lists_of_numbers(array)
    if layout is None:
        layout = ak.to_layout(ak.from_regular(array, axis=1)).to_ListOffsetArray64(False)
        offsets = np.asarray(layout.offsets)
        content = np.asarray(ak.to_numpy(layout.content))
    else:
        offsets, content = np.asarray(layout.offsets.data), layout.content.data
    offsets = offsets.astype(np.int64, copy=False)
    return offsets - offsets[0], content[offsets[0]:offsets[-1]]


def jagged_from(offsets: np.ndarray, content: np.ndarray) -> ak.Array:
    """A jagged array of numbers from offsets (starting at 0) and contents."""
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets),
                                                ak.contents.NumpyArray(content)))


def select_events(column: Any, keep: np.ndarray) -> Any:
    """The events of ``column`` (flat or jagged) where ``keep`` is True."""
    if isinstance(column, np.ndarray) or _lists_of_numbers(column) is None:
        return column[keep]
    offsets, content = jagged_offsets(column)
    counts = np.diff(offsets)[keep]
    kept = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=kept[1:])
    return jagged_from(kept, content[np.repeat(keep, np.diff(offsets))])


@numba.njit(cache=True, nogil=True)
def _fill(X: np.ndarray, mask: np.ndarray, offsets: np.ndarray, values: np.ndarray,
          dest: np.ndarray, col: int, width: int) -> None:  # pragma: no cover (compiled)
    """Copy each event's first ``width`` finite values to row ``dest[i]`` from ``col``."""
    for i in range(len(offsets) - 1):
        start = offsets[i]
        n = min(offsets[i + 1] - start, width)
        row = dest[i]
        for j in range(n):
            v = values[start + j]
            if np.isfinite(v):
                X[row, col + j] = v
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

    def __call__(self, name: str, values: np.ndarray) -> np.ndarray:
        """Normalised float32 copy of ``values``; NaN/inf stay non-finite."""
        out = values.astype(np.float32)
        out -= np.float32(self.offset[name])
        out *= np.float32(self.scale[name])
        return out


def to_matrix(columns: dict[str, Any], inputs: list[str], widths: dict[str, int | None],
              normalise: Normaliser, order: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Build the (events x features) input matrix and its mask from ``columns``.

    ``widths[name]`` is None for flat branches and the padded length for jagged
    ones. With ``order`` (a permutation), output row ``i`` holds event
    ``order[i]``: shuffling costs nothing extra. Padding runs in a compiled
    (numba) loop over the offsets.
    """
    n = len(columns[inputs[0]])
    n_features = sum(1 if w is None else w for w in (widths[name] for name in inputs))
    X = np.zeros((n, n_features), dtype=np.float32)
    mask = np.zeros((n, n_features), dtype=np.uint8)
    dest = np.arange(n) if order is None else np.argsort(order)
    col = 0
    for name in inputs:
        column, width = columns[name], widths[name]
        if width is None:
            raw = np.asarray(ak.to_numpy(column) if isinstance(column, ak.Array) else column)
            values = normalise(name, raw)
            finite = np.isfinite(values)
            X[dest, col] = np.where(finite, values, 0)
            mask[dest, col] = finite
            col += 1
            continue
        offsets, content = jagged_offsets(column)
        _fill(X, mask, offsets, normalise(name, content), dest, col, width)
        col += width
    return X, mask


def feature_names(inputs: list[str], widths: dict[str, int | None]) -> list[str]:
    """Column names: 'x' for flat branches, 'x[0]'.. 'x[w-1]' for jagged ones."""
    names: list[str] = []
    for name in inputs:
        width = widths[name]
        names += [name] if width is None else [f"{name}[{i}]" for i in range(width)]
    return names
