"""Files + params + preproc -> specs and training-ready chunks.

This is the data pipeline every front uses (``workflow.py``, ``mlaas4hep
prepare``, the wizard, the services)::

    with Dataset.open(pairs, params, preproc) as data:
        specs = data.specs()
        for chunk in data.chunks(specs):
            chunk.X, chunk.mask, chunk.y, chunk.split
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .chunk import Chunk
from .config import Params, Preproc
from .errors import UserError, short_list
from .flatten import Normaliser, feature_names, to_matrix
from .prefetch import prefetched
from .progress import progress
from .selection import Selection, select_branches
from .sources import RootInput, open_input
from .specs import SPECS_VERSION, Specs, SpecsPart, merge_specs, specs_hash, summarise_chunk
from .spill import PassKeeper, SpilledChunks, spill_room
from .split import SPLIT_NAMES
from .stream import ChunkPlan, EventStream, RawChunk

log = logging.getLogger("mlaas4hep")

Splits = int | tuple[int, ...] | None
"""The events a prepared chunk holds: one split's (its code), several splits', or all (None)."""


class Dataset:
    """Opened inputs with their branch selection and chunk plan."""

    def __init__(self, inputs: list[RootInput], selection: Selection, params: Params,
                 preproc: Preproc):
        self.inputs = inputs
        self.selection = selection
        self.params = params
        self.preproc = preproc
        self.plan = ChunkPlan.make([s.entries for s in inputs], params.nevts, params.chunk_size)
        self._threads = params.threads or os.cpu_count() or 1
        self._executor = ThreadPoolExecutor(self._threads) if self._threads > 1 else None
        self.stream = EventStream(inputs, selection, preproc, params, self.plan, self._executor)
        self._kept: dict[Splits, list[Chunk] | SpilledChunks] = {}
        """Prepared chunks kept for later passes, in memory or on disk: whole (key None) or
        one split's events."""
        self._cached_bytes = 0

    @classmethod
    def open(cls, pairs: list[tuple[str, int]], params: Params, preproc: Preproc) -> Dataset:
        """Open every (file, label) pair and check the branches against the first file."""
        inputs: list[RootInput] = []
        try:
            for name, label in pairs:
                inputs.append(open_input(name, params.branch, label,
                                         redirector=params.redirector))
            selection = select_branches(inputs[0].tree, params, preproc, path=inputs[0].path)
            for other in inputs[1:]:
                present = set(other.tree.keys())
                missing = [b for b in selection.read if b not in present]
                if missing:
                    raise UserError(f"{other.path}: branch(es) {short_list(missing)} needed "
                                    f"(found in {inputs[0].path}) are missing in this file")
            if sum(s.entries for s in inputs) == 0:
                raise UserError("the input files hold no events: "
                                + ", ".join(s.path for s in inputs))
        except BaseException:
            for opened in inputs:
                opened.close()
            raise
        return cls(inputs, selection, params, preproc)

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the files and the decompression threads; delete chunks kept on disk."""
        for kept in self._kept.values():
            if isinstance(kept, SpilledChunks):
                kept.remove()
        self._kept.clear()
        for source in self.inputs:
            source.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def specs_material(self) -> dict[str, Any]:
        """Everything the specs depend on (hashed into the specs file)."""
        p = self.params
        return {
            "version": SPECS_VERSION, "tree": p.branch, "inputs": self.selection.inputs,
            "files": [{"uuid": s.uuid, "bytes": int(s.file.file.fEND), "entries": s.entries,
                       "read": n, "label": s.label}
                      for s, n in zip(self.inputs, self.plan.per_file, strict=True)],
            "preproc": self.preproc.source, "seed": p.seed,
            "validation_fraction": p.validation_fraction, "test_fraction": p.test_fraction,
        }

    def specs(self, reuse: str | Path | None = None, *, client: Any = None) -> Specs:
        """Load specs from ``reuse`` when computed for these inputs, else run the specs pass
        (on the Dask cluster of ``client`` when given: the same result)."""
        digest = specs_hash(self.specs_material())
        if reuse is not None and Path(reuse).exists():
            cached = Specs.load(reuse)
            if cached.hash == digest:
                log.info("load specs from %s", reuse)
                return cached
            log.warning("%s was computed for different inputs (files, branches, cuts, nevts or "
                        "split); computing the specs again", reuse)
        files = [{"path": s.path, "label": s.label, "entries": s.entries} for s in self.inputs]
        inputs = self.selection.inputs
        if client is not None:
            from .distributed import specs_parts

            parts: Iterator[SpecsPart] = specs_parts(self, client)
        else:
            chunks = progress(self.stream, total=self.plan.total, desc="specs pass",
                              enabled=self.params.verbose == 0,
                              weight=lambda c: sum(c.read_per_file.values()))
            parts = (summarise_chunk(c, inputs, len(files)) for c in chunks)
        specs = merge_specs(parts, inputs, files, tree=self.params.branch, hash=digest,
                            skipped=self.selection.skipped)
        self._check_events(specs)
        return specs

    def _check_events(self, specs: Specs) -> None:
        if specs.events == 0:
            counts = ", ".join(f"{f['path']}: {f['read']} read" for f in specs.files)
            raise UserError(f"the cuts in preproc.json leave zero events ({counts}); "
                            "loosen the cuts or check their thresholds")
        for label in sorted({f["label"] for f in specs.files}):
            for split in ("train", "test"):
                n = sum(f[split] for f in specs.files if f["label"] == label)
                if n == 0:
                    raise UserError(f"no events with label {label} in the {split} split after "
                                    "cuts; use more events (nevts) or looser cuts")

    def feature_names(self, specs: Specs) -> list[str]:
        """Names of the input matrix columns."""
        return feature_names(specs.inputs, specs.widths)

    def prepare(self, raw: RawChunk, specs: Specs, split: Splits = None, *,
                with_mask: bool = True) -> Chunk:
        """Flatten, normalise and (if asked) shuffle one chunk; with ``split`` (a split code
        or several), only the events of that split, in the order the whole chunk's
        ``part(split)`` gives them."""
        normalise = Normaliser(self.params.normalisation, specs.stats())
        n = len(raw.labels)
        rows = (np.random.default_rng([self.params.seed, raw.index]).permutation(n)
                if self.params.shuffle else None)
        if split is not None:
            chosen = np.isin(raw.split if rows is None else raw.split[rows], split)
            rows = np.flatnonzero(chosen) if rows is None else rows[chosen]
        X, mask = to_matrix(raw.columns, specs.inputs, specs.widths, normalise, raw.rows(rows),
                            with_mask=with_mask)
        y = self._target(raw) if self.params.target else raw.labels
        read = sum(raw.read_per_file.values())
        if rows is None:
            return Chunk(X, mask, y, raw.split, raw.labels, read)
        return Chunk(X, mask, y[rows], raw.split[rows], raw.labels[rows], read)

    def _target(self, raw: RawChunk) -> np.ndarray:
        value = raw.columns[self.params.target]
        if not isinstance(value, np.ndarray) or value.ndim != 1:
            raise UserError(f"params.json: target '{self.params.target}' must be a flat branch "
                            "(one value per event)")
        events = raw.rows()
        return (value if events is None else value[events]).astype(np.float32)

    def chunks(self, specs: Specs, *, desc: str = "reading", prefetch: bool = False,
               split: Splits = None, keep: bool = True) -> Iterator[Chunk]:
        """Training-ready chunks, or with ``split`` only that split's events of each (less to
        prepare). With ``keep``, a whole pass is kept for the later ones: in memory within
        ``cache_mb`` in all, else on local disk within ``spill_mb`` (:mod:`.spill`).

        With ``threads`` other than 1, chunks are prepared on the decompression threads, several
        at a time; with ``prefetch`` too, the next chunks are read and prepared in the background
        while the caller works on this one (training).
        """
        for key in (None, split):
            if key in self._kept:
                kept = self._kept[key]
                yield from (prefetched(kept, depth=2, name="mlaas4hep-spilled")
                            if prefetch and isinstance(kept, SpilledChunks) else kept)
                return
        p = self.params
        keeper = None
        if keep:
            room = self._spill_room()
            keeper = PassKeeper(p.cache_mb * 2**20 - self._cached_bytes,
                                room if self._pass_bytes(specs, split) <= room else 0,
                                p.spill_dir)
        complete = False
        try:
            for chunk in progress(self._prepared(specs, prefetch, split), total=self.plan.total,
                                  desc=desc, enabled=p.verbose == 0, weight=lambda c: c.read):
                if keeper is not None:
                    keeper.add(chunk)
                yield chunk
            complete = True
        finally:
            if keeper is not None and complete:
                self._keep(keeper, split)
            elif keeper is not None:
                keeper.discard()

    def _keep(self, keeper: PassKeeper, split: Splits) -> None:
        """Hold what a whole pass kept, for the later passes."""
        kept = keeper.kept()
        if kept is None:
            return
        self._kept[split] = kept
        if isinstance(kept, SpilledChunks):
            log.info("%d prepared chunks (%.0f MB) kept on disk in %s for the later passes",
                     len(kept), kept.nbytes / 2**20, kept.dir)
        else:
            self._cached_bytes += keeper.nbytes

    def _prepared(self, specs: Specs, prefetch: bool, split: Splits) -> Iterator[Chunk]:
        chunks = (c for c in self.prepared_passes(specs, [split]) if c is not None)
        if prefetch:
            return prefetched(chunks, name="mlaas4hep-prefetch")
        return chunks

    def prepared_passes(self, specs: Specs, splits: Sequence[Splits], *,
                        with_mask: bool = True) -> Iterator[Chunk | None]:
        """Prepared chunks of one pass per entry of ``splits`` (the split(s) it prepares,
        None: every event), None after each pass; nothing is cached. With ``threads`` other
        than 1, chunks are cut and prepared on the decompression threads while the next ones
        are read (at most ``threads`` in flight), and a pass's reading starts as soon as the
        one before has been read, before its last chunks are prepared."""

        def prepare(raw: RawChunk, split: Splits) -> Chunk:
            return self.prepare(self.stream.cut(raw), specs, split, with_mask=with_mask)

        if self._executor is None:
            for split in splits:
                yield from (prepare(raw, split) for raw in self.stream.reads())
                yield None
            return
        ahead: deque[Future[Chunk] | None] = deque()
        """Chunks in preparation, in order, with None at each pass's end."""

        def finished(keep: int) -> Iterator[Chunk | None]:
            """The chunks (and pass ends) ahead of the last ``keep`` in preparation."""
            while ahead and (ahead[0] is None or len(ahead) > keep):
                done = ahead.popleft()
                yield None if done is None else done.result()

        try:
            for split in splits:
                for raw in self.stream.reads():
                    ahead.append(self._executor.submit(prepare, raw, split))
                    yield from finished(keep=self._threads - 1)
                ahead.append(None)
            yield from finished(keep=0)
        finally:
            for future in ahead:
                if future is not None:
                    future.cancel()

    def fits_cache(self, specs: Specs) -> bool:
        """True when a first pass keeps every prepared chunk (all events, with masks) for the
        next ones: in what is left of ``cache_mb``, or on disk within ``spill_mb`` and the
        free space of ``spill_dir``."""
        needed = self._pass_bytes(specs, None)
        p = self.params
        return (needed <= p.cache_mb * 2**20 - self._cached_bytes
                or needed <= self._spill_room())

    def _spill_room(self) -> int:
        """Bytes the next pass may spill: ``spill_mb`` holds all the passes kept on disk."""
        used = sum(kept.nbytes for kept in self._kept.values()
                   if isinstance(kept, SpilledChunks))
        return spill_room(self.params.spill_dir, self.params.spill_mb, used)

    @staticmethod
    def _pass_bytes(specs: Specs, split: Splits) -> int:
        """Memory the prepared chunks of a pass over ``split`` take (with masks)."""
        if split is None:
            events = specs.events
        else:
            names = [SPLIT_NAMES[code] for code in ((split,) if isinstance(split, int) else split)]
            events = sum(f[name] for f in specs.files for name in names)
        return events * Chunk.event_bytes(specs.n_features)

    def split_counts(self, specs: Specs) -> dict[str, dict[str, int]]:
        """Events per split and label, from the specs."""
        out: dict[str, dict[str, int]] = {s: {} for s in SPLIT_NAMES}
        for f in specs.files:
            for s in SPLIT_NAMES:
                key = str(f["label"])
                out[s][key] = out[s].get(key, 0) + f[s]
        return out

