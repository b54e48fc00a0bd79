"""The ttH(bb)-shaped sample generator writes real, well-formed ROOT files."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from mlaas4hep import samples

N_EVENTS = 2000
JAGGED_BRANCHES = [name for group in samples.JAGGED_GROUPS.values() for name in group]


def _read(path: Path, tree: str = "events") -> ak.Array:
    with uproot.open(path) as file:
        return file[tree].arrays()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out_dir = tmp_path_factory.mktemp("samples")
    return samples.make_signal_background(out_dir, N_EVENTS, seed=0)


@pytest.fixture(scope="module")
def signal(pair: tuple[Path, Path]) -> ak.Array:
    return _read(pair[0])


@pytest.fixture(scope="module")
def background(pair: tuple[Path, Path]) -> ak.Array:
    return _read(pair[1])


def test_layout_is_3_identifiers_22_flat_52_jagged() -> None:
    assert samples.IDENTIFIER_BRANCHES == ("runNo", "evtNo", "lumi")
    assert len(samples.FLAT_BRANCHES) == 22
    assert len(set(samples.FLAT_BRANCHES)) == 22
    assert set(samples.JAGGED_GROUPS) == {"nJets", "nFatJets", "nPartons", "nLeptons"}
    assert set(samples.JAGGED_GROUPS) <= set(samples.FLAT_BRANCHES)
    assert [len(group) for group in samples.JAGGED_GROUPS.values()] == [13] * 4
    assert len(set(JAGGED_BRANCHES)) == 52
    assert {"partonE", "partonPt", "jetPt", "jetBtag"} <= set(JAGGED_BRANCHES)
    assert {"HT", "MET"} <= set(samples.FLAT_BRANCHES)


def test_file_has_exactly_77_branches_without_duplicate_counters(
    pair: tuple[Path, Path],
) -> None:
    expected = [
        *samples.IDENTIFIER_BRANCHES,
        *samples.FLAT_BRANCHES,
        *JAGGED_BRANCHES,
    ]
    for path in pair:
        with uproot.open(path) as file:
            tree = file["events"]
            assert tree.num_entries == N_EVENTS
            assert tree.keys() == expected
            for counter, fields in samples.JAGGED_GROUPS.items():
                for name in fields:
                    assert tree[name].count_branch.name == counter


def test_branch_kinds_read_back_as_flat_or_jagged(signal: ak.Array) -> None:
    assert set(signal.fields) == {
        *samples.IDENTIFIER_BRANCHES,
        *samples.FLAT_BRANCHES,
        *JAGGED_BRANCHES,
    }
    assert ak.type(signal["evtNo"]).content.primitive == "int64"
    for name in ("runNo", "lumi", *samples.JAGGED_GROUPS):
        assert ak.type(signal[name]).content.primitive == "int32", name
    for name in samples.FLAT_BRANCHES:
        assert isinstance(ak.type(signal[name]).content, ak.types.NumpyType), name
    for name in JAGGED_BRANCHES:
        content = ak.type(signal[name]).content
        assert isinstance(content, ak.types.ListType), name
        assert content.content.primitive == "float32", name


def test_counters_equal_the_lengths_of_their_jagged_branches(
    signal: ak.Array, background: ak.Array
) -> None:
    for events in (signal, background):
        for counter, fields in samples.JAGGED_GROUPS.items():
            for name in fields:
                assert ak.all(ak.num(events[name]) == events[counter]), name


def test_values_are_physical(signal: ak.Array, background: ak.Array) -> None:
    for events in (signal, background):
        assert ak.all(events.evtNo == np.arange(1, N_EVENTS + 1))
        assert ak.min(events.nJets) >= 0
        assert ak.max(events.nJets) <= 16
        assert ak.min(events.nLeptons) >= 0
        assert ak.max(events.nLeptons) <= 3
        assert ak.min(events.nPartons) >= 1
        for prefix in ("jet", "fatJet", "parton", "lepton"):
            assert ak.all(ak.flatten(events[prefix + "Pt"]) > 0)
            assert ak.all(abs(ak.flatten(events[prefix + "Eta"])) <= 2.5)
            assert ak.all(abs(ak.flatten(events[prefix + "Phi"])) <= np.pi)
        assert ak.all(ak.flatten(events.partonE) > 0)
        for name in (*samples.FLAT_BRANCHES, *JAGGED_BRANCHES):
            assert np.all(np.isfinite(ak.to_numpy(ak.ravel(events[name])))), name


def test_signal_differs_from_background_in_the_documented_direction(
    signal: ak.Array, background: ak.Array
) -> None:
    for name in ("nJets", "jetBtag", "HT", "partonPt", "partonE"):
        assert name in samples.SIGNAL_DIFFERENCES
    for name in (
        "nJets",
        "nBJets",
        "HT",
        "leadJetPt",
        "jetBtag",
        "partonPt",
        "partonE",
    ):
        sig = ak.mean(ak.ravel(signal[name]))
        bkg = ak.mean(ak.ravel(background[name]))
        assert sig > 1.1 * bkg, name
    assert ak.mean(signal.nVtx) == pytest.approx(ak.mean(background.nVtx), abs=0.6)
    assert ak.mean(signal.nLeptons) == pytest.approx(
        ak.mean(background.nLeptons), abs=0.1
    )


def test_seed_preproc_cuts_keep_some_but_not_all_events(
    signal: ak.Array, background: ak.Array
) -> None:
    for events in (signal, background):
        log_e = np.log(events.partonE)
        keep = (
            ak.any(log_e < 6.31, axis=1)
            & ak.all(log_e > 5.85, axis=1)
            & ak.all(events.partonPt > 200, axis=1)
            & (events.nJets**2 >= 1)
            & (events.nJets**2 <= 16)
            & (events.nLeptons <= 2)
        )
        assert 0.05 <= ak.mean(keep) <= 0.6


def test_same_seed_gives_identical_arrays_and_another_seed_does_not(
    tmp_path: Path, pair: tuple[Path, Path], background: ak.Array
) -> None:
    again = samples.make_sample(tmp_path / "again.root", N_EVENTS, "background", seed=1)
    assert again == tmp_path / "again.root"
    assert ak.array_equal(_read(again), background)
    other = samples.make_sample(tmp_path / "other.root", N_EVENTS, "background", seed=2)
    assert not ak.array_equal(_read(other).jetPt, background.jetPt)


def test_chunked_writing_keeps_every_event_in_order(tmp_path: Path) -> None:
    path = samples.make_sample(
        tmp_path / "sub" / "chunked.root", 1000, "signal", tree="t", chunk_size=300
    )
    events = _read(path, tree="t")
    assert len(events) == 1000
    assert ak.all(events.evtNo == np.arange(1, 1001))
    assert ak.all(ak.num(events.jetPt) == events.nJets)


def test_invalid_kind_raises_value_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'higgs'"):
        samples.make_sample(tmp_path / "x.root", 10, "higgs")
    assert list(tmp_path.iterdir()) == []


def test_no_partial_file_is_left_behind(pair: tuple[Path, Path]) -> None:
    names = sorted(path.name for path in pair[0].parent.iterdir())
    assert names == ["background.root", "signal.root"]


def test_failed_write_removes_the_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_chunk(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(samples, "_chunk", broken_chunk)
    with pytest.raises(RuntimeError, match="disk full"):
        samples.make_sample(tmp_path / "broken.root", 10, "signal")
    assert list(tmp_path.iterdir()) == []
