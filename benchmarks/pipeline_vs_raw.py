"""The data pipeline against a raw uproot read of the same files and branches, in one run.

    .venv/bin/python benchmarks/pipeline_vs_raw.py [--events 100000] [--repeat 3]
                                                  [--json results.json]

Generates paper-shaped samples (22 flat + 52 jagged branches, zlib; signal and
background, ``--events`` each) unless ``--files``/``--labels`` are given, then
measures, each the median of ``--repeat`` rounds, all on the same files (in each
round the steps compared run one after another, and each ratio is the median of
the rounds' ratios, so a change of machine speed between rounds cancels):

- raw read: ``uproot.iterate`` over the branches the pipeline reads, one thread,
  with uproot's defaults (zlib, fsspec reads: the reference every ratio is taken
  against); and once more read as the pipeline reads (ISA-L where ``isal`` is
  installed, ``pread`` of local files), to show how much of the gain is the
  reading setup's;
- the specs pass;
- chunk creation (read + new branches + cuts + flatten + normalise into
  training-ready arrays) for each column of the paper's table: no cut, flat
  cut, jagged cut, new-branch cut, mixed cuts; with one thread, and with
  parallel decompression (``threads`` = the cores);
- peak RSS of ``mlaas4hep prepare`` on N and 10N events at the same chunk size;
- the epoch time of a small Keras model fed by the stream against the same model
  on in-memory arrays, three ways: re-reading the ROOT files every epoch
  (``spill_mb`` 0), with memory bounded by the chunk size (``cache_mb`` 0: the
  prepared chunks are spilled to local disk after the first epoch; the
  target), and with the default ``cache_mb`` (kept in memory);
- where torch sees a CUDA GPU, streamed PyTorch training throughput on it
  against the same model on events held in GPU memory (``gpu_training.py``).

It prints a table with events/s, the ratio to the raw read and the factor
over the original MLaaS4HEP's figures (1.1k-1.4k events/s for chunk creation,
125 events/s with a jagged or new-branch cut), the targets and whether they
hold, and writes it all as JSON. Files are read from the page cache after the
first pass (every step reads warm files), but every pass decompresses and
interprets every basket it uses: nothing is cached between passes unless the
step says so. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import uproot
from common import epoch_seconds, in_memory_splits, open_dataset, sample_options, samples
from gpu_training import cuda_available, torch_epochs
from gpu_training import report as gpu_report

from mlaas4hep.dataset import Dataset
from mlaas4hep.decompression import use_fast_zlib, zlib_library
from mlaas4hep.sources import LOCAL_READS

PAPER_EVENTS_PER_S = {"none": 1250.0, "flat": 1250.0, "jagged": 125.0, "new_branch": 125.0,
                      "mixed": 125.0}
"""The original's chunk creation rates (its paper's tables: 1.1k-1.4k events/s, about 125
events/s once a jagged cut or a new branch is involved)."""

CUTS: dict[str, dict] = {
    "none": {},
    "flat": {"flat_cut": {"nLeptons": {"cut": "0<=nLeptons<=2", "remove": "False"}}},
    "jagged": {"jagged_cut": {"partonPt": {"cut": ["partonPt>20", "any"], "remove": "False"}}},
    "new_branch": {"new_branch": {"log_partonE": {
        "def": "log(partonE)", "type": "jagged", "cut_1": ["log_partonE<8", "any"],
        "remove": "False", "keys_to_remove": []}}},
    "mixed": {
        "new_branch": {
            "log_partonE": {"def": "log(partonE)", "type": "jagged",
                            "cut_1": ["log_partonE<8", "any"], "remove": "False",
                            "keys_to_remove": []},
            "nJets_square": {"def": "nJets**2", "type": "flat", "cut": "1<=nJets_square<=144",
                             "remove": "False", "keys_to_remove": []}},
        "flat_cut": {"nLeptons": {"cut": "0<=nLeptons<=2", "remove": "False"}},
        "jagged_cut": {"partonPt": {"cut": ["partonPt>20", "any"], "remove": "False"}}},
}
"""The paper's table columns as preproc.json contents."""

