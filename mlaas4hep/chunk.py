"""A chunk of training-ready events: what every pass over the data hands out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Chunk:
    """Training-ready events of one chunk."""

    X: np.ndarray
    """float32 (events x features), normalised, 0 where masked."""
    mask: np.ndarray | None
    """uint8, same shape as X: 1 = real value, 0 = padding or non-finite (None when
    prepared without it)."""
    y: np.ndarray
    """What is learned: the integer label per event, or the target value (regression)."""
    split: np.ndarray
    """0 train, 1 validation, 2 test."""
    label: np.ndarray
    """The label of the event's file (labels.txt)."""
    read: int = 0
    """Entries read from the files for this chunk (before cuts)."""

    def part(self, code: int, *, with_mask: bool = True, shuffle: Sequence[int] | None = None,
             ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(X, mask, y) of one split (mask None unless ``with_mask``), in a random order seeded
        by ``shuffle`` and the split's size when given; each array is copied once."""
        rows = np.flatnonzero(self.split == code)
        if shuffle is not None:
            rows = np.random.default_rng([*shuffle, len(rows)]).permutation(rows)
        if not with_mask:
            return self.X[rows], None, self.y[rows]
        assert self.mask is not None, "chunk prepared without its mask"
        return self.X[rows], self.mask[rows], self.y[rows]

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        arrays = (self.X, self.mask, self.y, self.split, self.label)
        return sum(a.nbytes for a in arrays if a is not None)

    @staticmethod
    def event_bytes(n_features: int, *, with_mask: bool = True) -> int:
        """Memory per event of a prepared chunk, before it is prepared: X (float32), the mask
        (uint8), y (int64 labels; float32 targets take less), split (uint8), label (int64)."""
        return (4 + with_mask) * n_features + 8 + 1 + 8

    def __len__(self) -> int:
        return len(self.y)
