"""Prepared chunks kept between passes: in memory (``cache_mb``), else on local disk
(``spill_mb`` in ``spill_dir``), so later epochs and the test pass do not decompress and
prepare the ROOT files again."""

from __future__ import annotations

import logging
import mmap
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from .chunk import Chunk

log = logging.getLogger("mlaas4hep")

HEADROOM = 2**30
"""Free space a spill always leaves on its disk."""


def spill_room(spill_dir: str, spill_mb: int, used: int = 0) -> int:
    """Bytes a spill may take in ``spill_dir`` ('' = the system temporary directory): what is
    left of ``spill_mb`` MiB once the ``used`` bytes of earlier spills are counted, leaving
    :data:`HEADROOM` free; 0 when spilling is off."""
    if spill_mb <= 0:
        return 0
    free = shutil.disk_usage(spill_dir or tempfile.gettempdir()).free
    return max(0, min(spill_mb * 2**20 - used, free - HEADROOM))


ARRAYS = ("X", "mask", "y", "split", "label")
"""The arrays of a :class:`Chunk`, in the order a spill file holds them."""

ALIGN = 64
"""Each array starts at a multiple of this many bytes in its file."""


class _Stored(NamedTuple):
    """Where one array lies in a spill file."""

    offset: int
    dtype: np.dtype
    shape: tuple[int, ...]

    def array(self, mapped: mmap.mmap | bytes) -> np.ndarray:
        """The array, over the mapped file's memory."""
        count = int(np.prod(self.shape))
        if count == 0:
            return np.empty(self.shape, self.dtype)
        return np.frombuffer(mapped, self.dtype, count, self.offset).reshape(self.shape)


def _write(out: BinaryIO, array: np.ndarray | None) -> _Stored | None:
    """Append ``array``'s bytes (C order) to ``out`` at the next multiple of :data:`ALIGN`."""
    if array is None:
        return None
    offset = -(-out.tell() // ALIGN) * ALIGN
    out.write(bytes(offset - out.tell()))
    out.write(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)
    return _Stored(offset, array.dtype, array.shape)


def _mapped(path: Path) -> mmap.mmap | bytes:
    """The file mapped copy-on-write, its pages asked to be read ahead (b"" when empty: an
    empty file cannot be mapped)."""
    with open(path, "rb") as file:
        if not os.fstat(file.fileno()).st_size:
            return b""
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
    mapped.madvise(mmap.MADV_WILLNEED)
    return mapped


class SpilledChunks:
    """Prepared chunks written, uncompressed, to a private temporary directory (mode 0700) as
    a pass yields them, one file each, and read back one at a time (memory bounded by the
    chunk size).

    The directory goes with :meth:`remove`, when this object is dropped, or at exit.
    """

    def __init__(self, spill_dir: str, limit: int):
        self.dir = Path(tempfile.mkdtemp(prefix="mlaas4hep-spill-", dir=spill_dir or None))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.dir, ignore_errors=True)
        self.limit = limit
        self.nbytes = 0
        self._chunks: list[tuple[int, list[_Stored | None]]] = []
        """(entries read, where each of :data:`ARRAYS` lies in the file) of each chunk
        written, in order."""

    def add(self, chunk: Chunk) -> bool:
        """Write one chunk; False (and nothing kept) when it would pass the limit, leave less
        than :data:`HEADROOM` free, or the write fails."""
        size = chunk.nbytes
        if self.nbytes + size > self.limit:
            log.info("prepared chunks pass the spill limit (spill_mb, %.0f MB): later passes "
                     "read the files again", self.limit / 2**20)
            return False
        try:
            if shutil.disk_usage(self.dir).free - size < HEADROOM:
                raise OSError("less than 1 GiB would be left free")
            with open(self._path(len(self._chunks)), "wb") as out:
                stored = [_write(out, getattr(chunk, name)) for name in ARRAYS]
        except OSError as exc:
            log.warning("could not keep prepared chunks in %s (%s): later passes read the "
                        "files again", self.dir, exc.strerror or exc)
            return False
        self._chunks.append((chunk.read, stored))
        self.nbytes += size
        return True

    def __len__(self) -> int:
        return len(self._chunks)

    def __iter__(self) -> Iterator[Chunk]:
        """The chunks, each mapped from its file (copy on write) with the kernel asked to
        read it ahead: handing out a chunk costs no copy, and its pages are read while the
        one before is used."""
        for number, (read, stored) in enumerate(self._chunks):
            mapped = _mapped(self._path(number))
            arrays = {name: None if where is None else where.array(mapped)
                      for name, where in zip(ARRAYS, stored, strict=True)}
            yield Chunk(**arrays, read=read)

    def _path(self, number: int) -> Path:
        return self.dir / f"{number}.chunk"

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
