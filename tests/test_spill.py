"""Prepared chunks spilled to local disk after a first pass (``spill_mb``, ``spill_dir``): the
later passes read them back instead of the ROOT files, with the same arrays; a spill past its
limit, a pass left early and a closed dataset leave nothing on disk."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
import uproot

from mlaas4hep import spill
from mlaas4hep.config import load_params, load_preproc
from mlaas4hep.dataset import Chunk, Dataset
from mlaas4hep.errors import UserError
from mlaas4hep.passes import PassReader
from mlaas4hep.spill import PassKeeper
from mlaas4hep.split import TRAIN, VALIDATION


@pytest.fixture
def blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per ROOT basket decompressed."""
    seen: list[int] = []
    monkeypatch.setattr(uproot.compression.decompress, "hook_before_block",
                        lambda **_: seen.append(1))
    return seen


def open_samples(samples: Path, spill_dir: Path, **params: object) -> Dataset:
    pairs = [(str(samples / "signal.root"), 1), (str(samples / "background.root"), 0)]
    options = {"chunk_size": 700, "cache_mb": 0, "threads": 1, "spill_dir": str(spill_dir)}
    return Dataset.open(pairs, load_params(None, **(options | params)), load_preproc(None))


def assert_same_chunks(chunks: list[Chunk], reference: list[Chunk]) -> None:
    assert len(chunks) == len(reference) > 1
    for chunk, expected in zip(chunks, reference, strict=True):
        for name in ("X", "mask", "y", "split", "label"):
            mine, theirs = getattr(chunk, name), getattr(expected, name)
            if theirs is None:
                assert mine is None, name
                continue
            assert (mine.dtype, mine.shape) == (theirs.dtype, theirs.shape), name
            np.testing.assert_array_equal(mine, theirs, err_msg=name)
        assert chunk.read == expected.read


def test_later_passes_read_the_spilled_chunks_not_the_files(
        samples: Path, tmp_path: Path, blocks: list[int]) -> None:
    with open_samples(samples, tmp_path) as data:
        specs = data.specs()
        assert data.fits_cache(specs)
        blocks.clear()
        first = list(data.chunks(specs))
        assert len(blocks) > 0
        [folder] = tmp_path.iterdir()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert len(list(folder.iterdir())) == len(first)
        blocks.clear()
        assert_same_chunks(list(data.chunks(specs)), first)
        assert_same_chunks(list(data.chunks(specs, prefetch=True)), first)
        validation = list(data.chunks(specs, split=VALIDATION))  # from the whole chunks
        assert_same_chunks(validation, first)
        with PassReader(data, specs, [(TRAIN, VALIDATION), VALIDATION],
                        with_mask=False) as reader:
            assert reader.cached
            assert_same_chunks(list(reader.next((TRAIN, VALIDATION))), first)
        assert blocks == []
    assert list(tmp_path.iterdir()) == []


def test_a_spill_past_spill_mb_is_dropped_and_the_files_are_read_again(
        samples: Path, tmp_path: Path, blocks: list[int]) -> None:
    with open_samples(samples, tmp_path, spill_mb=1) as data:  # the chunks take more
        specs = data.specs()
        assert not data.fits_cache(specs)
        first = list(data.chunks(specs))
        assert list(tmp_path.iterdir()) == []
        blocks.clear()
        assert_same_chunks(list(data.chunks(specs)), first)
        assert len(blocks) > 0


def test_a_spill_that_outgrows_its_limit_is_dropped(samples: Path, tmp_path: Path) -> None:
    with open_samples(samples, tmp_path) as data:
        chunks = list(data.chunks(data.specs(), keep=False))
    keeper = PassKeeper(0, chunks[0].nbytes + chunks[1].nbytes, str(tmp_path))
    for chunk in chunks[:2]:
        keeper.add(chunk)
    [folder] = tmp_path.iterdir()
    assert len(list(folder.iterdir())) == 2
    keeper.add(chunks[2])
    assert keeper.kept() is None
    assert list(tmp_path.iterdir()) == []


