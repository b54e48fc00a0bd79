"""Many events as a numpy.savez body: packed from numpy and awkward arrays, read back into the
same flat and jagged columns, and one clear message for each malformed body (nothing
compressed, pickled or mismatched is read); arrays are views of the body."""

from __future__ import annotations

import io
import re
import zipfile

import awkward as ak
import numpy as np
import pytest

from mlaas4hep.errors import UserError
from mlaas4hep.flatten import Jagged
from mlaas4hep.services.arrays import load_arrays, pack_arrays


def npz(**arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_flat_and_jagged_columns_come_back_as_sent() -> None:
    rng = np.random.default_rng(5)
    lists = [rng.normal(size=rng.integers(0, 6)).tolist() for _ in range(200)]
    flat = rng.normal(size=200).astype(np.float32)
    columns = load_arrays(pack_arrays({"met": flat, "jet_pt": ak.Array(lists),
                                       "n": np.arange(200), "muon_pt": lists}))
    assert set(columns) == {"met", "jet_pt", "n", "muon_pt"}
    np.testing.assert_array_equal(columns["met"], flat)
    body = pack_arrays({"x": np.arange(5.0)})
    assert np.shares_memory(load_arrays(body)["x"], np.frombuffer(body, np.uint8))
    assert columns["met"].dtype == np.float64 and columns["n"].tolist() == list(range(200))
    for key in ("jet_pt", "muon_pt"):
        jagged = columns[key]
        assert isinstance(jagged, Jagged)
        got = np.split(jagged.content, jagged.offsets[1:-1])
        assert [g.tolist() for g in got] == lists


def test_a_key_named_like_counts_without_its_jagged_partner_is_an_ordinary_key() -> None:
    columns = load_arrays(npz(**{"x.counts": np.array([1.0, 2.0])}))
    assert columns["x.counts"].tolist() == [1.0, 2.0]


def not_npy() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.npy", b"not an array")
    return out.getvalue()


def claiming(shape: tuple[int, ...]) -> bytes:
    """An npz whose array header claims ``shape`` but holds no values."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.npy", header.getvalue())
    return out.getvalue()


def compressed() -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, a=np.zeros(10))
    return out.getvalue()


@pytest.mark.parametrize(("body", "message"), [
    (b'{"model": "m"}', "the body is not an npz file"),
    (compressed(), "'a.npy' is compressed: send numpy.savez output"),
    (npz(a=np.array(["x", "y"])), "array 'a': a 1-d array of numbers is needed"),
    (npz(a=np.zeros((2, 2))), "array 'a': a 1-d array of numbers is needed"),
    (npz(a=np.array([{"x": 1}], dtype=object)), "array 'a': a 1-d array of numbers is needed"),
    (not_npy(), "array 'a' cannot be read: the magic string is not correct"),
    (claiming((10**6,)), "array 'a' cannot be read: 1000000 values of float64 do not fit"),
    (claiming((10**12, 10**12)), "array 'a': a 1-d array of numbers is needed, got float64 with "
                           "shape (1000000000000, 1000000000000)"),
    (npz(a=np.zeros(3))[:-200], "the body is not an npz file"),
    (npz(a=np.zeros(3), **{"a.counts": np.array([1, 1])}),
     "array 'a.counts' adds up to 2 numbers, 'a' has 3"),
    (npz(a=np.zeros(1), **{"a.counts": np.array([2, -1])}), "whole numbers >= 0"),
    (npz(a=np.zeros(2), **{"a.counts": np.array([1.0, 1.0])}), "whole numbers >= 0"),
    (npz(a=np.zeros(2), b=np.zeros(3)), "key 'a' has 2 events, key 'b' has 3"),
])
def test_malformed_bodies_get_one_clear_message(body: bytes, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        load_arrays(body)
