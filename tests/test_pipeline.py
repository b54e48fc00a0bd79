"""Specs, cuts, padding, masks and normalisation checked against independent
awkward/numpy computations on the same real data (CMS open data files)."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from mlaas4hep.config import load_params, load_preproc
from mlaas4hep.dataset import Dataset
from mlaas4hep.flatten import Jagged, Normaliser, jagged_offsets, to_matrix
from mlaas4hep.split import split_codes
from mlaas4hep.workflow import prepare

DATA = Path(__file__).parent / "data"
HZZ = DATA / "uproot-HZZ.root"
NANOAOD = DATA / "nanoAOD_2015_CMS_Open_Data_ttbar.root"

HZZ_PREPROC = {
    "new_branch": {
        "Jet_Pt": {"def": "sqrt(Jet_Px**2 + Jet_Py**2)", "type": "jagged",
                   "cut": ["Jet_Pt > 30", "any"], "remove": "False"},
        "MET": {"def": "hypot(MET_px, MET_py)", "type": "flat", "cut": "MET > 5",
                "remove": False, "keys_to_remove": ["MET_px", "MET_py"]}},
    "flat_cut": {"NJet": {"cut": "1 <= NJet <= 10", "remove": "False"}},
    "jagged_cut": {"Muon_Px": {"cut": ["abs(Muon_Px) < 200", "all"], "remove": "True"}},
}


def write_lists(tmp_path: Path, pairs: list[tuple[Path, int]]) -> tuple[Path, Path]:
    files, labels = tmp_path / "files.txt", tmp_path / "labels.txt"
    files.write_text("".join(f"{p}\n" for p, _ in pairs))
    labels.write_text("".join(f"{label}\n" for _, label in pairs))
    return files, labels


def hzz_reference() -> tuple[ak.Array, np.ndarray]:
    """Independent computation of the HZZ_PREPROC selection with plain awkward."""
    a = uproot.open(HZZ)["events"].arrays()
    jet_pt = np.sqrt(a.Jet_Px**2 + a.Jet_Py**2)
    met = np.hypot(a.MET_px, a.MET_py)
    keep = (ak.any(jet_pt > 30, axis=1) & (met > 5) & (a.NJet >= 1) & (a.NJet <= 10)
            & ak.all(abs(a.Muon_Px) < 200, axis=1))
    return ak.with_field(ak.with_field(a, jet_pt, "Jet_Pt"), met, "MET"), np.asarray(keep)


@pytest.fixture
def hzz_dataset(tmp_path: Path):
    pre = tmp_path / "preproc.json"
    pre.write_text(json.dumps(HZZ_PREPROC))
    params = load_params(None, branch="events", chunk_size=700, seed=3)
    with Dataset.open([(str(HZZ), 1)], params, load_preproc(pre)) as data:
        yield data


def test_specs_match_independent_awkward_computation(hzz_dataset: Dataset) -> None:
    specs = hzz_dataset.specs()
    events, keep = hzz_reference()
    assert specs.events == int(keep.sum()) > 0
    assert specs.files[0]["read"] == 2421
    split = split_codes(3, 0, 0, 2421, 0.2, 0.2)
    kept, train = events[keep], split[keep] == 0
    assert sum(specs.files[0][s] for s in ("train", "validation", "test")) == specs.events
    assert specs.files[0]["train"] == int(train.sum())
    # inputs: file branches minus removed ones, then new branches
    assert "Muon_Px" not in specs.inputs and "MET_px" not in specs.inputs
    assert specs.inputs[-2:] == ["Jet_Pt", "MET"]
    for name in ("Jet_Pt", "Jet_E", "Muon_Py"):
        b = specs.branches[name]
        values = ak.to_numpy(ak.flatten(kept[name][train]))
        assert b.kind == "jagged"
        assert b.min == pytest.approx(values.min()) and b.max == pytest.approx(values.max())
        assert b.mean == pytest.approx(values.mean(), rel=1e-6)
        assert b.std == pytest.approx(values.std(), rel=1e-5)
        assert b.max_len == int(ak.max(ak.num(kept[name])))
    met = ak.to_numpy(kept.MET[train])
    assert specs.branches["MET"].kind == "flat"
    assert specs.branches["MET"].min == pytest.approx(met.min())
    assert specs.branches["MET"].max == pytest.approx(met.max())
    assert specs.summary().startswith(f"--- first pass: {specs.events} events, (")


def test_chunks_pad_mask_and_normalise_like_numpy(hzz_dataset: Dataset) -> None:
    specs = hzz_dataset.specs()
    hzz_dataset.params.shuffle = False
    chunks = list(hzz_dataset.chunks(specs))
    assert len(chunks) == 4  # ceil(2421 / 700)
    X = np.concatenate([c.X for c in chunks])
    mask = np.concatenate([c.mask for c in chunks])
    events, keep = hzz_reference()
    kept = events[keep]
    names = hzz_dataset.feature_names(specs)
    assert X.shape == (int(keep.sum()), specs.n_features) == mask.shape
    width = specs.branches["Jet_Pt"].max_len
    cols = [names.index(f"Jet_Pt[{i}]") for i in range(width)]
    b = specs.branches["Jet_Pt"]
    expected = ak.to_numpy(ak.fill_none(ak.pad_none((kept.Jet_Pt - b.min) / (b.max - b.min),
                                                    width, clip=True), 0.0))
    expected_mask = ak.to_numpy(ak.fill_none(ak.pad_none(ak.ones_like(kept.Jet_Pt), width,
                                                         clip=True), 0))
    np.testing.assert_allclose(X[:, cols], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mask[:, cols], expected_mask)
    met = names.index("MET")
    np.testing.assert_allclose(X[:, met], (ak.to_numpy(kept.MET) - specs.branches["MET"].min)
                               / (specs.branches["MET"].max - specs.branches["MET"].min),
                               rtol=1e-5, atol=1e-6)
    train = np.concatenate([c.split for c in chunks]) == 0
    assert X[train][:, met].min() == pytest.approx(0) and X[train][:, met].max() == \
        pytest.approx(1)


def test_to_matrix_truncates_masks_non_finite_and_shuffles_rows() -> None:
    columns = {"x": ak.Array([[1.0, np.nan, 3.0], [], [4.0]]),
               "y": ak.Array([[10.0, 20.0, 30.0], [], [40.0]]),  # shares x's counter
               "f": np.array([5.0, np.inf, 7.0])}
    widths = {"x": 2, "y": 1, "f": None}
    same = Normaliser("minmax", {n: {"min": 0.0, "max": 1.0, "mean": 0, "std": 1}
                                 for n in columns})
    X, mask = to_matrix(columns, ["x", "y", "f"], widths, same)
    np.testing.assert_array_equal(X, [[1, 0, 10, 5], [0, 0, 0, 0], [4, 0, 40, 7]])
    np.testing.assert_array_equal(mask, [[1, 0, 1, 1], [0, 0, 0, 0], [1, 0, 1, 1]])
    order = np.array([2, 0, 1])
    Xs, masks = to_matrix(columns, ["x", "y", "f"], widths, same, order)
    np.testing.assert_array_equal(Xs, X[order])
    np.testing.assert_array_equal(masks, mask[order])
    X_alone, no_mask = to_matrix(columns, ["x", "y", "f"], widths, same, order, with_mask=False)
    np.testing.assert_array_equal(X_alone, Xs)
    assert no_mask is None
    # slices of a larger array (as read-ahead buffers give) pad the same way
    sliced = {"x": ak.Array([[9.0], [1.0, np.nan, 3.0], [], [4.0], [8.0, 8.0]])[1:4],
              "y": ak.Array([[1.0], [10.0, 20.0, 30.0], [], [40.0], [2.0]])[1:4],
              "f": np.array([0.0, 5.0, np.inf, 7.0])[1:]}
    Xc, maskc = to_matrix(sliced, ["x", "y", "f"], widths, same)
    np.testing.assert_array_equal(Xc, X)
    np.testing.assert_array_equal(maskc, mask)
    # a selection gathered straight from the columns (Jagged views whose offsets start
    # above 0 included) equals those rows of the whole matrix
    views = {"x": Jagged(*jagged_offsets(sliced["x"])).events(0, 3),
             "y": Jagged(np.array([1, 4, 4, 5]), np.array([1.0, 10.0, 20.0, 30.0, 40.0, 2.0])),
             "f": sliced["f"]}
    Xv, maskv = to_matrix(views, ["x", "y", "f"], widths, same, np.array([2, 0]))
    np.testing.assert_array_equal(Xv, X[[2, 0]])
    np.testing.assert_array_equal(maskv, mask[[2, 0]])


def test_to_matrix_normalises_in_float32_as_documented() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5, 200)
    content = rng.normal(50, 20, counts.sum())
    column = Jagged(np.concatenate([[0], np.cumsum(counts)]), content)
    normalise = Normaliser("minmax", {"x": {"min": -3.7, "max": 91.3, "mean": 0, "std": 1}})
    X, mask = to_matrix({"x": column}, ["x"], {"x": 4}, normalise)
    expected = np.zeros((200, 4), dtype=np.float32)
    # each value as float32, minus the minimum, times 1 / (max - min), all in float32
    values = (content.astype(np.float32) - np.float32(-3.7)) * np.float32(1 / (91.3 + 3.7))
    for i, (a, b) in enumerate(zip(column.offsets[:-1], column.offsets[1:], strict=True)):
        expected[i, :min(b - a, 4)] = values[a:a + min(b - a, 4)]
    np.testing.assert_array_equal(X, expected)  # bit for bit
    assert mask.sum() == np.minimum(counts, 4).sum()


def test_split_is_independent_of_chunking_and_close_to_fractions() -> None:
    whole = split_codes(42, 1, 0, 100_000, 0.2, 0.1)
    pieces = np.concatenate([split_codes(42, 1, a, a + 25_000, 0.2, 0.1)
                             for a in range(0, 100_000, 25_000)])
    np.testing.assert_array_equal(whole, pieces)
    fractions = np.bincount(whole, minlength=3) / len(whole)
    np.testing.assert_allclose(fractions, [0.7, 0.2, 0.1], atol=0.01)
    assert not np.array_equal(whole, split_codes(43, 1, 0, 100_000, 0.2, 0.1))


def test_chunks_mix_files_with_their_labels(samples: Path) -> None:
    params = load_params(None, chunk_size=1000, nevts=3000)
    pairs = [(str(samples / "signal.root"), 1), (str(samples / "background.root"), 0)]
    with Dataset.open(pairs, params, load_preproc(None)) as data:
        assert data.plan.per_file == (1500, 1500) and data.plan.n_chunks == 3
        specs = data.specs()
        for chunk in data.chunks(specs):
            assert np.bincount(chunk.y).tolist() == [500, 500]


@pytest.mark.parametrize("shuffle", [True, False])
def test_chunks_of_one_split_equal_that_part_of_whole_chunks(samples: Path,
                                                              shuffle: bool) -> None:
    """Training and validation passes prepare only their split's events: the same rows, in
    the same order, as a whole chunk's part, with the same per-pass shuffle."""
    params = load_params(None, chunk_size=1500, nevts=3000, shuffle=shuffle, cache_mb=0,
                         spill_mb=0)
    pairs = [(str(samples / "signal.root"), 1), (str(samples / "background.root"), 0)]
    with Dataset.open(pairs, params, load_preproc(None)) as data:
        specs = data.specs()
        whole = list(data.chunks(specs))
        for split in (0, 1, 2):
            chunks = list(data.chunks(specs, split=split))
            assert len(chunks) == len(whole) == 2
            for full, only in zip(whole, chunks, strict=True):
                assert len(only) == np.count_nonzero(full.split == split) > 0
                assert (only.split == split).all()
                for a, b in zip(full.part(split, shuffle=[5, 1]), only.part(split, shuffle=[5, 1]),
                                strict=True):
                    np.testing.assert_array_equal(a, b)


