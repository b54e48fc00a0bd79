"""Many events as binary arrays: a ``numpy.savez`` file, the inference service's fast form.

One array per key: a flat branch is its values (one number per event); a
jagged branch is all its numbers one after the other, plus ``KEY.counts``,
how many of them belong to each event. With awkward arrays (what uproot
gives)::

    np.savez(out, pt=ak.flatten(events.pt).to_numpy(), **{"pt.counts": ak.num(events.pt)
             .to_numpy()}, met=events.met.to_numpy())

:func:`pack_arrays` does that for a mapping of numpy or awkward arrays. The
service reads members stored uncompressed only (``savez``, not
``savez_compressed``), so a body never unpacks to more than its own size,
and never unpickles anything.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import UserError
from ..flatten import Column, Jagged

COUNTS = ".counts"
"""Suffix of the array giving a jagged key's numbers per event."""
CONTENT_TYPE = "application/x-npz"
LOCAL_HEADER = 30
"""Bytes of a zip member's local header before its name and extra field."""
MAX_HEADER = 65_536
"""At most this much of a member is read as its .npy header."""


def pack_arrays(columns: Mapping[str, Any]) -> bytes:
    """An npz body for ``columns``: numpy arrays (flat), awkward arrays or lists of lists
    (jagged, one list of numbers per event)."""
    arrays: dict[str, np.ndarray] = {}
    for key, column in columns.items():
        if isinstance(column, np.ndarray) and column.ndim == 1:
            arrays[key] = column
            continue
        import awkward as ak

        column = ak.Array(column) if not isinstance(column, ak.Array) else column
        if column.ndim == 1:
            arrays[key] = ak.to_numpy(column)
        else:
            arrays[key] = ak.to_numpy(ak.flatten(column))
            arrays[key + COUNTS] = ak.to_numpy(ak.num(column))
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def load_arrays(body: bytes) -> dict[str, Column]:
    """Pipeline columns from an npz body (see the module docstring), or a UserError. The
    arrays are views of ``body`` (no copy)."""
    try:
        members = zipfile.ZipFile(io.BytesIO(body)).infolist()
    except (zipfile.BadZipFile, ValueError):
        raise UserError("the body is not an npz file (numpy.savez)") from None
    arrays: dict[str, np.ndarray] = {}
    for member in members:
        if member.compress_type != zipfile.ZIP_STORED:
            raise UserError(f"'{member.filename}' is compressed: send numpy.savez output, "
                            "not savez_compressed")
        name = member.filename.removesuffix(".npy")
        try:
            arrays[name] = _stored_array(body, member, name)
        except (ValueError, struct.error) as exc:
            raise UserError(f"array '{name}' cannot be read: {exc}") from None
    return _columns(arrays)


def _stored_array(body: bytes, member: zipfile.ZipInfo, name: str) -> np.ndarray:
    """The .npy array of an uncompressed zip member, as a view of ``body`` (a UserError
    unless it is a 1-d array of numbers)."""
    name_length, extra_length = struct.unpack_from("<HH", body, member.header_offset + 26)
    start = member.header_offset + LOCAL_HEADER + name_length + extra_length
    end = start + member.file_size
    if end > len(body):
        raise ValueError("the member runs past the end of the body")
    header = io.BytesIO(body[start:min(end, start + MAX_HEADER)])
    version = np.lib.format.read_magic(header)
    shape, _, dtype = (np.lib.format.read_array_header_1_0(header)
                       if version == (1, 0)
                       else np.lib.format.read_array_header_2_0(header))
    if len(shape) != 1 or dtype.kind not in "biuf":
        raise UserError(f"array '{name}': a 1-d array of numbers is needed, got {dtype} "
                        f"with shape {shape}")
    offset = start + header.tell()
    if offset + shape[0] * dtype.itemsize > end:
        raise ValueError(f"{shape[0]} values of {dtype} do not fit in the member")
    return np.frombuffer(body, dtype=dtype, count=shape[0], offset=offset)


def _columns(arrays: dict[str, np.ndarray]) -> dict[str, Column]:
    columns: dict[str, Column] = {}
    for name, values in arrays.items():
        if name.endswith(COUNTS) and name[:-len(COUNTS)] in arrays:
            continue
        counts = arrays.get(name + COUNTS)
        if counts is None:
            columns[name] = values.astype(np.float64, copy=False)
            continue
        if counts.dtype.kind == "f" or (counts < 0).any():
            raise UserError(f"array '{name}{COUNTS}': whole numbers >= 0 are needed")
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        if offsets[-1] != len(values):
            raise UserError(f"array '{name}{COUNTS}' adds up to {offsets[-1]} numbers, "
                            f"'{name}' has {len(values)}")
        columns[name] = Jagged(offsets, values.astype(np.float64, copy=False))
    sizes = {name: len(column) for name, column in columns.items()}
    if len(set(sizes.values())) > 1:
        ordered = sorted(sizes.items(), key=lambda item: item[1])
        (a, n), (b, m) = ordered[0], ordered[-1]
        raise UserError(f"key '{a}' has {n} events, key '{b}' has {m}")
    return columns