TARGETS = {
    "chunk creation >= 0.8 x raw read, every cut column (one thread)": 0.8,
    "chunk creation >= 1.3 x raw read, every cut column (parallel)": 1.3,
    "specs pass >= 0.9 x raw read": 0.9,
    "peak RSS at 10N <= 1.1 x peak RSS at N": 1.1,
    "streamed Keras epoch (memory bounded by the chunk size) <= 1.15 x in-memory epoch": 1.15,
}


def in_turns(steps: dict[str, Callable[[], object]], events: int, repeat: int
             ) -> dict[str, list[float]]:
    """Events/s of each step in each of ``repeat`` rounds, the steps run one after another in
    every round (after one untimed warm-up run of each: page cache, compiled kernels), so a
    change of machine speed hits the steps of a round alike."""
    for run in steps.values():
        run()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeat):
        for name, run in steps.items():
            t0 = time.perf_counter()
            run()
            rates[name].append(events / (time.perf_counter() - t0))
    return rates


def decompressed_baskets(run: Callable[[], object]) -> int:
    """Baskets that ``run()`` decompresses (every timed step must read the files)."""
    seen: list[int] = []
    decompress = uproot.compression.decompress
    original = decompress.hook_before_block
    decompress.hook_before_block = lambda **_: seen.append(1)
    try:
        run()
    finally:
        decompress.hook_before_block = original
    return len(seen)


def throughput(files: Path, labels: Path, base: dict, repeat: int) -> dict:
    """Events/s of the raw read, the specs pass and chunk creation per cut column (medians
    of the rounds), and each step's ratio to the raw read (median of the rounds' ratios)."""
    out: dict = {"columns": {}}
    library = use_fast_zlib()  # what the pipeline inflates with (Dataset.open sets it too)
    for column, preproc in CUTS.items():
        with open_dataset(files, labels, {**base, "threads": 1}, preproc) as data, \
                open_dataset(files, labels, {**base, "threads": 0}, preproc) as parallel:
            branches, n = data.selection.read, data.plan.total
            specs = data.specs()

            def read(data: Dataset = data, branches: list[str] = branches,
                     **options: object) -> None:
                for source in data.inputs:
                    for _ in uproot.iterate(f"{source.path}:{data.params.branch}", branches,
                                            step_size=data.params.chunk_size, **options):
                        pass

            def raw() -> None:
                zlib_library("zlib")  # the reference: uproot as installed, its defaults
                try:
                    read()
                finally:
                    zlib_library(library)

            steps: dict[str, Callable[[], object]] = {
                "raw_read": raw,
                "chunks": lambda data=data, specs=specs: [
                    None for _ in data.chunks(specs, keep=False)],
                "chunks_parallel": lambda data=parallel, specs=specs: [
                    None for _ in data.chunks(specs, keep=False)]}
            if column == "none":
                steps |= {"raw_read_pipeline_io": lambda: read(**LOCAL_READS),
                          "specs_pass": data.specs}
            rates = in_turns(steps, n, repeat)
            for name, run in steps.items():
                if not decompressed_baskets(run):
                    raise RuntimeError(f"{column}: step {name} read no basket: it measured "
                                       "something kept from an earlier pass")
        result = {"events": n, "branches_read": len(branches), "features": specs.n_features,
                  "selected": specs.events, "zlib_library": library,
                  **{name: statistics.median(r) for name, r in rates.items()},
                  "ratio": {name: statistics.median(a / b for a, b in
                                                    zip(r, rates["raw_read"], strict=True))
                            for name, r in rates.items()}}
        out["columns"][column] = result
    return out


