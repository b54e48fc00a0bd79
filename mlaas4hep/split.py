"""Deterministic train/validation/test assignment of events.

Each event gets a uniform number from a hash of (seed, file index, entry
number), so the split does not depend on chunking, on the order files are
read, or on which process reads them. The same fractions apply to every
file, hence to every label: the split is stratified by label.
"""

from __future__ import annotations

import numpy as np

TRAIN, VALIDATION, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "validation", "test")

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniform_per_entry(seed: int, file_index: int, start: int, stop: int) -> np.ndarray:
    """Uniform [0, 1) numbers for entries [start, stop) of one file."""
    key = _splitmix64(np.array([(seed & 0xFFFFFFFF) << 20 | (file_index & 0xFFFFF)],
                               dtype=np.uint64))
    with np.errstate(over="ignore"):
        h = _splitmix64(np.arange(start, stop, dtype=np.uint64) ^ key)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def split_codes(seed: int, file_index: int, start: int, stop: int,
                validation_fraction: float, test_fraction: float) -> np.ndarray:
    """0 (train), 1 (validation) or 2 (test) for entries [start, stop)."""
    u = uniform_per_entry(seed, file_index, start, stop)
    train_end = 1.0 - validation_fraction - test_fraction
    return ((u >= train_end).astype(np.uint8)
            + (u >= train_end + validation_fraction).astype(np.uint8))
