"""The whole workflow and the data-only ``prepare`` step, as Python functions.

The CLI, the wizard and the services call these; nothing here prints
except through the ``mlaas4hep`` logger.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Params, Preproc, load_params, load_preproc, read_files_and_labels
from .dataset import Chunk, Dataset
from .model_loader import build_model, load_model_module
from .onnx_export import CHECK_EVENTS, export_onnx
from .outputs import RunFolder, write_json
from .plots import plot_history, plot_input_histograms
from .reports import InputHistograms
from .specs import Specs
from .tasks import class_weights, task_for
from .train import EpochHook, StopCheck, predict_split, train

log = logging.getLogger("mlaas4hep")
NAMES = {"auc": "AUC", "mae": "MAE", "signal_efficiency": "signal efficiency at 0.5",
         "background_efficiency": "background efficiency at 0.5"}


@dataclass
class Inputs:
    """Everything a run reads, checked."""

    pairs: list[tuple[str, int]]
    params: Params
    preproc: Preproc


def load_inputs(files: str | Path, labels: str | Path, params: str | Path | None = None,
                preproc: str | Path | None = None, *, seed: int | None = None,
                dask: str | None = None) -> Inputs:
    """Read and check files.txt, labels.txt, params.json and preproc.json (``seed`` and
    ``dask`` override the params)."""
    loaded = Inputs(read_files_and_labels(files, labels),
                    load_params(params, seed=seed, dask=dask), load_preproc(preproc))
    log.info("model parameters: %s", loaded.params.to_dict())
    return loaded


def _specs(data: Dataset, reuse: str | Path | None, client: Any = None
           ) -> tuple[Specs, float]:
    t0 = time.perf_counter()
    if client is None and data.params.dask:
        from .distributed import dask_client

        with dask_client(data.params.dask) as client:
            specs = data.specs(reuse, client=client)
    else:
        specs = data.specs(reuse, client=client)
    seconds = time.perf_counter() - t0
    log.info(specs.summary())
    for f in specs.files:
        log.info("label %d, %s: %d of %d entries read, %d pass the cuts "
                 "(train %d, validation %d, test %d)", f["label"], f["path"], f["read"],
                 f["entries"], f["selected"], f["train"], f["validation"], f["test"])
    return specs, seconds


def run_workflow(files: str | Path, labels: str | Path, model: str | Path,
                 params: str | Path | None = None, preproc: str | Path | None = None, *,
                 specs: str | Path | None = None, out_dir: str | Path | None = None,
                 fout: str = "model.keras", seed: int | None = None, overwrite: bool = False,
                 dask: str | None = None, on_epoch: EpochHook | None = None,
                 stop: StopCheck | None = None) -> Path:
    """Read, preprocess, train, test and write every output; return the output folder.

    ``on_epoch`` is called with each epoch's record (loss, accuracy, auc and
    their ``val_`` forms); when ``stop()`` turns true, training ends after the
    current epoch and the run is tested and written as usual (``"stopped":
    true`` in metrics.json).
    """
    inputs = load_inputs(files, labels, params, preproc, seed=seed, dask=dask)
    task = task_for(inputs.pairs, labels, inputs.params.target)
    load_model_module(model)  # fail on a broken model.py before reading any data
    p = inputs.params
    started = time.perf_counter()
    folder = RunFolder(out_dir, overwrite=overwrite)
    with folder as work, \
            Dataset.open(inputs.pairs, p, inputs.preproc) as data:
        spec, specs_seconds = _specs(data, specs)
        spec.save(work / "global-specs.json")
        log.info("write %s", work / "global-specs.json")

        from .backends import adapter_for
        from .backends.common import Features, features, seed_everything

        seed_everything(p.seed)
        adapter = adapter_for(build_model(model, spec.n_features, task.n_classes),
                              where=str(model), task=task, device=p.device)
        counts = data.split_counts(spec)
        adapter.class_weight = class_weights(p.class_weight, task,
                                             {int(k): n for k, n in counts["train"].items()})
        if adapter.class_weight:
            log.info("class weights: %s", ", ".join(
                f"class {k} x{w:.3f}" for k, w in adapter.class_weight.items()))
        t0 = time.perf_counter()
        history = train(adapter, data, spec, p, on_epoch, stop)
        train_seconds = time.perf_counter() - t0

        histograms = InputHistograms(spec, p.normalisation) if p.hist else None
        check_batch: list[Features] = []

        def each_chunk(chunk: Chunk) -> None:
            if not check_batch:
                check_batch.append(features(chunk.X[:CHECK_EVENTS], chunk.mask[:CHECK_EVENTS],
                                            adapter.wants_mask))
            if histograms is not None:
                histograms.add(chunk)

        y, score = predict_split(adapter, data, spec, each_chunk=each_chunk)
        test = task.metrics(y, score)
        if task.binary:  # the working point score >= 0.5
            test["signal_efficiency"] = float(np.mean(score[y == 1] >= 0.5))
            test["background_efficiency"] = float(np.mean(score[y == 0] >= 0.5))
        model_path = adapter.save(work / fout)
        onnx = export_onnx(adapter, model_path.with_suffix(".onnx"), check_batch[0], task)
        plots = plot_history(history, work) + task.plots(y, score, work)
        if histograms is not None:
            plots += plot_input_histograms(histograms.result(), work / p.hist)
        write_json(work / "metrics.json", {
            "test": {**test, "events": len(y)},
            "history": history,
            "events": counts,
            "n_features": spec.n_features,
            "training": p.training,
            "task": task.name,
            "classes": task.n_classes,
            "class_weight": {str(k): w for k, w in (adapter.class_weight or {}).items()},
            "stopped": bool(stop and stop()),
            "backend": adapter.name,
            "model": model_path.name,
            "onnx": onnx,
            "seconds": {"specs": specs_seconds, "training": train_seconds,
                        "total": time.perf_counter() - started},
        })
        write_json(work / "params.json", p.to_dict())
        write_json(work / "preproc.json", inputs.preproc.source)
        (work / "files.txt").write_text("".join(f"{f}\n" for f, _ in inputs.pairs))
        (work / "labels.txt").write_text("".join(f"{lab}\n" for _, lab in inputs.pairs))
        log.info("test split: %d events, %s", len(y),
                 ", ".join(f"{NAMES.get(k, k)} {v:.4f}" for k, v in test.items()))
    log.info("outputs (model %s%s, metrics.json, %d plots) in %s", model_path.name,
             f" and {onnx['file']}" if "file" in onnx else "", len(plots), folder.final)
    return folder.final


@dataclass
class Prepared:
    """Result of :func:`prepare`: timings, throughput and where arrays went."""

    specs: Specs
    events_read: int
    events_selected: int
    specs_seconds: float
    chunks_seconds: float
    output: Path | None

    @property
    def events_per_second(self) -> dict[str, float]:
        """Entries read per second in the specs pass and in chunk creation."""
        return {"specs": self.events_read / max(self.specs_seconds, 1e-9),
                "chunks": self.events_read / max(self.chunks_seconds, 1e-9)}


def prepare(files: str | Path, labels: str | Path, params: str | Path | None = None,
            preproc: str | Path | None = None, *, specs: str | Path | None = None,
            output: str | Path | None = None, seed: int | None = None,
            dask: str | None = None) -> Prepared:
    """Run only the data pipeline; optionally write X, mask, y, split to ``output`` (.npz).

    With ``dask`` (or params 'dask'), the specs pass and chunk creation run on that Dask
    cluster ('local' = a LocalCluster here); the arrays are the same.
    """
    inputs = load_inputs(files, labels, params, preproc, seed=seed, dask=dask)
    with Dataset.open(inputs.pairs, inputs.params, inputs.preproc) as data, \
            _maybe_dask(inputs.params.dask) as client:
        spec, specs_seconds = _specs(data, specs, client)
        t0 = time.perf_counter()
        parts: dict[str, list[np.ndarray]] = {"X": [], "mask": [], "y": [], "split": []}
        if client is not None:
            from .distributed import prepared_chunks

            chunks = prepared_chunks(data, spec, client, keep=output is not None)
        else:
            chunks = data.chunks(spec, desc="preparing", keep=False)
        for chunk in chunks:
            if output is not None:
                for key in parts:
                    parts[key].append(getattr(chunk, key))
        chunks_seconds = time.perf_counter() - t0
        names = data.feature_names(spec)
    written = None
    if output is not None:
        written = _write_arrays(Path(output), parts, names, spec)
    result = Prepared(spec, sum(f["read"] for f in spec.files),
                      spec.events, specs_seconds, chunks_seconds, written)
    rate = result.events_per_second
    log.info("specs pass: %d events in %.2f s (%.0f events/s); chunk creation: %.2f s "
             "(%.0f events/s); %d events pass the cuts, %d features", result.events_read,
             specs_seconds, rate["specs"], chunks_seconds, rate["chunks"],
             result.events_selected, spec.n_features)
    return result


@contextmanager
def _maybe_dask(address: str) -> Iterator[Any]:
    """A Dask client when ``address`` is set, else None."""
    if not address:
        yield None
        return
    from .distributed import dask_client

    with dask_client(address) as client:
        yield client


def _write_arrays(path: Path, parts: dict[str, list[np.ndarray]], names: list[str],
                  spec: Specs) -> Path:
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.incomplete-{os.getpid()}")
    arrays: dict[str, Any] = {k: np.concatenate(v) for k, v in parts.items()}
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays, feature_names=np.array(names), specs_hash=spec.hash)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s: X %s, mask, y, split (0 train, 1 validation, 2 test)", path,
             arrays["X"].shape)
    return path
