"""Prepared chunks kept between passes: in memory (``cache_mb``), else on local disk
(``spill_mb`` in ``spill_dir``), so later epochs and the test pass do not decompress and
prepare the ROOT files again."""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .chunk import Chunk

log = logging.getLogger("mlaas4hep")

HEADROOM = 2**30
"""Free space a spill always leaves on its disk."""


def spill_room(spill_dir: str, spill_mb: int) -> int:
    """Bytes a spill may take in ``spill_dir`` ('' = the system temporary directory): at most
    ``spill_mb`` MiB, leaving :data:`HEADROOM` free; 0 when spilling is off."""
    if spill_mb <= 0:
        return 0
    free = shutil.disk_usage(spill_dir or tempfile.gettempdir()).free
    return max(0, min(spill_mb * 2**20, free - HEADROOM))


class SpilledChunks:
    """Prepared chunks written, uncompressed, to a private temporary directory (mode 0700) as
    a pass yields them, and read back one at a time (memory bounded by the chunk size).

    The directory goes with :meth:`remove`, when this object is dropped, or at exit.
    """

    def __init__(self, spill_dir: str, limit: int):
        self.dir = Path(tempfile.mkdtemp(prefix="mlaas4hep-spill-", dir=spill_dir or None))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.dir, ignore_errors=True)
        self.limit = limit
        self.nbytes = 0
        self._chunks: list[tuple[int, bool]] = []
        """(entries read, has a mask) of each chunk written, in order."""

    def add(self, chunk: Chunk) -> bool:
        """Write one chunk; False (and nothing kept) when it would pass the limit, leave less
        than :data:`HEADROOM` free, or the write fails."""
        size = chunk.nbytes
        if self.nbytes + size > self.limit:
            log.info("prepared chunks pass the spill limit (spill_mb, %.0f MB): later passes "
                     "read the files again", self.limit / 2**20)
            return False
        path = self.dir / f"{len(self._chunks)}.npy"
        try:
            if shutil.disk_usage(self.dir).free - size < HEADROOM:
                raise OSError("less than 1 GiB would be left free")
            with open(path, "wb") as out:
                for array in (chunk.X, chunk.y, chunk.split, chunk.label):
                    np.save(out, array, allow_pickle=False)
                if chunk.mask is not None:
                    np.save(out, chunk.mask, allow_pickle=False)
        except OSError as exc:
            log.warning("could not keep prepared chunks in %s (%s): later passes read the "
                        "files again", self.dir, exc.strerror or exc)
            return False
        self._chunks.append((chunk.read, chunk.mask is not None))
        self.nbytes += size
        return True

    def __len__(self) -> int:
        return len(self._chunks)

    def __iter__(self) -> Iterator[Chunk]:
        for number, (read, has_mask) in enumerate(self._chunks):
            with open(self.dir / f"{number}.npy", "rb") as stored:
                X, y, split, label = (np.load(stored) for _ in range(4))
                mask = np.load(stored) if has_mask else None
            yield Chunk(X, mask, y, split, label, read)

    def remove(self) -> None:
        """Delete the directory and what it holds."""
        self._cleanup()


class PassKeeper:
    """Keeps the prepared chunks of one pass for the later ones: in memory while they fit in
    ``memory`` bytes; past that, all of them on disk within ``spill`` bytes
    (:class:`SpilledChunks`); past that too, none."""

    def __init__(self, memory: int, spill: int, spill_dir: str):
        self.memory = memory
        self.spill = spill
        self.spill_dir = spill_dir
        self.held: list[Chunk] | None = [] if memory > 0 or spill > 0 else None
        self.spilled: SpilledChunks | None = None
        self.nbytes = 0

    def add(self, chunk: Chunk) -> None:
        """Keep one more chunk of the pass (in order)."""
        if self.spilled is not None:
            self._write([chunk])
            return
        if self.held is None:
            return
        self.held.append(chunk)
        self.nbytes += chunk.nbytes
        if self.nbytes > self.memory:
            held, self.held = self.held, None
            if self.spill > 0:
                self.spilled = SpilledChunks(self.spill_dir, self.spill)
                self._write(held)

    def _write(self, chunks: list[Chunk]) -> None:
        assert self.spilled is not None
        for chunk in chunks:
            if not self.spilled.add(chunk):
                self.spilled.remove()
                self.spilled = None
                return

    def kept(self) -> list[Chunk] | SpilledChunks | None:
        """What the whole pass left: the chunks in memory, on disk, or None."""
        return self.held if self.held is not None else self.spilled

    def discard(self) -> None:
        """The pass ended early: keep nothing."""
        if self.spilled is not None:
            self.spilled.remove()
        self.held = self.spilled = None
