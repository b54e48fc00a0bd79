"""The ``inference`` service (``/services/inference/``): TFaaS-style model serving.

A model is a ``workflow.py`` output folder, uploaded as a tar.gz; predictions
apply the training's new branches, cuts, padding and normalisation
(:class:`mlaas4hep.services.bundle.ModelBundle`). Each user has their own
models; ``shared/<name>`` models are visible to everyone::

    POST   upload?name=NAME       tar.gz body, or multipart with a file and 'name'
    GET    models                 your models and the shared ones
    GET    params/NAME            keys to send, task, training params and test metrics
    DELETE delete/NAME
    POST   json                   {"model": NAME, "keys": [...], "values": [...]}; many
                                  events: "columns": [[...], ...] (one list of values
                                  per key) or "rows": [[...], ...]
    POST   arrays?model=NAME      many events as binary arrays, a numpy.savez body (the
                                  fastest form; mlaas4hep.services.arrays says how)
    POST   predict/root           {"model": NAME, "file": PATH or URL, "nevts": -1}
    GET    status

Single-row requests that arrive together are scored as one batch.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tornado import web

from mlaas4hep.errors import UserError
from mlaas4hep.services.store import ModelStore

from .bearer import bearer_options, validator_from
from .service_base import ServiceHandler, service_app, user_errors
from .serving import serve

REMOTE = ("root://", "https://", "http://")
INLINE_BYTES = 64 * 1024
"""JSON bodies up to this size are parsed on the event loop; larger ones in a thread."""


def load_bundle(folder: Path) -> Any:
    """Load a model bundle (the heavy imports happen on first use). What is alive then (the
    libraries, the models) is left out of later garbage collections, which stay short."""
    from mlaas4hep.services.bundle import ModelBundle

    bundle = ModelBundle(folder)
    gc.freeze()
    return bundle


class InferenceHandler(ServiceHandler):
    @property
    def store(self) -> ModelStore:
        return self.settings["store"]

    async def bundle(self, model: str) -> Any:
        """The user's model, loaded in a thread unless it is in the store's cache."""
        return (self.store.cached(self.user, model)
                or await asyncio.to_thread(self.store.get, self.user, model))

    def body_json(self) -> dict[str, Any]:
        from mlaas4hep.services.body import load_json

        body = load_json(self.request.body)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise UserError("the body must be a JSON object naming the \"model\"")
        return body


class UploadHandler(InferenceHandler):
    async def post(self) -> None:
        name = self.get_argument("name", "")
        data = self.request.body
        if self.request.files:
            uploads = [f for files in self.request.files.values() for f in files]
            data = uploads[0]["body"]
            name = name or self.get_body_argument("name", "")
        with user_errors():
            if not name:
                raise UserError("name the model: upload?name=NAME (or a 'name' form field)")
            info = await asyncio.to_thread(self.store.publish, self.user, name, data)
        self.set_status(201)
        self.finish(info)


class ModelsHandler(InferenceHandler):
    def get(self) -> None:
        self.finish({"models": self.store.list(self.user)})


class ParamsHandler(InferenceHandler):
    async def get(self, model: str) -> None:
        with user_errors():
            bundle = await asyncio.to_thread(self.store.get, self.user, model)
            self.finish({"model": model, **bundle.describe()})


class DeleteHandler(InferenceHandler):
    def delete(self, model: str) -> None:
        with user_errors():
            self.store.delete(self.user, model)
        self.finish({"deleted": model})


class JsonHandler(InferenceHandler):
    async def post(self) -> None:
        from mlaas4hep.services.columns import load_request

        with user_errors():
            data = self.request.body
            body, columns = (load_request(data) if len(data) <= INLINE_BYTES
                             else await asyncio.to_thread(load_request, data))
            if not isinstance(body.get("model"), str):
                raise UserError("the body must be a JSON object naming the \"model\"")
            bundle = await self.bundle(body["model"])
            keys = body.get("keys", [])
            if columns is not None or "rows" in body:
                if columns is not None:  # predict_columns checks the keys
                    result = await asyncio.to_thread(bundle.predict_columns, columns)
                else:
                    result = await asyncio.to_thread(bundle.predict_rows, keys, body["rows"])
                self.finish({"model": body["model"], **result.to_json()})
                return
            if "values" not in body:
                raise UserError("give \"values\" (one event), \"columns\" (many events, a "
                                "list of values per key) or \"rows\" (many events, a list of "
                                "values per event)")
            result = await self.settings["batcher"].score(bundle, keys, body["values"])
        self.finish({"model": body["model"], "score": result[0], "passes_cut": result[1]})


class ArraysHandler(InferenceHandler):
    async def post(self) -> None:
        from mlaas4hep.services.arrays import load_arrays

        with user_errors():
            model = self.get_argument("model", "")
            if not model:
                raise UserError("name the model: arrays?model=NAME")
            bundle = await self.bundle(model)
            columns = await asyncio.to_thread(load_arrays, self.request.body)
            result = await asyncio.to_thread(bundle.predict_columns, columns)
        self.finish({"model": model, **result.to_json()})


class RootFileHandler(InferenceHandler):
    async def post(self) -> None:
        with user_errors():
            body = self.body_json()
            path = self.readable(body.get("file"))
            nevts = body.get("nevts", -1)
            if not isinstance(nevts, int):
                raise UserError("nevts: a whole number of events (-1 = all)")
            bundle = await self.bundle(body["model"])
            entries, scores = await asyncio.to_thread(bundle.predict_file, path, nevts=nevts)
        self.finish({"model": body["model"], "file": body["file"], "entries": entries.tolist(),
                     "scores": scores.tolist()})

    def readable(self, name: Any) -> str:
        """A URL, or a local path inside the user's home or the shared data folder."""
        if not isinstance(name, str) or not name:
            raise UserError("file: a ROOT file path (in your home) or a root:// / https:// URL")
        if name.startswith(REMOTE):
            return name
        roots = [r for r in (self.settings["home_of"](self.user), self.settings["data_dir"])
                 if r is not None]
        for root in roots:
            path = (root / name).resolve()
            if path.is_relative_to(root.resolve()) and path.is_file():
                return str(path)
        raise UserError(f"file {name!r}: not found in your home"
                        + (" or the shared data folder" if len(roots) > 1 else ""))