def test_specs_and_prepare_on_nanoaod(tmp_path: Path) -> None:
    files, labels = write_lists(tmp_path, [(NANOAOD, 1)])
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"branch": "Events", "identifier": "run,luminosityBlock,event",
                                  "chunk_size": 64}))
    out = tmp_path / "arrays.npz"
    result = prepare(files, labels, params, output=out)
    tree = uproot.open(NANOAOD)["Events"]
    kinds = {result.specs.branches[n].kind for n in result.specs.inputs}
    assert kinds == {"flat", "jagged"}
    assert len(result.specs.inputs) == 947 - 3
    assert result.events_read == 200 and result.events_selected == 200
    arrays = np.load(out)
    assert arrays["X"].shape == (200, result.specs.n_features)
    assert arrays["mask"].shape == arrays["X"].shape and set(np.unique(arrays["y"])) == {1}
    # one jagged branch checked against uproot directly
    njet = ak.num(tree["Jet_pt"].array())
    assert result.specs.branches["Jet_pt"].max_len == int(ak.max(njet))
    names = list(arrays["feature_names"])
    jet0 = names.index("Jet_pt[0]")
    assert int(arrays["mask"][:, jet0].sum()) == int(np.sum(ak.to_numpy(njet) > 0))
    assert result.events_per_second["chunks"] > 0


