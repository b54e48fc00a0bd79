"""Peak anonymous memory of XGBoost training from the chunk stream, for N and 4N events.

    .venv/bin/python benchmarks/xgboost_memory.py [--events 30000] [--json out.json]

Runs ``mlaas4hep prepare`` (reading only, one chunk at a time) and
``workflow.py`` with a fixed-size XGBoost model (60 rounds of depth-4 trees, so the
saved model, its ONNX copy and the plots cost the same for N and 4N) on N and 4N
generated events (same chunk size, ``cache_mb`` 0), polls each process's RssAnon and
prints the peaks, the growth from N to 4N and the growth of the float32
training matrix. A streaming trainer's growth stays well below the matrix's
(tests/test_backends.py runs this with --events 40000 and checks that).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlaas4hep.samples import make_sample_set

BIN = Path(sys.executable).parent
FIXED_SIZE_MODEL = """from xgboost import XGBClassifier


def model():
    return XGBClassifier(n_estimators=60, max_depth=4, early_stopping_rounds=1000)
"""


def peak_anon_mb(args: list[str], cwd: Path) -> float:
    """Run ``args``; the largest RssAnon seen (polled every 50 ms), in MB."""
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.05)
    if process.returncode:
        raise SystemExit(process.stderr.read().decode()[-3000:])
    return peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000, help="N (total, both files)")
    parser.add_argument("--json", type=Path, help="also write the numbers (MB) here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files, labels = make_sample_set(work / "samples", 2 * args.events, seed=1)
        model = work / "fixed_size_bdt.py"
        model.write_text(FIXED_SIZE_MODEL)
        rows = []
        for n in (args.events, 4 * args.events):
            params = work / f"params-{n}.json"
            params.write_text(json.dumps({"chunk_size": 5_000, "cache_mb": 0, "nevts": n,
                                          "identifier": ["runNo", "evtNo", "lumi"]}))
            common = [f"--files={files}", f"--labels={labels}", f"--params={params}"]
            read = peak_anon_mb([str(BIN / "mlaas4hep"), "prepare", *common], work)
            out = work / f"run-{n}"
            trained = peak_anon_mb([str(BIN / "workflow.py"), *common, f"--model={model}",
                                    f"--out-dir={out}"], work)
            metrics = json.loads((out / "metrics.json").read_text())
            matrix = sum(metrics["events"]["train"].values()) * metrics["n_features"] * 4 / 2**20
            rows.append((read, trained, matrix))
            print(f"{n:>8} events: prepare {read:7.0f} MB, xgboost {trained:7.0f} MB, "
                  f"training matrix {matrix:6.0f} MB")
        (r1, t1, m1), (r4, t4, m4) = rows
        print(f"growth N -> 4N: prepare {r4 - r1:+.0f} MB, xgboost {t4 - t1:+.0f} MB, "
              f"matrix {m4 - m1:+.0f} MB (xgboost/matrix = {(t4 - t1) / (m4 - m1):.2f})")
        if args.json:
            args.json.write_text(json.dumps({
                "events": [args.events, 4 * args.events], "prepare_mb": [r1, r4],
                "xgboost_mb": [t1, t4], "matrix_mb": [m1, m4]}, indent=1))


if __name__ == "__main__":
    main()
