"""Request bodies with many events column by column: parsed into numpy columns equal to the
values sent (strings holding brackets, quotes and escapes do not confuse the scan), and one
clear message for each malformed body."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from mlaas4hep.errors import UserError
from mlaas4hep.flatten import Jagged
from mlaas4hep.services.columns import load_request


def as_lists(columns: dict) -> dict:
    return {k: (np.split(v.content, v.offsets[1:-1]) if isinstance(v, Jagged) else v)
            for k, v in columns.items()}


def test_columns_are_parsed_into_flat_and_jagged_numpy_columns() -> None:
    rng = np.random.default_rng(3)
    lists = [rng.normal(size=rng.integers(0, 5)).tolist() for _ in range(300)]
    flat = rng.normal(size=300).tolist()
    keys = ['odd "[key],\\', "flat", "jagged"]
    body = json.dumps({"columns": [[1] * 300, flat, lists], "keys": keys,
                       "model": "a]b\\\"[c"}, indent=1).encode()
    fields, columns = load_request(body)
    assert fields == {"model": 'a]b\\"[c', "keys": keys}
    assert isinstance(columns["jagged"], Jagged) and not isinstance(columns["flat"], Jagged)
    np.testing.assert_array_equal(columns["flat"], flat)
    np.testing.assert_array_equal(columns[keys[0]], np.ones(300))
    got = as_lists(columns)["jagged"]
    assert [g.tolist() for g in got] == lists


def test_a_body_without_columns_is_returned_as_python_values() -> None:
    body = {"model": "m", "keys": ["a"], "rows": [[[1, 2]], [[3]]]}
    assert load_request(json.dumps(body).encode()) == (body, None)


def test_empty_lists_and_no_events() -> None:
    _, columns = load_request(b'{"model": "m", "keys": ["a", "b"], "columns": [[[], [ ]], [1, 2]]}')
    assert columns["a"].offsets.tolist() == [0, 0, 0] and len(columns["a"].content) == 0
    _, columns = load_request(b'{"model": "m", "keys": ["a"], "columns": [[]]}')
    assert len(columns["a"]) == 0


@pytest.mark.parametrize(("body", "message"), [
    (b'{"model": "m", "keys": ["a"], "columns": [[1], ', "the request body is not valid JSON"),
    (b'[1]', "the body must be a JSON object"),
    (b'{"model": "m", "keys": ["a"], "columns": [[1]], "rows": []}',
     "unknown member 'rows'"),
    (b'{"keys": ["a"], "columns": [[1]]}', 'naming the "model"'),
    (b'{"model": "m", "keys": "a", "columns": [[1]]}', "'keys' must be a list"),
    (b'{"model": "m", "keys": ["a", "b"], "columns": [[1]]}', "one column per key (2)"),
    (b'{"model": "m", "keys": ["a"], "columns": [1]}', "each column must be a list"),
    (b'{"model": "m", "keys": ["a"], "columns": [["x"]]}', "key 'a': expected a number"),
    (b'{"model": "m", "keys": ["a", "b"], "columns": [[1], [2, 3]]}',
     "key 'b' has 2 events, key 'a' has 1"),
    (b'{"model": "m", "keys": ["a"], "columns": [[[[1]], [2]]]}', "key 'a': lists of lists"),
    (b'{"model": "m", "keys": ["a"], "columns": [[[1], 2]]}', "key 'a': numbers mixed"),
])
def test_malformed_columns_get_one_clear_message(body: bytes, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        load_request(body)


