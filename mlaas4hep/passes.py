"""The passes over the chunks a streamed training makes, read one after another."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

from .dataset import Chunk, Dataset, Splits
from .prefetch import Prefetched, prefetched
from .progress import progress
from .specs import Specs
from .split import SPLIT_NAMES

PREPARED_AHEAD = 4
"""Prepared chunks waiting for the trainer (besides those in preparation): how far the
reading of the next pass starts before the trainer reaches its end."""


class PassReader:
    """Passes over the chunks in a planned order (``plan``: the split(s) each pass prepares).

    When the chunks fit within ``cache_mb``, each pass is :meth:`Dataset.chunks` of every
    event (the first pass fills the cache, which serves the later ones and the test pass).
    Otherwise one background thread reads the planned passes one after another, a few
    chunks ahead of the trainer: it starts at once (the first chunks are read while the
    model is set up) and starts reading a pass as soon as it has read the one before, so a
    pass does not begin by waiting for the files' first basket clusters (for a remote file,
    the round trips too). Asking for a pass other than the next planned one
    (training stopped early) drops what was read ahead and reads the pass asked for.
    """

    def __init__(self, data: Dataset, specs: Specs, plan: Sequence[Splits], *,
                 with_mask: bool):
        self.data = data
        self.specs = specs
        self.with_mask = with_mask
        self.cached = data.fits_cache(specs)
        self._planned: deque[Splits] = deque(plan)
        self._chunks: Prefetched[Chunk | None] | None = None
        self._unfinished = False
        """True while a pass handed out has not been read to its end."""
        if not self.cached:
            self._read_planned()

    def __enter__(self) -> PassReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading ahead."""
        if self._chunks is not None:
            self._chunks.close()
            self._chunks = None

    def next(self, split: Splits) -> Iterator[Chunk]:
        """The chunks of the next pass, holding the events of ``split`` (read ahead when it
        is the next planned pass, else once the first one is asked for)."""
        desc = "training" if split is None or not isinstance(split, int) else SPLIT_NAMES[split]
        if self.cached:
            yield from self.data.chunks(self.specs, desc=desc, prefetch=True,
                                        split=split if isinstance(split, int) else None)
            return
        on_plan = bool(self._planned) and self._planned[0] == split
        if self._unfinished or not on_plan:  # drop what was read ahead
            self.close()
        if not on_plan:  # this pass only
            self._planned = deque([split])
        if self._chunks is None:
            self._read_planned()
        self._planned.popleft()
        self._unfinished = True
        yield from progress(self._one_pass(), total=self.data.plan.total, desc=desc,
                            enabled=self.data.params.verbose == 0, weight=lambda c: c.read)

    def _read_planned(self) -> None:
        """Start reading the planned passes in the background."""
        self._chunks = prefetched(
            self.data.prepared_passes(self.specs, list(self._planned), with_mask=self.with_mask),
            depth=PREPARED_AHEAD, name="mlaas4hep-passes")

    def _one_pass(self) -> Iterator[Chunk]:
        assert self._chunks is not None
        for chunk in self._chunks:
            if chunk is None:
                self._unfinished = False
                return
            yield chunk
