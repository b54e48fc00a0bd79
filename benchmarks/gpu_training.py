"""Streamed PyTorch training on a GPU: does the data pipeline keep the GPU busy?

    python benchmarks/gpu_training.py [--events 200000] [--device auto] [--json out.json]

Generates paper-shaped samples (22 flat + 52 jagged branches, zlib; ``--events``
each of signal and background) unless ``--files``/``--labels`` are given, then
trains the same PyTorch MLP through the framework's training loop, taking turns
``--repeat`` times:

- fed by the stream: every epoch reads the ROOT files again, prepares the
  chunks (flatten, normalise) on background threads and copies each chunk to
  the GPU once (``cache_mb`` and ``spill_mb`` 0, nothing kept);
- fed by the stream with the default ``cache_mb`` (1024): prepared chunks that
  fit are kept in host memory after the first epoch;
- on the same training events held in GPU memory (the upper bound).

It prints the median training throughput of each (events/s: the training
events over the time per epoch of the whole training), the median of each
round's streamed / in-memory throughput (two trainings run one after the
other), and the GPU
utilisation sampled every 50 ms while each ran (needs ``nvidia-ml-py``). With
no GPU it runs on the CPU (``--device cpu``) and says so. Not part of the tests;
``pipeline_vs_raw.py`` runs it too where torch sees a CUDA GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import epoch_seconds, in_memory_splits, open_dataset, sample_options, samples

TARGET = 0.9
"""Streamed throughput wanted, as a fraction of the in-memory throughput."""


def cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA GPU."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


class UtilisationSampler:
    """Mean GPU utilisation (%) over a block, from NVML every 50 ms; None without NVML."""

    def __init__(self, index: int = 0):
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._rate = pynvml.nvmlDeviceGetUtilizationRates
        except Exception:  # no NVML library or no NVIDIA GPU: utilisation not reported
            self._handle = None

    @contextmanager
    def sampling(self, into: list[float]) -> Iterator[None]:
        """Append utilisation samples to ``into`` while the block runs."""
        if self._handle is None:
            yield
            return
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.05):
                into.append(float(self._rate(self._handle).gpu))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def mlp(idim: int, width: int) -> Any:
    """Three hidden layers of ``width``, one logit out."""
    from torch import nn

    return nn.Sequential(nn.Linear(idim, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))


def torch_epochs(files: Path, labels: Path, *, device: str = "auto", repeat: int = 3,
                 epochs: int = 4, batch_size: int = 1024, width: int = 256,
                 chunk_size: int = 20_000) -> dict:
    """Training throughput fed by the stream and from GPU memory (see the module docstring)."""
    import torch

    from mlaas4hep.backends import adapter_for
    from mlaas4hep.backends.common import seed_everything
    from mlaas4hep.train import train

    base = {"chunk_size": chunk_size, "batch_size": batch_size, "epochs": epochs,
            "training": "standard", "cache_mb": 0, "spill_mb": 0, "device": device,
            "identifier": ["runNo", "evtNo", "lumi"]}
    sampler = UtilisationSampler()

    def adapter(n_features: int) -> Any:
        seed_everything(1)
        return adapter_for(mlp(n_features, width), where="benchmark", device=device)

    def streamed(utilisation: list[float], cache_mb: int = 0) -> float:
        with open_dataset(files, labels, {**base, "cache_mb": cache_mb}) as data:
            specs = data.specs()
            model = adapter(specs.n_features)
            with sampler.sampling(utilisation):
                return epoch_seconds(lambda hook: train(model, data, specs, data.params, hook))

    n_features, X, y, Xv, yv = in_memory_splits(files, labels, base)

    def in_memory(utilisation: list[float]) -> float:
        model = adapter(n_features)
        with sampler.sampling(utilisation):
            return epoch_seconds(lambda hook: model.fit_arrays(
                X, y, (Xv, yv), epochs=epochs, batch_size=batch_size, on_epoch=hook))

    used = adapter(n_features).device
    stream_util: list[float] = []
    cached_util: list[float] = []
    memory_util: list[float] = []
    rounds = [(streamed(stream_util), in_memory(memory_util), streamed(cached_util, 1024))
              for _ in range(repeat)]
    stream_s, memory_s, cached_s = (statistics.median(r) for r in zip(*rounds, strict=True))
    ratios = [memory / streamed for streamed, memory, _ in rounds]
    name = torch.cuda.get_device_name(used) if used.type == "cuda" else "CPU"
    return {"device": str(used), "device_name": name, "train_events": len(y),
            "features": n_features, "batch_size": batch_size, "width": width,
            "streamed_events_per_s": len(y) / stream_s,
            "streamed_cache_1024mb_events_per_s": len(y) / cached_s,
            "in_memory_events_per_s": len(y) / memory_s, "ratio": statistics.median(ratios),
            "round_ratios": ratios,
            "gpu_utilisation_streamed": _mean(stream_util),
            "gpu_utilisation_streamed_cache_1024mb": _mean(cached_util),
            "gpu_utilisation_in_memory": _mean(memory_util)}


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def report(result: dict) -> bool:
    """Print the result; True if the streamed throughput reaches TARGET x in-memory."""
    def utilisation(key: str) -> str:
        return "n/a" if result[key] is None else f"{result[key]:.0f}%"

    print(f"PyTorch MLP ({result['width']} wide, 3 layers) on {result['device_name']} "
          f"({result['device']}), {result['train_events']} training events x "
          f"{result['features']} features, batch {result['batch_size']}")
    print(f"  streamed from ROOT files: {result['streamed_events_per_s']:>10.0f} events/s, "
          f"GPU busy {utilisation('gpu_utilisation_streamed')}")
    print(f"  streamed, cache_mb 1024:  "
          f"{result['streamed_cache_1024mb_events_per_s']:>10.0f} events/s, "
          f"GPU busy {utilisation('gpu_utilisation_streamed_cache_1024mb')}")
    memory = "GPU memory:" if result["device"].startswith("cuda") else "host memory:"
    print(f"  from {memory:<20}{result['in_memory_events_per_s']:>10.0f} events/s, "
          f"GPU busy {utilisation('gpu_utilisation_in_memory')}")
    holds = result["ratio"] >= TARGET
    print(f"{'OK  ' if holds else 'MISS'} streamed >= {TARGET} x in-memory throughput: "
          f"{result['ratio']:.2f} (rounds: "
          + " ".join(f"{r:.2f}" for r in result["round_ratios"]) + ")")
    return holds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sample_options(parser, events=200_000)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files, labels = samples(args, Path(tmp))
        result = torch_epochs(files, labels, device=args.device, repeat=args.repeat,
                              batch_size=args.batch_size)
    result["holds"] = report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
