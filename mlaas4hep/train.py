"""The two training procedures and the final pass over the test split."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .backends.common import Features, features
from .config import Params
from .dataset import Chunk, Dataset
from .passes import PassReader
from .specs import Specs
from .split import SPLIT_NAMES, TEST, TRAIN, VALIDATION

log = logging.getLogger("mlaas4hep")

EpochHook = Callable[[dict[str, Any]], None]
StopCheck = Callable[[], bool]


def _log_epoch(record: dict[str, Any]) -> None:
    where = f"chunk {record['chunk'] + 1} " if "chunk" in record else ""
    values = "  ".join(f"{k} {v:.4f}" for k, v in record.items()
                       if k not in ("epoch", "chunk", "step", "steps_planned"))
    log.info("%sepoch %d: %s", where, record["epoch"] + 1, values)


def planned_steps(data: Dataset, params: Params) -> int:
    """Epoch records a full run makes: epochs per chunk in 'chunk' training, else epochs."""
    return params.epochs * (data.plan.n_chunks if params.training == "chunk" else 1)


def train(adapter: Any, data: Dataset, specs: Specs, params: Params,
          on_epoch: EpochHook | None = None, stop: StopCheck | None = None,
          ) -> list[dict[str, Any]]:
    """Train with ``params.training``; return one record per epoch (per chunk in 'chunk').

    ``on_epoch`` gets each record (with ``steps_planned``); when ``stop()``
    turns true, training ends after the current epoch.
    """
    history: list[dict[str, Any]] = []
    steps = planned_steps(data, params)
    stopping = stop or (lambda: False)

    def record(logs: dict[str, Any], **where: int) -> bool:
        entry = {**where, "step": len(history), **logs}  # logs holds "epoch"
        history.append(entry)
        _log_epoch(entry)
        if on_epoch is not None:
            on_epoch({**entry, "steps_planned": steps})
        return stopping()

    if hasattr(adapter, "fit_chunks"):  # scikit-learn, XGBoost: their own procedure
        def parts(split: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for chunk in data.chunks(specs, desc=SPLIT_NAMES[split], split=split):
                X, _, y = chunk.part(split, with_mask=False)
                yield X, y

        adapter.fit_chunks(parts, specs.n_features, sum(f["train"] for f in specs.files),
                           epochs=params.epochs, on_epoch=record)
    elif params.training == "chunk":
        for k, chunk in enumerate(data.chunks(specs, desc="training", prefetch=True)):
            X, mask, y = chunk.part(TRAIN, with_mask=adapter.wants_mask)
            if len(y) == 0:
                continue
            Xv, mask_v, yv = chunk.part(VALIDATION, with_mask=adapter.wants_mask)
            adapter.fit_arrays(features(X, mask, adapter.wants_mask), y,
                               (features(Xv, mask_v, adapter.wants_mask), yv.astype(np.float32))
                               if len(yv) else None,
                               epochs=params.epochs, batch_size=params.batch_size,
                               on_epoch=lambda logs, k=k: record(logs, chunk=k))
            if stopping():
                break
    else:
        passes = itertools.count()  # each pass over the training split is shuffled anew
        events = (sum(f["train"] for f in specs.files), sum(f["validation"] for f in specs.files))
        options = {"epochs": params.epochs, "batch_size": params.batch_size,
                   "on_epoch": record, "events": events}

        def chunks(split: int) -> Iterator[Chunk]:
            return data.chunks(specs, desc=SPLIT_NAMES[split], prefetch=True, split=split)

        validated = params.validation_fraction > 0 and events[1] > 0
        if validated and hasattr(adapter, "fit_stream_one_pass") and adapter.copyable():
            # one read per epoch
            both = (TRAIN, VALIDATION)
            with PassReader(data, specs, [both] * params.epochs + [VALIDATION],
                            with_mask=adapter.wants_mask) as reader:
                adapter.fit_stream_one_pass(
                    lambda: _paired_parts(reader.next(both), params, adapter.wants_mask,
                                          next(passes)),
                    lambda: _parts(reader.next(VALIDATION), params, VALIDATION,
                                   adapter.wants_mask, shuffle_pass=None),
                    specs.n_features, **options)
        else:
            adapter.fit_stream(
                lambda: _parts(chunks(TRAIN), params, TRAIN, adapter.wants_mask,
                               shuffle_pass=next(passes)),
                (lambda: _parts(chunks(VALIDATION), params, VALIDATION, adapter.wants_mask,
                                shuffle_pass=None)) if validated else None,
                specs.n_features, **options)
    if stopping():
        log.warning("training stopped on request after %d epoch record(s) of %d", len(history),
                    steps)
    return history


def _shuffle(params: Params, shuffle_pass: int | None) -> list[int] | None:
    """The seed of a pass's shuffle within each chunk (None: not shuffled)."""
    return [params.seed, shuffle_pass] if shuffle_pass is not None and params.shuffle else None


def _inputs(chunk: Chunk, split: int, wants_mask: bool, shuffle: list[int] | None = None,
            ) -> tuple[Features, np.ndarray]:
    """(inputs, y as float32) of one split of a chunk."""
    X, mask, y = chunk.part(split, with_mask=wants_mask, shuffle=shuffle)
    return features(X, mask, wants_mask), y.astype(np.float32)


def _parts(chunks: Iterator[Chunk], params: Params, split: int, wants_mask: bool,
           shuffle_pass: int | None) -> Iterator[tuple[Features, np.ndarray]]:
    """(inputs, y) of one split for each chunk; reshuffled within the chunk per pass when
    asked (the adapters cut them into mini-batches)."""
    shuffle = _shuffle(params, shuffle_pass)
    for chunk in chunks:
        part = _inputs(chunk, split, wants_mask, shuffle)
        if len(part[1]):
            yield part


def _paired_parts(chunks: Iterator[Chunk], params: Params, wants_mask: bool,
                  shuffle_pass: int) -> Iterator[tuple[tuple[Features, np.ndarray],
                                                       tuple[Features, np.ndarray]]]:
    """((inputs, y) training, (inputs, y) validation) for each chunk, from one read: the
    training events in the same order as :func:`_parts` gives them."""
    shuffle = _shuffle(params, shuffle_pass)
    for chunk in chunks:
        yield _inputs(chunk, TRAIN, wants_mask, shuffle), _inputs(chunk, VALIDATION, wants_mask)


def predict_split(adapter: Any, data: Dataset, specs: Specs, split: int = TEST,
                  each_chunk: Callable[[Chunk], None] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of every event of ``split`` (a pass over all chunks, the run's last:
    read from what earlier passes kept, else from the files, keeping nothing)."""
    labels, scores = [], []
    for chunk in data.chunks(specs, desc="testing", keep=False):
        if each_chunk is not None:
            each_chunk(chunk)
        X, mask, y = chunk.part(split, with_mask=adapter.wants_mask)
        labels.append(y)
        scores.append(adapter.predict(features(X, mask, adapter.wants_mask)))
    return np.concatenate(labels), np.concatenate(scores)
