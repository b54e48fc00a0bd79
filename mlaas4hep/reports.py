"""Summaries accumulated over chunks: input-variable histograms per label."""

from __future__ import annotations

from typing import Any

import numpy as np

from .dataset import Chunk
from .flatten import Normaliser
from .specs import Specs

BINS = 50


class InputHistograms:
    """Histograms of every input (real values only, mask == 1), per label."""

    def __init__(self, specs: Specs, method: str):
        self.normaliser = Normaliser(method, specs.stats())
        lo, hi = (0.0, 1.0) if method == "minmax" else (-4.0, 4.0)
        self.edges = np.linspace(lo, hi, BINS + 1)
        self.columns: dict[str, slice] = {}
        start = 0
        for name, width in specs.widths.items():
            step = 1 if width is None else width
            self.columns[name] = slice(start, start + step)
            start += step
        self.counts: dict[str, dict[int, np.ndarray]] = {n: {} for n in self.columns}

    def add(self, chunk: Chunk) -> None:
        """Accumulate one chunk (all splits)."""
        for name, cols in self.columns.items():
            values, real = chunk.X[:, cols], chunk.mask[:, cols] == 1
            for label in np.unique(chunk.label):
                rows = chunk.label == label
                counts, _ = np.histogram(values[rows][real[rows]], bins=self.edges)
                per_label = self.counts[name]
                per_label[int(label)] = per_label.get(int(label), 0) + counts

    def result(self) -> dict[str, dict[str, Any]]:
        """Per input: normalised and raw bin edges and counts per label."""
        out = {}
        for name, counts in self.counts.items():
            scale, offset = self.normaliser.scale[name], self.normaliser.offset[name]
            raw = self.edges / scale + offset if scale > 0 else self.edges + offset
            out[name] = {"edges": self.edges, "raw_edges": raw, "counts": counts}
        return out