def test_spilled_chunks_come_back_alike_even_empty_or_without_a_mask(tmp_path: Path) -> None:
    """Each chunk comes back with its dtypes, shapes and values, mapped copy-on-write: a
    change to one handed out reaches neither the file nor the next pass."""
    rng = np.random.default_rng(3)
    chunks = [Chunk(rng.random((5, 3), np.float32), (rng.random((5, 3)) > .5).astype(np.uint8),
                    rng.integers(0, 2, 5), np.array([0, 1, 2, 0, 0], np.uint8),
                    np.arange(5), read=11),
              Chunk(np.empty((0, 3), np.float32), None, np.empty(0, np.float32),
                    np.empty(0, np.uint8), np.empty(0, np.int64), read=4),
              Chunk(rng.random((2, 3), np.float32), None, rng.random(2).astype(np.float32),
                    np.zeros(2, np.uint8), np.ones(2, np.int64), read=2)]
    spilled = spill.SpilledChunks(str(tmp_path), 2**20)
    assert all(spilled.add(chunk) for chunk in chunks)
    assert spilled.nbytes == sum(chunk.nbytes for chunk in chunks)
    first = list(spilled)
    assert_same_chunks(first, chunks)
    first[0].X[:] = -1
    np.testing.assert_array_equal(next(iter(spilled)).X, chunks[0].X)
    spilled.remove()
    assert list(tmp_path.iterdir()) == []


def test_a_pass_left_early_or_not_kept_leaves_nothing(samples: Path, tmp_path: Path,
                                                      blocks: list[int]) -> None:
    with open_samples(samples, tmp_path) as data:
        specs = data.specs()
        left = data.chunks(specs)
        next(left)
        next(left)
        assert len(list(tmp_path.iterdir())) == 1  # being written
        left.close()
        assert list(tmp_path.iterdir()) == []
        assert len(list(data.chunks(specs, keep=False))) > 1
        assert list(tmp_path.iterdir()) == []
        blocks.clear()
        list(data.chunks(specs))
        assert len(blocks) > 0  # nothing was kept: read again


def test_the_test_pass_reads_what_was_kept_and_keeps_nothing(samples: Path, tmp_path: Path,
                                                            blocks: list[int]) -> None:
    """The run's last pass (predictions on the test split) writes no spill of its own, and
    uses the whole chunks an earlier pass kept."""
    from torch import nn

    from mlaas4hep.backends import adapter_for
    from mlaas4hep.train import predict_split

    with open_samples(samples, tmp_path) as data:
        specs = data.specs()
        model = adapter_for(nn.Linear(specs.n_features, 1), where="test", device="cpu")
        y, scores = predict_split(model, data, specs)
        assert len(y) > 0
        assert list(tmp_path.iterdir()) == []
        assert data._kept == {}
        list(data.chunks(specs))  # a pass that keeps the whole chunks (spilled)
        blocks.clear()
        y_kept, scores_kept = predict_split(model, data, specs)
        assert blocks == []
        np.testing.assert_array_equal(y_kept, y)
        np.testing.assert_array_equal(scores_kept, scores)


def test_no_spill_where_it_would_leave_less_than_the_headroom_free(
        samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill, "HEADROOM", spill.shutil.disk_usage(tmp_path).free)
    with open_samples(samples, tmp_path) as data:
        specs = data.specs()
        assert not data.fits_cache(specs)
        list(data.chunks(specs))
        assert list(tmp_path.iterdir()) == []
        assert data._kept == {}


def test_spill_mb_holds_every_pass_kept_on_disk(samples: Path, tmp_path: Path) -> None:
    assert spill.spill_room(str(tmp_path), 2, used=2**20) == 2**20
    assert spill.spill_room(str(tmp_path), 1, used=2**20) == 0
    assert spill.spill_room(str(tmp_path), 0) == 0
    with open_samples(samples, tmp_path, spill_mb=64) as data:
        specs = data.specs()
        list(data.chunks(specs, split=TRAIN))
        kept = data._kept[TRAIN]
        assert isinstance(kept, spill.SpilledChunks) and kept.nbytes > 0
        assert data._spill_room() == 64 * 2**20 - kept.nbytes


def test_memory_first_then_disk(samples: Path, tmp_path: Path) -> None:
    """Within ``cache_mb`` the chunks stay in memory and nothing is written."""
    with open_samples(samples, tmp_path, cache_mb=64) as data:
        specs = data.specs()
        list(data.chunks(specs))
        assert list(tmp_path.iterdir()) == []
        assert isinstance(data._kept[None], list)


@pytest.mark.parametrize(("params", "message"), [
    ({"spill_mb": -1}, "key 'spill_mb' must be 0 or more, got -1"),
    ({"spill_dir": "/nonexistent/scratch"},
     "key 'spill_dir': /nonexistent/scratch is not an existing folder"),
])
def test_bad_spill_params_are_named(params: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_params(None, **params)
