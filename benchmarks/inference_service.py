"""Throughput and latency of the inference service on loopback.

    .venv/bin/python benchmarks/inference_service.py [--events 20000] [--seconds 10]
                                                      [--clients 20] [--processes N]
                                                      [--json out.json]

Trains the example Keras MLP (``mlaas4hep/examples/model.py`` with the example
params.json and preproc.json: new branches, flat and jagged cuts) for one
epoch on generated ttH(bb)-like samples, starts the dev IAM and the real
inference service (``python -m mlaas4hep_hub.inference_service``, as the hub
runs it, without the proxy in front, with ``--processes``: default one per
core, the hub's default too), uploads the output folder and measures,
each for ``--seconds``, with an IAM bearer token on every request:

- batched: ``--batch`` events (raw branch values) per request, 2 clients, events/s:
  ``POST /arrays`` (a numpy.savez body of the arrays uproot gives: the binary
  form), and ``POST /json`` with
  ``columns`` (one list per key) and with ``rows`` (one list per event);
- ROOT file: ``POST /predict/root`` on the signal file: events/s;
- single rows: ``--clients`` concurrent clients each sending one event at a
  time, after a 3 s warm-up: requests/s, p50 and p99 latency, errors. The load
  comes from wrk (``apt install wrk``; ``make bench`` installs it), which
  leaves the cores to the service; without it, from aiohttp in this process
  (about half a core at 800 requests/s).

Targets: >= 100k events/s batched (the fastest form: binary arrays), p50 < 10 ms
single-row, zero errors. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import jwt
import numpy as np
import requests
import uproot

from mlaas4hep.samples import make_sample_set
from mlaas4hep.services.arrays import CONTENT_TYPE, pack_arrays
from mlaas4hep.workflow import run_workflow
from mlaas4hep_hub.devidp import DevIdP

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "mlaas4hep" / "examples"


def train(work: Path, events: int) -> tuple[Path, Path]:
    """The example model trained on generated samples; (output folder, signal file)."""
    files, labels = make_sample_set(work / "samples", events, seed=1)
    params = json.loads((EXAMPLES / "params.json").read_text())
    params.update(epochs=1, hist="", verbose=0, chunk_size=50_000)
    (work / "params.json").write_text(json.dumps(params))
    run = run_workflow(files, labels, EXAMPLES / "model.py", work / "params.json",
                       EXAMPLES / "preproc.json", out_dir=work / "run")
    return run, work / "samples" / "signal.root"


def bearer_token(idp: DevIdP) -> str:
    """An access token signed with the dev IAM's own key (as the IAM would issue it)."""
    keys = json.loads(idp.keys_path.read_text())
    jwk = keys["keys"][0] if "keys" in keys else keys
    now = int(time.time())
    claims = {"iss": idp.issuer, "sub": "bench", "preferred_username": "alice",
              "groups": ["cms"], "iat": now, "exp": now + 3600}
    return jwt.encode(claims, jwt.PyJWK(jwk).key, algorithm="RS256",
                      headers={"kid": jwk["kid"]})


def start_service(work: Path, idp: DevIdP, port: int, processes: int) -> subprocess.Popen:
    jwks = requests.get(idp.discovery_url, timeout=10).json()["jwks_uri"]
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": "unused-bearer-only",
           "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
           "JUPYTERHUB_SERVICE_PREFIX": "/services/inference/"}
    with open(work / "service.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlaas4hep_hub.inference_service",
             f"--issuer={idp.issuer}", f"--jwks-uri={jwks}", f"--port={port}",
             f"--models-dir={work / 'models'}", f"--home-template={work}",
             f"--processes={processes}"], env=env,
            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/services/inference/status"
    for _ in range(200):
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return process
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError((work / "service.log").read_text()[-2000:])


def first_events(path: Path, keys: list[str], n: int) -> object:
    """The first ``n`` events of ``keys``, as uproot gives them (awkward arrays)."""
    with uproot.open(path) as f:
        return f["events"].arrays(keys, entry_stop=n, library="ak")


async def load(url: str, token: str, bodies: list[bytes], clients: int, seconds: float,
               content_type: str = "application/json") -> tuple[list[float], int, int]:
    """``clients`` loops POSTing bodies in turn for ``seconds``: latencies (s), errors,
    requests."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    end = time.perf_counter() + seconds

    async def client(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal errors
        k = i
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            async with session.post(url, data=bodies[k % len(bodies)], headers=headers) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t0)
            k += clients

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(i, session) for i in range(clients)))
    return latencies, errors, len(latencies)


WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local i = %(clients)d
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "seconds": %%f, "p50": %%f, "p99": %%f, '
    .. '"errors": %%d}\\n', summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""
"""wrk's Lua script: POST the single-row bodies in turn; print the results as JSON."""


