"""Passes read one after another for streamed training (:class:`mlaas4hep.passes.PassReader`):
the same chunks as separate reads, the next pass read before the trainer reaches the end of
the current one, passes off the plan, and the cache."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mlaas4hep.config import load_params, load_preproc
from mlaas4hep.dataset import Chunk, Dataset
from mlaas4hep.passes import PassReader
from mlaas4hep.split import TRAIN, VALIDATION
from mlaas4hep.stream import EventStream, RawChunk

BOTH = (TRAIN, VALIDATION)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per pass over the files started (``EventStream.reads`` called)."""
    started: list[int] = []
    original = EventStream.reads

    def counted(stream: EventStream) -> Iterator[RawChunk]:
        started.append(1)
        return original(stream)

    monkeypatch.setattr(EventStream, "reads", counted)
    return started


def open_samples(samples: Path, **params: object) -> Dataset:
    pairs = [(str(samples / "signal.root"), 1), (str(samples / "background.root"), 0)]
    return Dataset.open(pairs, load_params(None, chunk_size=700, **params), load_preproc(None))


def assert_same_events(chunks: list[Chunk], reference: list[Chunk], split: int) -> None:
    """The events of ``split`` of each chunk, in the order training takes them."""
    assert len(chunks) == len(reference) > 1
    for chunk, expected in zip(chunks, reference, strict=True):
        X, _, y = chunk.part(split, with_mask=False, shuffle=[1, 2])
        X_ref, _, y_ref = expected.part(split, with_mask=False, shuffle=[1, 2])
        np.testing.assert_array_equal(X, X_ref)
        np.testing.assert_array_equal(y, y_ref)


@pytest.mark.parametrize("threads", [1, 2])
def test_planned_passes_give_the_chunks_of_separate_reads_and_read_ahead(
        samples: Path, reads: list[int], threads: int) -> None:
    with open_samples(samples, cache_mb=0, spill_mb=0, threads=threads) as data:
        specs = data.specs()
        whole = list(data.chunks(specs))
        reads.clear()
        with PassReader(data, specs, [BOTH, BOTH, VALIDATION], with_mask=False) as reader:
            assert not reader.cached
            first = reader.next(BOTH)
            chunks = [next(first) for _ in range(data.plan.n_chunks)]
            # the trainer holds the last chunk of the first pass: the second is being read
            deadline = time.monotonic() + 30
            while len(reads) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(reads) == 2
            assert next(first, None) is None
            for split in BOTH:
                assert_same_events(chunks, whole, split)
            assert all(c.mask is None and not (c.split == 2).any() for c in chunks)
            assert_same_events(list(reader.next(BOTH)), whole, TRAIN)
            validation = list(reader.next(VALIDATION))
            assert all((c.split == VALIDATION).all() for c in validation)
            assert_same_events(validation, whole, VALIDATION)
        assert len(reads) == 3


def test_a_pass_off_the_plan_drops_what_was_read_ahead(samples: Path, reads: list[int]
                                                       ) -> None:
    """Training stopped early: the validation pass comes where another training pass was
    planned; a pass left half-way is not carried into the next one."""
    with open_samples(samples, cache_mb=0, spill_mb=0) as data:
        specs = data.specs()
        whole = list(data.chunks(specs))
        with PassReader(data, specs, [BOTH, BOTH, BOTH, VALIDATION], with_mask=True) as reader:
            left = reader.next(BOTH)
            next(left)  # the trainer leaves this pass after one chunk
            assert_same_events(list(reader.next(BOTH)), whole, TRAIN)
            validation = list(reader.next(VALIDATION))
            assert_same_events(validation, whole, VALIDATION)
            assert all(c.mask is not None for c in validation)
            assert_same_events(list(reader.next(BOTH)), whole, VALIDATION)  # on demand


def test_passes_come_from_the_cache_when_every_chunk_fits(samples: Path, reads: list[int]
                                                          ) -> None:
    with open_samples(samples) as data:  # the default cache_mb holds these samples
        specs = data.specs()
        reads.clear()
        with PassReader(data, specs, [BOTH, BOTH, VALIDATION], with_mask=False) as reader:
            assert reader.cached
            passes = [list(reader.next(BOTH)), list(reader.next(BOTH)),
                      list(reader.next(VALIDATION))]
        assert len(reads) == 1
        assert_same_events(passes[1], passes[0], TRAIN)
        assert_same_events(passes[2], passes[0], VALIDATION)


def test_the_cache_estimate_is_the_memory_the_prepared_chunks_hold(samples: Path) -> None:
    """:meth:`Dataset.fits_cache` decides before reading, from ``Chunk.event_bytes``."""
    with open_samples(samples, cache_mb=0) as data:
        specs = data.specs()
        for with_mask in (True, False):
            chunks = [c for c in data.prepared_passes(specs, [None], with_mask=with_mask) if c]
            assert sum(len(c) for c in chunks) == specs.events
            assert (sum(c.nbytes for c in chunks)
                    == specs.events * Chunk.event_bytes(specs.n_features, with_mask=with_mask))