class StatusHandler(InferenceHandler):
    async def prepare(self) -> None:
        """Open to everyone: it says nothing about users."""

    def get(self) -> None:
        self.finish({"service": "mlaas4hep inference", "uptime": time.time() - self.settings[
            "started"]})


class Batcher:
    """Scores single events that arrive together as one batch (the original served one
    row per request): while a batch is scored, the events arriving for the same model
    wait and go together in the next one."""

    def __init__(self, max_rows: int = 4096):
        self.max_rows = max_rows
        self._pending: dict[int, tuple[Any, list]] = {}
        self._running: dict[int, asyncio.Task] = {}

    async def score(self, bundle: Any, keys: list[str], values: list[Any]
                    ) -> tuple[Any, bool]:
        """The score of one event, and whether it passes the training's cuts."""
        from mlaas4hep.services.bundle import ordered_row

        row = ordered_row(keys, values, bundle.keys)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.setdefault(id(bundle), (bundle, []))[1].append((row, future))
        if id(bundle) not in self._running:
            self._running[id(bundle)] = asyncio.create_task(self._drain(id(bundle)))
        return await future

    async def _drain(self, key: int) -> None:
        """Score what waits for one model, batch after batch, until nothing waits."""
        try:
            while waiting := self._pending.pop(key, None):
                bundle, rows = waiting
                for i in range(0, len(rows), self.max_rows):
                    await self._run(bundle, rows[i:i + self.max_rows])
        finally:
            del self._running[key]

    async def _run(self, bundle: Any, waiting: list) -> None:
        try:
            result = await asyncio.to_thread(bundle.predict_rows, bundle.keys,
                                             [row for row, _ in waiting])
        except Exception as exc:
            if len(waiting) == 1:
                waiting[0][1].set_exception(exc)
            else:  # one bad event must not fail the others
                for one in waiting:
                    await self._run(bundle, [one])
            return
        for i, (_, future) in enumerate(waiting):
            future.set_result((result.scores[i].tolist(), bool(result.passes_cuts[i])))


ROUTES: list[tuple[str, type[web.RequestHandler]]] = [
    ("upload", UploadHandler),
    ("models", ModelsHandler),
    ("params/(.+)", ParamsHandler),
    ("delete/(.+)", DeleteHandler),
    ("json", JsonHandler),
    ("arrays", ArraysHandler),
    ("predict/root", RootFileHandler),
    ("status", StatusHandler),
    ("", StatusHandler),
]


def home_finder(template: str) -> Callable[[str], Path | None]:
    """The user's home folder from a template with {username}, or None without one."""
    return lambda user: Path(template.format(username=user)) if template else None


def main(argv: list[str] | None = None) -> None:
    """Run the service (started by the hub, which sets the JUPYTERHUB_* variables)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    bearer_options(parser)
    parser.add_argument("--models-dir", required=True, help="where models are kept")
    parser.add_argument("--max-upload-mb", type=int, default=512)
    parser.add_argument("--home-template", default="", help="users' homes, for ROOT files "
                        "named by a relative path ({username} is replaced)")
    parser.add_argument("--data-dir", default="", help="a shared data folder")
    parser.add_argument("--processes", type=int, default=1, help="processes serving "
                        "requests on the one port, each on its own core (0: one per core); "
                        "each loads the models it is asked for")
    args = parser.parse_args(argv)
    limit = args.max_upload_mb * 2**20
    secret = os.urandom(32)  # the same OAuth cookie secret in every process

    def make_app() -> web.Application:
        return service_app(
            "/services/inference/", ROUTES, cookie_secret=secret,
            validator=validator_from(args), batcher=Batcher(), started=time.time(),
            store=ModelStore(args.models_dir, load_bundle, max_upload_bytes=limit),
            home_of=home_finder(args.home_template),
            data_dir=Path(args.data_dir) if args.data_dir else None)

    serve(make_app, args.port, max_body_size=limit,
          processes=args.processes or os.cpu_count() or 1)


if __name__ == "__main__":
    main()