def peak_rss_mb(files: Path, labels: Path, nevts: int, chunk_size: int, work: Path) -> float:
    """Peak RSS (MB) of ``mlaas4hep prepare`` over ``nevts`` events, in a fresh process."""
    params = work / f"params-{nevts}.json"
    params.write_text(json.dumps({"nevts": nevts, "chunk_size": chunk_size, "cache_mb": 0,
                                  "identifier": ["runNo", "evtNo", "lumi"]}))
    code = ("import resource, sys\nfrom mlaas4hep.workflow import prepare\n"
            "prepare(sys.argv[1], sys.argv[2], sys.argv[3])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", code, str(files), str(labels), str(params)],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1024


STREAMS = {
    "reread": {"cache_mb": 0, "spill_mb": 0},
    "spilled": {"cache_mb": 0},
    "cached": {},
}
"""The streamed Keras trainings: every epoch decompressing and preparing the ROOT files
again; memory bounded by the chunk size, the prepared chunks spilled to local disk after the
first epoch (the default spill_mb); the default cache_mb (1 GiB), chunks kept in memory."""


def keras_epochs(files: Path, labels: Path, base: dict, repeat: int, epochs: int = 4) -> dict:
    """Median time per epoch (a whole training of ``epochs`` epochs over them) of a small
    Keras MLP fed by the stream in each way of :data:`STREAMS`, and on the same events held in
    memory. After a warm-up round, the trainings take turns ``repeat`` times, an in-memory
    training before and after each streamed one, so a change of machine load hits them alike;
    each ratio is the median of the rounds' streamed / in memory (the mean of the two
    in-memory trainings around it, so a load that grows or falls steadily cancels)."""

    from mlaas4hep.backends import adapter_for
    from mlaas4hep.backends.common import seed_everything
    from mlaas4hep.train import train

    def small_mlp(idim: int) -> object:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        net = keras.Sequential([keras.Input((idim,)), keras.layers.Dense(64, activation="relu"),
                                keras.layers.Dense(1, activation="sigmoid")])
        net.compile(optimizer="adam", loss="binary_crossentropy")
        return net

    def streamed_epoch(keeping: dict) -> float:
        params = {**{k: v for k, v in base.items() if k != "cache_mb"}, "epochs": epochs,
                  "training": "standard", "threads": 0, **keeping}
        with open_dataset(files, labels, params, {}) as data:
            specs = data.specs()
            seed_everything(1)
            model = adapter_for(small_mlp(specs.n_features), where="benchmark")
            return epoch_seconds(lambda hook: train(model, data, specs, data.params, hook))

    n_features, X, y, Xv, yv = in_memory_splits(files, labels, {**base, "threads": 0})

    def in_memory_epoch() -> float:
        seed_everything(1)
        model = adapter_for(small_mlp(n_features), where="benchmark")
        return epoch_seconds(lambda hook: model.fit_arrays(
            X, y, (Xv, yv), epochs=epochs, batch_size=base["batch_size"], on_epoch=hook))

    def one_round() -> tuple[list[float], dict[str, tuple[float, float]]]:
        """The in-memory trainings' times, and (seconds, / in memory) of each streamed one."""
        memory, streamed = [in_memory_epoch()], {}
        for name, keeping in STREAMS.items():
            seconds = streamed_epoch(keeping)
            memory.append(in_memory_epoch())
            streamed[name] = (seconds, seconds / statistics.mean(memory[-2:]))
        return memory, streamed

    one_round()  # warm-up, untimed: TensorFlow's first-use costs
    rounds = [one_round() for _ in range(repeat)]
    return {"in_memory_s": statistics.median(t for memory, _ in rounds for t in memory),
            **{name: {"seconds": statistics.median(r[name][0] for _, r in rounds),
                      "ratio": statistics.median(r[name][1] for _, r in rounds),
                      "round_ratios": [r[name][1] for _, r in rounds]} for name in STREAMS},
            "train_events": len(y), "batch_size": base["batch_size"]}


