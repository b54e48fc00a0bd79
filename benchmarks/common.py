"""What the benchmarks share: the command-line options for their samples, the samples
themselves, opening the pipeline on them, and epoch timing."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlaas4hep.config import parse_params, parse_preproc, read_files_and_labels
from mlaas4hep.dataset import Dataset
from mlaas4hep.samples import make_sample_set
from mlaas4hep.split import TRAIN, VALIDATION


def sample_options(parser: argparse.ArgumentParser, events: int) -> None:
    """``--events``, ``--repeat``, ``--files``, ``--labels`` and ``--json``."""
    parser.add_argument("--events", type=int, default=events, help="events per sample file")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--files", type=Path, help="files.txt (default: generate samples)")
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--json", type=Path, help="also write the results here")


def samples(args: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    """files.txt and labels.txt: the given ones, or paper-shaped samples made in ``work``."""
    if args.files:
        return args.files, args.labels
    print(f"generating 2 x {args.events} paper-shaped events ...", flush=True)
    return make_sample_set(work / "samples", args.events, seed=1)


def open_dataset(files: Path, labels: Path, params: dict, preproc: dict | None = None
                 ) -> Dataset:
    """The pipeline on these inputs with these params (over the defaults) and cuts."""
    return Dataset.open(read_files_and_labels(files, labels), parse_params(params),
                        parse_preproc(preproc or {}))


def epoch_seconds(fit: Callable[[Callable[[dict], None]], None]) -> float:
    """Wall time of ``fit(on_epoch)`` per epoch reported: the whole training (validation,
    graph building and the first epoch's warm-up included) over its epochs, what a user waits
    for. (Epoch reports can come late: a streamed Keras epoch is reported once its validation,
    done during the next epoch, is over.)"""
    epochs: list[dict] = []
    t0 = time.perf_counter()
    fit(epochs.append)
    return (time.perf_counter() - t0) / len(epochs)


def in_memory_splits(files: Path, labels: Path, params: dict
                     ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features, X, y, X_validation, y_validation): the training and validation events of a
    pass over the pipeline, held in memory (y as float32)."""
    with open_dataset(files, labels, params) as data:
        specs = data.specs()
        parts = [(c.part(TRAIN, with_mask=False), c.part(VALIDATION, with_mask=False))
                 for c in data.chunks(specs)]
    X, y = (np.concatenate([t[i] for t, _ in parts]) for i in (0, 2))
    Xv, yv = (np.concatenate([v[i] for _, v in parts]) for i in (0, 2))
    return specs.n_features, X, y.astype(np.float32), Xv, yv.astype(np.float32)
