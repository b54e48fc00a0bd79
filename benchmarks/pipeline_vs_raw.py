"""Pipeline throughput against a raw uproot read of the same branches, in one run.

    .venv/bin/python benchmarks/pipeline_vs_raw.py --events 100000

Generates ttH(bb)-like samples (signal + background, ``--events`` each) unless
``--files``/``--labels`` are given, then measures on the same files:

- raw read: ``uproot.iterate`` over the branches the pipeline reads, one thread;
- the specs pass;
- chunk creation (read + new branches + cuts + flatten + normalise);

and prints events/s with the ratio to the raw read. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import uproot

from mlaas4hep.config import load_params, load_preproc, read_files_and_labels
from mlaas4hep.dataset import Dataset
from mlaas4hep.samples import make_signal_background


def measure(files: Path, labels: Path, params: Path | None, preproc: Path | None) -> dict:
    pairs = read_files_and_labels(files, labels)
    p = load_params(params)
    with Dataset.open(pairs, p, load_preproc(preproc)) as data:
        branches, tree = data.selection.read, p.branch
        n = data.plan.total
        t0 = time.perf_counter()
        for path, _ in pairs:
            for _ in uproot.iterate(f"{path}:{tree}", branches, step_size=p.chunk_size):
                pass
        raw = time.perf_counter() - t0
        t0 = time.perf_counter()
        specs = data.specs()
        specs_s = time.perf_counter() - t0
        p.cache_mb = 0
        t0 = time.perf_counter()
        for _ in data.chunks(specs):
            pass
        chunks_s = time.perf_counter() - t0
    return {"events": n, "branches_read": len(branches), "features": specs.n_features,
            "events_per_s": {"raw_read": n / raw, "specs_pass": n / specs_s,
                             "chunk_creation": n / chunks_s}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events per sample file")
    parser.add_argument("--files")
    parser.add_argument("--labels")
    parser.add_argument("--params", help="params.json (default: chunk_size 10000)")
    parser.add_argument("--preproc")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.files:
            files, labels = Path(args.files), Path(args.labels)
        else:
            signal, background = make_signal_background(tmp, args.events, seed=1)
            files, labels = Path(tmp, "files.txt"), Path(tmp, "labels.txt")
            files.write_text(f"{signal}\n{background}\n")
            labels.write_text("1\n0\n")
        result = measure(files, labels, args.params and Path(args.params),
                         args.preproc and Path(args.preproc))
    rates = result["events_per_s"]
    print(f"{result['events']} events, {result['branches_read']} branches read, "
          f"{result['features']} input columns")
    print(f"{'step':<16}{'events/s':>12}{'/ raw read':>12}")
    for step, rate in rates.items():
        print(f"{step:<16}{rate:>12.0f}{rate / rates['raw_read']:>12.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
