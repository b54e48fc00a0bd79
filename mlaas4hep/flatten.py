"""Jagged branches to fixed-width columns with a mask, and normalisation.

Mask convention (the only place it is defined): ``mask == 1`` marks a real
value, ``mask == 0`` padding or a non-finite value (NaN, inf). Padded and
masked positions hold 0 after normalisation.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np


def jagged_parts(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """Counts per event and the flat contents of a jagged (or fixed-size) array."""
    array = ak.from_regular(array, axis=1) if isinstance(array, ak.Array) else array
    counts = np.asarray(ak.num(array, axis=1), dtype=np.int64)
    content = np.asarray(ak.to_numpy(ak.flatten(array, axis=1)))
    return counts, content


def pad(counts: np.ndarray, content: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Place each event's first ``width`` values in a row; return (values, mask).

    ``content`` is already normalised; values beyond ``width`` are dropped.
    Vectorised on the offsets: no per-event Python loop.
    """
    n = len(counts)
    values = np.zeros((n, width), dtype=np.float32)
    mask = np.zeros((n, width), dtype=np.uint8)
    if width == 0 or len(content) == 0:
        return values, mask
    starts = np.cumsum(counts) - counts
    local = np.arange(len(content), dtype=np.int64) - np.repeat(starts, counts)
    rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    keep = local < width
    rows, local, kept = rows[keep], local[keep], content[keep]
    finite = np.isfinite(kept)
    values[rows, local] = np.where(finite, kept, 0)
    mask[rows, local] = finite
    return values, mask


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
        out = values.astype(np.float64) - self.offset[name]
        out *= self.scale[name]
        return out.astype(np.float32)


def to_matrix(columns: dict[str, Any], inputs: list[str], widths: dict[str, int | None],
              normalise: Normaliser) -> tuple[np.ndarray, np.ndarray]:
    """Build the (events x features) input matrix and its mask from ``columns``.

    ``widths[name]`` is None for flat branches and the padded length for jagged ones.
    """
    blocks, masks = [], []
    for name in inputs:
        column = columns[name]
        if widths[name] is None:
            raw = np.asarray(ak.to_numpy(column) if isinstance(column, ak.Array) else column)
            scaled = normalise(name, raw)
            finite = np.isfinite(scaled)
            blocks.append(np.where(finite, scaled, 0).astype(np.float32)[:, None])
            masks.append(finite.astype(np.uint8)[:, None])
        else:
            counts, content = jagged_parts(column)
            values, mask = pad(counts, normalise(name, content), widths[name])
            blocks.append(values)
            masks.append(mask)
    return np.concatenate(blocks, axis=1), np.concatenate(masks, axis=1)


def feature_names(inputs: list[str], widths: dict[str, int | None]) -> list[str]:
    """Column names: 'x' for flat branches, 'x[0]'.. 'x[w-1]' for jagged ones."""
    names: list[str] = []
    for name in inputs:
        width = widths[name]
        names += [name] if width is None else [f"{name}[{i}]" for i in range(width)]
    return names