def single_rows(url: str, token: str, bodies: list[bytes], clients: int, seconds: float,
                work: Path) -> dict:
    """``clients`` connections each POSTing one event at a time for ``seconds``, after a
    3 s warm-up (each service process loads the model at its first request): with wrk
    where installed (compiled, it leaves the cores to the service), else with aiohttp."""
    wrk = shutil.which("wrk")
    for duration in (3.0, seconds):
        if wrk is None:
            lat, errors, n = asyncio.run(load(url, token, bodies, clients, duration))
            ms = np.array(lat) * 1e3
            result = {"load generator": "aiohttp (apt install wrk for a lighter one)",
                      "requests/s": round(n / duration), "p50 ms": np.percentile(ms, 50),
                      "p99 ms": np.percentile(ms, 99), "errors": errors}
        else:
            result = wrk_load(wrk, url, token, bodies, clients, duration, work)
    return result


def wrk_load(wrk: str, url: str, token: str, bodies: list[bytes], clients: int,
             seconds: float, work: Path) -> dict:
    """:func:`single_rows` with wrk (one thread, ``clients`` connections)."""
    (work / "bodies.txt").write_bytes(b"\n".join(bodies) + b"\n")
    script = work / "single.lua"
    script.write_text(WRK_SCRIPT % {"bodies": work / "bodies.txt", "token": token,
                                    "clients": clients})
    done = subprocess.run([wrk, "-t1", f"-c{clients}", f"-d{seconds:g}s", "-s", str(script),
                           url], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"load generator": "wrk", "requests/s": round(result["requests"] / result["seconds"]),
            "p50 ms": result["p50"], "p99 ms": result["p99"], "errors": result["errors"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events per sample file")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--batch", type=int, default=5000, help="events per batched request")
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="processes of the service (default: one per core)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    work = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    results: dict = {}
    try:
        run, signal = train(work, args.events)
        with DevIdP(work / "idp") as idp:
            service = start_service(work, idp, args.port, args.processes)
            try:
                results = measure(args, idp, run, signal, work)
            finally:
                service.terminate()
                service.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, value in results.items():
        print(f"{name:28s} {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def measure(args: argparse.Namespace, idp: DevIdP, run: Path, signal: Path, work: Path
            ) -> dict:
    base = f"http://127.0.0.1:{args.port}/services/inference"
    token = bearer_token(idp)
    auth = {"Authorization": f"Bearer {token}"}
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(str(run), arcname="run")
    up = requests.post(f"{base}/upload?name=mlp", data=archive.getvalue(), headers=auth,
                       timeout=120)
    up.raise_for_status()
    keys = requests.get(f"{base}/params/mlp", headers=auth, timeout=60).json()["keys"]
    events = first_events(signal, keys, args.batch)
    columns = [events[k].to_list() for k in keys]
    rows = [list(row) for row in zip(*columns, strict=True)]
    shutil.copy(signal, run.parent / "signal.root")

    batched = {}
    bodies = {"arrays": ("arrays?model=mlp", CONTENT_TYPE,
                         pack_arrays({k: events[k] for k in keys}))}
    for form, values in (("columns", columns), ("rows", rows)):
        bodies[form] = ("json", "application/json",
                        json.dumps({"model": "mlp", "keys": keys, form: values}).encode())
    for form, (path, content_type, batch) in bodies.items():
        _, errors, n = asyncio.run(load(f"{base}/{path}", token, [batch], 2, args.seconds,
                                        content_type))
        batched[form] = {"events/s": round(n * args.batch / args.seconds), "errors": errors,
                         "requests": n, "events per request": args.batch,
                         "MB per request": round(len(batch) / 2**20, 2)}

    root = json.dumps({"model": "mlp", "file": "signal.root"}).encode()
    with uproot.open(signal) as f:
        entries = f["events"].num_entries
    _, errors, n = asyncio.run(load(f"{base}/predict/root", token, [root], 1, args.seconds))
    root_file = {"events read/s": round(n * entries / args.seconds), "errors": errors,
                 "requests": n}

    singles = [json.dumps({"model": "mlp", "keys": keys, "values": r}).encode()
               for r in rows[:1000]]
    single = {"clients": args.clients, "service processes": args.processes,
              **single_rows(f"{base}/json", token, singles, args.clients, args.seconds, work)}
    for key in ("p50 ms", "p99 ms"):
        single[key] = round(float(single[key]), 2)
    errors = sum(b["errors"] for b in batched.values()) + single["errors"] + root_file["errors"]
    targets = {"batched >= 100k events/s": batched["arrays"]["events/s"] >= 100_000,
               "single-row p50 < 10 ms": single["p50 ms"] < 10, "zero errors": errors == 0}
    return {"batched arrays (npz)": batched["arrays"],
            "batched JSON, columns": batched["columns"], "batched JSON, rows": batched["rows"],
            "ROOT file": root_file, "single rows": single,
            "targets": {name: "OK" if met else "MISS" for name, met in targets.items()},
            "cpus": os.cpu_count(), "load average": os.getloadavg()}


if __name__ == "__main__":
    main()
