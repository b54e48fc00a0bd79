"""The background reader: order kept, errors raised where they happen, threads stopped."""

from __future__ import annotations

import threading
import time

import pytest

from mlaas4hep.prefetch import prefetched


def test_items_arrive_in_order_and_ahead_of_the_consumer() -> None:
    produced: list[int] = []

    def items():
        for i in range(5):
            produced.append(i)
            yield i

    stream = prefetched(items(), depth=1)
    assert next(stream) == 0
    time.sleep(0.2)  # the producer runs ahead while the consumer works
    assert len(produced) >= 2
    assert list(stream) == [1, 2, 3, 4]


def test_the_producer_starts_before_the_first_item_is_asked_for() -> None:
    started = threading.Event()

    def items():
        started.set()
        yield 1

    stream = prefetched(items())
    assert started.wait(5), "nothing was produced until the consumer asked"
    assert list(stream) == [1]


def test_an_error_while_producing_is_raised_to_the_consumer_at_that_item() -> None:
    def items():
        yield 1
        raise ValueError("corrupt basket")

    stream = prefetched(items())
    assert next(stream) == 1
    with pytest.raises(ValueError, match="corrupt basket"):
        next(stream)


def test_stopping_early_stops_the_thread() -> None:
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    stream = prefetched(endless(), name="test-prefetch")
    assert next(stream) == 0
    stream.close()
    assert threading.active_count() == before
    assert list(stream) == []
    assert not any(t.name == "test-prefetch" for t in threading.enumerate())