def report(result: dict) -> list[tuple[str, float, float, bool]]:
    """Print the table; return (target, limit, value, holds) rows."""
    columns = result["throughput"]["columns"]
    print(f"{columns['none']['events']} events read per pass, "
          f"{columns['none']['branches_read']} branches, {columns['none']['features']} "
          f"input columns; median of {result['repeat']}; {os.cpu_count()} cores")
    print(f"{'column':<12}{'step':<26}{'events/s':>11}{'/ raw':>8}{'x paper':>9}")
    for column, r in columns.items():
        steps = [("raw read (1 thread)", "raw_read"), ("chunks (1 thread)", "chunks"),
                 ("chunks (parallel)", "chunks_parallel")]
        if "specs_pass" in r:
            steps[1:1] = [(f"raw read, {r['zlib_library']}+pread", "raw_read_pipeline_io"),
                          ("specs pass (1 thread)", "specs_pass")]
        for step, name in steps:
            paper = (f"{r[name] / PAPER_EVENTS_PER_S[column]:>9.0f}"
                     if name.startswith("chunks") else "")
            print(f"{column:<12}{step:<26}{r[name]:>11.0f}{r['ratio'][name]:>8.2f}{paper}")
    rss, keras = result["rss_mb"], result["keras"]
    print(f"peak RSS: {rss['N']:.0f} MB at {rss['events'][0]} events, {rss['10N']:.0f} MB at "
          f"{rss['events'][1]} (chunk size {rss['chunk_size']})")
    print(f"Keras epoch ({keras['train_events']} training events, batch {keras['batch_size']}),"
          f" in memory {keras['in_memory_s']:.2f} s; fed by the stream:")
    for name, how in (("reread", "re-reading the ROOT files each epoch (spill_mb 0)"),
                      ("spilled", "cache_mb 0, spilled to disk after the first epoch"),
                      ("cached", "default cache_mb, kept in memory after the first epoch")):
        print(f"  {how:<56}{keras[name]['seconds']:.2f} s, / in memory "
              f"{keras[name]['ratio']:.2f} (rounds "
              + " ".join(f"{r:.2f}" for r in keras[name]["round_ratios"]) + ")")
    worst = {name: min(r["ratio"][name] for r in columns.values())
             for name in ("chunks", "chunks_parallel")}
    values = [worst["chunks"], worst["chunks_parallel"],
              columns["none"]["ratio"]["specs_pass"],
              rss["10N"] / rss["N"], keras["spilled"]["ratio"]]
    rows = []
    for (target, limit), value in zip(TARGETS.items(), values, strict=True):
        holds = value >= limit if ">=" in target else value <= limit
        rows.append((target, limit, value, holds))
        print(f"{'OK  ' if holds else 'MISS'} {target}: {value:.2f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sample_options(parser, events=100_000)
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256, help="for the Keras epochs")
    args = parser.parse_args()
    base = {"chunk_size": args.chunk_size, "batch_size": args.batch_size, "cache_mb": 0,
            "identifier": ["runNo", "evtNo", "lumi"]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files, labels = samples(args, work)
        result: dict = {"repeat": args.repeat, "cores": os.cpu_count()}
        result["throughput"] = throughput(files, labels, base, args.repeat)
        total = result["throughput"]["columns"]["none"]["events"]
        n = total // 10
        result["rss_mb"] = {"events": [n, total], "chunk_size": args.chunk_size,
                            "N": peak_rss_mb(files, labels, n, args.chunk_size, work),
                            "10N": peak_rss_mb(files, labels, total, args.chunk_size, work)}
        result["keras"] = keras_epochs(files, labels, base, args.repeat)
        if cuda_available():  # streamed training throughput on the GPU
            result["gpu"] = torch_epochs(files, labels, repeat=args.repeat)
    result["targets"] = [{"target": t, "limit": lim, "value": v, "holds": ok}
                         for t, lim, v, ok in report(result)]
    if "gpu" in result:
        result["gpu"]["holds"] = gpu_report(result["gpu"])
    else:
        print("no CUDA GPU seen by torch: the GPU training measurement was not made")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
