"""Models on disk, per namespace (one per user, and ``shared``), with a cache that
never serves a deleted or replaced model.

Layout: ``ROOT/<namespace>/<model>/`` holds the bundle and ``.publish.json``
(owner, time and a fresh id per upload). A new upload is unpacked next to
the live folder and swapped in with renames, so a reader sees the old or the
new bundle, never half of one. Loaded bundles are cached by folder and the
identity of its marker file (inode and times: each upload writes a new one);
every lookup checks it on disk, so a model deleted or replaced (by this
process or another) is never served from the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import UserError
from .archive import safe_extract

SHARED = "shared"
"""The namespace every user can read."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MARKER = ".publish.json"


class NotFound(UserError):
    """No such model (or not one the user may see)."""


class Forbidden(UserError):
    """The user may see the model but not change it."""


def check_name(name: str, what: str = "model name") -> str:
    """``name`` if it is a valid model name (letters, digits, '_', '.', '-'; 64 at most)."""
    if not isinstance(name, str) or not NAME.match(name) or name in (".", ".."):
        raise UserError(f"{what} {name!r}: use letters, digits, '_', '.' and '-' (up to 64, "
                        "starting with a letter or digit)")
    return name


class ModelStore:
    """Models of every namespace under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path, load: Callable[[Path], Any], *, cache_size: int = 8,
                 max_upload_bytes: int = 2**30):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._load = load
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_size = cache_size
        self.max_upload_bytes = max_upload_bytes

    def resolve(self, user: str, model: str) -> tuple[str, str]:
        """(namespace, name) of ``model`` as a user names it: ``name`` (their own) or
        ``shared/name``."""
        namespace, _, name = model.rpartition("/")
        namespace = namespace or user
        if namespace not in (user, SHARED):
            raise NotFound(f"no model {model!r}: name your own models by name and shared ones "
                           "as shared/<name>")
        return namespace, check_name(name)

    def folder(self, namespace: str, name: str) -> Path:
        """Where a model lives."""
        return self.root / check_name(namespace, "namespace") / check_name(name)

    def publish(self, user: str, model: str, archive: bytes) -> dict[str, Any]:
        """Unpack ``archive`` as ``model``, replacing the user's earlier upload of that name;
        check it loads before it goes live."""
        namespace, name = self.resolve(user, model)
        target = self.folder(namespace, name)
        if target.exists():
            self._check_owner(user, namespace, name, target)
        staging = target.parent / f".{name}.upload-{uuid.uuid4().hex}"
        safe_extract(archive, staging, max_bytes=self.max_upload_bytes)
        try:
            (staging / MARKER).unlink(missing_ok=True)
            self._load(staging)
            info = {"model": model, "owner": user, "id": uuid.uuid4().hex,
                    "published": time.time()}
            (staging / MARKER).write_text(json.dumps(info))
            old = target.parent / f".{name}.old-{uuid.uuid4().hex}"
            with self._swapping(), self._lock:
                if target.exists():
                    os.rename(target, old)
                os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return info

    @contextlib.contextmanager
    def _swapping(self) -> Iterator[None]:
        """Held while a model folder is replaced or removed, by one thread of one process
        (the inference service may run several processes on the same folders)."""
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def get(self, user: str, model: str) -> Any:
        """The loaded bundle of ``model`` (cached while its upload is unchanged)."""
        key = self._key(user, model)
        bundle = self._cached(key)
        if bundle is not None:
            return bundle
        bundle = self._load(Path(key[0]))
        with self._lock:
            for stale in [k for k in self._cache if k[0] == key[0]]:
                del self._cache[stale]
            self._cache[key] = bundle
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return bundle

    def cached(self, user: str, model: str) -> Any | None:
        """The bundle of ``model`` if it is loaded and current, else None (a quick check, no
        loading: callers on an event loop load with :meth:`get` in a thread)."""
        return self._cached(self._key(user, model))

    def _cached(self, key: tuple[str, tuple[int, ...]]) -> Any | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def _key(self, user: str, model: str) -> tuple[str, tuple[int, ...]]:
        """(folder, identity of its upload) of ``model``, or NotFound."""
        folder = self.folder(*self.resolve(user, model))
        return str(folder), self._upload(folder, model)

    def _upload(self, folder: Path, model: str) -> tuple[int, ...]:
        """The identity of the model's marker file (a new one per upload), or NotFound."""
        try:
            marker = os.stat(folder / MARKER)
        except OSError:
            raise NotFound(f"no model {model!r}") from None
        return marker.st_dev, marker.st_ino, marker.st_mtime_ns, marker.st_ctime_ns

    def info(self, namespace: str, name: str) -> dict[str, Any]:
        """The publish record of a model."""
        return json.loads((self.folder(namespace, name) / MARKER).read_text())

    def list(self, user: str) -> list[dict[str, Any]]:
        """The user's models and the shared ones, with owner and publish time."""
        out = []
        for namespace in (user, SHARED):
            base = self.root / namespace
            for folder in sorted(base.iterdir()) if base.is_dir() else []:
                if not folder.name.startswith(".") and (folder / MARKER).is_file():
                    out.append(self.info(namespace, folder.name))
        return out

    def delete(self, user: str, model: str) -> None:
        """Remove one of the user's models, or a shared model they published."""
        namespace, name = self.resolve(user, model)
        target = self.folder(namespace, name)
        self._upload(target, model)
        self._check_owner(user, namespace, name, target)
        trash = target.parent / f".{name}.deleted-{uuid.uuid4().hex}"
        with self._swapping(), self._lock:
            os.rename(target, trash)
            for stale in [k for k in self._cache if k[0] == str(target)]:
                del self._cache[stale]
        shutil.rmtree(trash, ignore_errors=True)

    def _check_owner(self, user: str, namespace: str, name: str, folder: Path) -> None:
        if namespace != SHARED:
            return
        owner = self.info(namespace, name).get("owner")
        if owner != user:
            raise Forbidden(f"shared/{name} was published by {owner}; only they can replace "
                            "or delete it")