def test_prepare_on_hzz_with_jagged_new_branch_and_cuts(tmp_path: Path) -> None:
    files, labels = write_lists(tmp_path, [(HZZ, 1)])
    pre = tmp_path / "preproc.json"
    pre.write_text(json.dumps(HZZ_PREPROC))
    result = prepare(files, labels, None, pre, output=tmp_path / "hzz.npz")
    _, keep = hzz_reference()
    assert result.events_selected == int(keep.sum())
    arrays = np.load(tmp_path / "hzz.npz")
    assert arrays["X"].shape[0] == int(keep.sum())
    assert not list(tmp_path.glob(".*incomplete*"))


def test_specs_file_is_reused_only_for_the_same_inputs(samples: Path, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    pairs = [(str(samples / "signal.root"), 1), (str(samples / "background.root"), 0)]
    with Dataset.open(pairs, load_params(None), load_preproc(None)) as data:
        first = data.specs()
        first.save(tmp_path / "global-specs.json")
        caplog.set_level("INFO", logger="mlaas4hep")
        again = data.specs(tmp_path / "global-specs.json")
        assert "load specs from" in caplog.text
        assert again.to_dict() == first.to_dict()
    caplog.clear()
    with Dataset.open(pairs, load_params(None, nevts=2000), load_preproc(None)) as data:
        other = data.specs(tmp_path / "global-specs.json")
        assert "computed for different inputs" in caplog.text
        assert other.hash != first.hash and other.events == 2000


def test_rntuple_inputs_are_read_like_ttrees(tmp_path: Path) -> None:
    jagged = ak.Array([[1.0, 2.0][: i % 3] for i in range(1000)])
    with uproot.recreate(tmp_path / "rn.root") as f:
        f["ntuple"] = {"x": np.arange(1000.0), "j": jagged}  # uproot writes an RNTuple
    assert uproot.open(tmp_path / "rn.root").classnames() == {"ntuple;1": "ROOT::RNTuple"}
    files, labels = write_lists(tmp_path, [(tmp_path / "rn.root", 1)])
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"branch": "ntuple", "chunk_size": 300, "shuffle": False}))
    result = prepare(files, labels, params, output=tmp_path / "rn.npz")
    assert result.specs.branches["j"].kind == "jagged"
    assert result.specs.branches["j"].max_len == 2
    arrays = np.load(tmp_path / "rn.npz")
    names = list(arrays["feature_names"])
    expected_mask = ak.to_numpy(ak.fill_none(ak.pad_none(ak.ones_like(jagged), 2), 0))
    np.testing.assert_array_equal(arrays["mask"][:, [names.index("j[0]"), names.index("j[1]")]],
                                  expected_mask)


def test_every_pass_reads_each_basket_once(samples: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """Chunks smaller than the files' clusters: a pass decompresses each basket of the branches
    it reads exactly once, and the next pass (nothing cached) reads them all again; the
    read-ahead is not a cache of the file."""
    blocks: list[int] = []
    monkeypatch.setattr(uproot.compression.decompress, "hook_before_block",
                        lambda **_: blocks.append(1))
    params = load_params(None, chunk_size=700, cache_mb=0, spill_mb=0, threads=1)
    pairs = [(str(samples / "signal.root"), 1), (str(samples / "background.root"), 0)]
    with Dataset.open(pairs, params, load_preproc(None)) as data:
        once = 0
        for source in data.inputs:
            for name in data.selection.read:
                once += source.tree[name].num_baskets
        specs = data.specs()
        assert len(blocks) == once > 0
        for _ in range(2):
            blocks.clear()
            assert sum(len(c) for c in data.chunks(specs)) == specs.events
            assert len(blocks) == once
