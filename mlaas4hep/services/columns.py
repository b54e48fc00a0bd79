"""Request bodies, with many events given column by column parsed straight into numpy.

``{"model": NAME, "keys": [k1, k2, ...], "columns": [c1, c2, ...]}``: ``c_j`` holds
the values of ``k_j`` for every event, numbers (a flat branch) or lists of numbers (a
jagged branch). simdjson parses and validates the body and copies each column's numbers
into a float64 buffer; the length of every event's list comes from one compiled scan of
the body's brackets. No Python object is made per event or per number.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ..errors import UserError, did_you_mean
from ..flatten import Column, Jagged

OPEN, CLOSE, COMMA, QUOTE, ESCAPE = (ord(c) for c in '[],"\\')
OBJECT_OPEN, OBJECT_CLOSE = ord("{"), ord("}")
SPACE, VALUE, MARK = 0, 1, 2
BYTES = np.full(256, VALUE, dtype=np.uint8)
"""What each byte is to the scan: whitespace, part of a value, or a mark ``[]{},"\\``."""
BYTES[[ord(c) for c in " \t\n\r"]] = SPACE
BYTES[[OPEN, CLOSE, COMMA, QUOTE, ESCAPE, OBJECT_OPEN, OBJECT_CLOSE]] = MARK
MEMBERS = ("model", "keys", "columns")
"""What a request with columns may hold."""


def load_request(body: bytes) -> tuple[dict[str, Any], dict[str, Column] | None]:
    """The members of a request's JSON object, and its ``columns`` as pipeline columns
    keyed by ``keys`` (None without ``columns``; the other members are Python values)."""
    import simdjson

    try:
        doc = simdjson.Parser().parse(body)
    except (ValueError, RuntimeError, UnicodeDecodeError) as exc:
        raise UserError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(doc, simdjson.Object):
        raise UserError("the body must be a JSON object")
    if "columns" not in doc:
        return doc.as_dict(), None
    members = list(doc.keys())
    unknown = [m for m in members if m not in MEMBERS]
    if unknown:
        raise UserError(f"unknown member '{unknown[0]}'{did_you_mean(unknown[0], MEMBERS)}; "
                        "a request with \"columns\" has only " + ", ".join(MEMBERS))
    model, keys, columns = doc.get("model"), doc.get("keys"), doc["columns"]
    if not isinstance(model, str):
        raise UserError("the body must be a JSON object naming the \"model\"")
    keys = keys.as_list() if isinstance(keys, simdjson.Array) else keys
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise UserError("'keys' must be a list of branch names")
    if not isinstance(columns, simdjson.Array) or len(columns) != len(keys):
        raise UserError(f"'columns' must be a list with one column per key ({len(keys)})")
    parents, lengths = _arrays(np.frombuffer(body, np.uint8))
    index = int("keys" in members[:members.index("columns")])  # "keys" is the other array
    top = int(np.flatnonzero(parents == -1)[index])
    return {"model": model, "keys": keys}, _columns(keys, columns, parents, lengths, top)


def _columns(keys: list[str], columns: Any, parents: np.ndarray, lengths: np.ndarray,
             top: int) -> dict[str, Column]:
    """Pipeline columns from the parsed ``columns`` array, the body's array number ``top``
    (``parents``, ``lengths``: see :func:`_arrays`)."""
    end = _end(parents, top)
    starts = np.flatnonzero(parents[top + 1:end] == top) + top + 1
    if len(starts) != len(keys):
        raise UserError("'columns': each column must be a list (of numbers, or of lists of "
                        "numbers)")
    out: dict[str, Column] = {}
    for key, column, start, stop in zip(keys, columns, starts, [*starts[1:], end],
                                        strict=True):
        try:
            numbers = np.frombuffer(column.as_buffer(of_type="d"), np.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise UserError(f"key '{key}': expected a number per event (or a list of numbers "
                            f"for a jagged branch): {exc}") from None
        events, inner = int(lengths[start]), parents[start + 1:stop]
        if events != lengths[starts[0]]:
            raise UserError(f"key '{key}' has {events} events, key '{keys[0]}' has "
                            f"{lengths[starts[0]]}")
        if len(inner) == 0:
            out[key] = numbers
        elif (inner != start).any():
            raise UserError(f"key '{key}': lists of lists; give a number or a list of numbers "
                            "per event")
        elif len(inner) != events:
            raise UserError(f"key '{key}': numbers mixed with lists; give a number per event "
                            "(flat branch) or a list per event (jagged branch)")
        else:
            offsets = np.zeros(events + 1, dtype=np.int64)
            np.cumsum(lengths[start + 1:stop], out=offsets[1:])
            out[key] = Jagged(offsets, numbers)
    return out


def _end(parents: np.ndarray, array: int) -> int:
    """Number of the first array after ``array`` and the arrays inside it."""
    later = np.flatnonzero(parents[array + 1:] < array)
    return int(later[0]) + array + 1 if len(later) else len(parents)


def _arrays(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each JSON array of a valid document ``text`` (bytes), in order of appearance: the
    number of the array it is in (-1 when it is not directly in an array) and its number of
    elements."""
    arrays = int(np.count_nonzero(text == OPEN))
    return _scan(text, BYTES, arrays, arrays + int(np.count_nonzero(text == OBJECT_OPEN)))


@numba.njit(cache=True, nogil=True)
def _scan(text: np.ndarray, kinds: np.ndarray, arrays: int, containers: int
          ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover (compiled)
    """:func:`_arrays`, in one pass over the bytes (``kinds``: :data:`BYTES`)."""
    parents = np.empty(arrays, np.int64)
    lengths = np.zeros(arrays, np.int64)
    stack = np.empty(containers + 1, np.int64)  # open containers: array number, or -1
    stack[0] = -1
    depth, count, fresh, in_string, i = 0, 0, -1, False, 0
    while i < len(text):
        byte = text[i]
        i += 1
        kind = kinds[byte]
        if kind != MARK:
            if kind == VALUE and fresh >= 0:
                lengths[fresh] = 1  # the first element of the array opened last
                fresh = -1
            continue
        if fresh >= 0 and byte != CLOSE:
            lengths[fresh] = 1
        fresh = -1
        if in_string:
            if byte == ESCAPE:
                i += 1  # the escaped byte
            elif byte == QUOTE:
                in_string = False
        elif byte == QUOTE:
            in_string = True
        elif byte == OPEN:
            parents[count] = stack[depth]
            depth += 1
            stack[depth] = count
            fresh = count
            count += 1
        elif byte == OBJECT_OPEN:
            depth += 1
            stack[depth] = -1
        elif byte == COMMA:
            if stack[depth] >= 0:
                lengths[stack[depth]] += 1
        else:  # a closing bracket
            depth -= 1
    return parents, lengths
