"""The specs pass and chunk preparation on a Dask cluster.

Chunks are independent once the chunk plan is fixed, so the cluster gets
contiguous blocks of chunk indices; each task opens the input files itself
(workers need the same files or URLs, the same software and the same
credentials), summarises or prepares its chunks and sends the results back.
The client merges them in chunk order, exactly as the single-process run does,
so the specs and arrays are identical to it. Dask does the scheduling, retries
and worker management; ``params.dask`` (or ``--dask``) names the scheduler.

Needs ``pip install 'mlaas4hep[dask]'`` (dask.distributed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .backends.common import import_library
from .config import parse_params, parse_preproc
from .errors import UserError, describe
from .specs import Specs, SpecsPart, summarise_chunk

if TYPE_CHECKING:
    from .dataset import Chunk, Dataset

log = logging.getLogger("mlaas4hep")

DASK_HINT = "params 'dask' needs dask.distributed: pip install 'mlaas4hep[dask]'"
BLOCKS_PER_WORKER = 2
"""Tasks per worker: contiguous blocks of chunks (each opens the files once)."""


@contextmanager
def dask_client(address: str) -> Iterator[Any]:
    """A Dask client on ``address`` ('local': a LocalCluster of this machine's cores)."""
    distributed = import_library("distributed", DASK_HINT)
    try:
        if address == "local":
            with distributed.LocalCluster(threads_per_worker=1, dashboard_address=None,
                                          host="127.0.0.1") as cluster, \
                    distributed.Client(cluster) as client:
                yield client
        else:
            with distributed.Client(address, timeout="10s") as client:
                yield client
    except (OSError, TimeoutError) as exc:
        raise UserError(f"params 'dask': cannot reach the Dask scheduler at {address!r}: "
                        f"{describe(exc)}") from None


def blocks(n_chunks: int, n_workers: int) -> list[range]:
    """Contiguous ranges of chunk indices, about ``BLOCKS_PER_WORKER`` per worker."""
    n = max(1, min(n_chunks, BLOCKS_PER_WORKER * max(n_workers, 1)))
    return [range(n_chunks * i // n, n_chunks * (i + 1) // n) for i in range(n)]


def _open(pairs: list[tuple[str, int]], params: dict, preproc: dict) -> Dataset:
    """The same dataset, opened on a worker (threads 1: the cluster is the parallelism)."""
    from .dataset import Dataset

    return Dataset.open(pairs, parse_params({**params, "threads": 1, "dask": ""}),
                        parse_preproc(preproc))


def _summarise(pairs: list[tuple[str, int]], params: dict, preproc: dict,
               chunks: range) -> list[SpecsPart]:
    """Task: the specs summaries of ``chunks``."""
    with _open(pairs, params, preproc) as data:
        inputs, n_files = data.selection.inputs, len(data.inputs)
        return [summarise_chunk(data.stream.chunk(k), inputs, n_files) for k in chunks]


def _prepare(pairs: list[tuple[str, int]], params: dict, preproc: dict, chunks: range, *,
             specs: Specs, keep: bool) -> list[Chunk] | int:
    """Task: the training-ready ``chunks`` (or only their event count)."""
    with _open(pairs, params, preproc) as data:
        prepared = [data.prepare(data.stream.chunk(k), specs) for k in chunks]
    return prepared if keep else sum(len(c) for c in prepared)


def _inputs(data: Dataset) -> tuple[list[tuple[str, int]], dict, dict]:
    return ([(s.path, s.label) for s in data.inputs], data.params.to_dict(),
            data.preproc.source)


def _run(client: Any, task: Any, data: Dataset, **options: Any) -> Iterator[Any]:
    """Submit ``task`` for every block of chunks; yield the block results in chunk order."""
    n_workers = len(client.scheduler_info().get("workers", {})) or 1
    parts = blocks(data.plan.n_chunks, n_workers)
    log.info("dask: %d chunks in %d tasks on %d workers (%s)", data.plan.n_chunks, len(parts),
             n_workers, client.scheduler.address)
    futures = [client.submit(task, *_inputs(data), block, pure=False, **options)
               for block in parts]
    try:
        for future in futures:
            yield future.result()
    finally:
        client.cancel(futures)


def specs_parts(data: Dataset, client: Any) -> Iterator[SpecsPart]:
    """The chunk summaries of the specs pass, computed on the cluster, in chunk order."""
    for block in _run(client, _summarise, data):
        yield from block


def prepared_chunks(data: Dataset, specs: Specs, client: Any, *, keep: bool) -> Iterator[Any]:
    """Training-ready chunks computed on the cluster, in chunk order (with ``keep`` False,
    only the number of events of each block)."""
    for block in _run(client, _prepare, data, specs=specs, keep=keep):
        if keep:
            yield from block
        else:
            yield block
