"""Opening ROOT inputs: local paths, ``root://`` (with a redirector) and ``https://``.

Remote reads carry the user's bearer token when one is found (WLCG discovery,
:mod:`mlaas4hep.tokens`): ``https://`` as an ``Authorization`` header,
``root://`` as the ``authz`` CGI of each open (the XRootD client's ``ztn``
login reads the same places); every distinct token logs in on its own
connection, so a file opened after a refresh is authorised with the current
token. A refusal names the server and what the token was (or that there was
none); the token never appears in a message.

Every failure to open or read becomes one :class:`~mlaas4hep.errors.UserError`
naming the file: missing file, not a ROOT file, a truncated or corrupt file,
a tree that is not there (with the trees that are).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uproot

from . import GRID_CA_DIR
from .decompression import use_fast_zlib
from .errors import UserError, describe, did_you_mean, short_list
from .flatten import columns_of, events_of
from .tokens import BearerToken, discovery_places, find_token

REMOTE_SCHEMES = ("root://", "https://", "http://")
TREE_CLASSES = ("TTree", "ROOT::Experimental::RNTuple", "ROOT::RNTuple")
REFUSAL = re.compile(r"auth failed|permission denied|not authori[sz]ed|unauthori[sz]ed|forbidden|"
                     r"\[3010\]|\b40[13]\b", re.IGNORECASE)
"""Error texts of XRootD and HTTP servers that mean "not allowed"."""
LOCAL_READS: dict[str, Any] = {"handler": uproot.source.file.MultithreadedFileSource,
                               "use_threads": False}
"""How local files are read: ``pread`` in the reading thread. uproot's default for paths
(fsspec) hands every read to an asyncio thread: 10-15% slower reads here, and a streamed
training beside it lost more (``benchmarks/pipeline_vs_raw.py`` shows both)."""


def resolve_path(name: str, redirector: str = "") -> str:
    """Return the URL or path to open; ``/store/...`` gets the redirector prepended."""
    if name.startswith("/store/") and redirector:
        return redirector.rstrip("/") + "/" + name
    if name.startswith("/store/") and not os.path.exists(name):
        raise UserError(f"{name}: a /store/ path needs 'redirector' in params.json "
                        "(e.g. root://xrootd.ba.infn.it)")
    return name


def is_remote(path: str) -> bool:
    """True for root://, https:// and http:// URLs."""
    return path.startswith(REMOTE_SCHEMES)


@dataclass
class RootInput:
    """An opened ROOT file and the tree (or RNTuple) to read from it.

    Reads go forward through the file in chunk order. Each read extends to
    the next cluster boundary (where every branch starts a new basket) and
    keeps the surplus for the next read, so no basket is decompressed twice
    when chunks are smaller than the file's baskets. The surplus serves one
    pass only (:meth:`release`): it is not a cache of the file.
    """

    path: str
    file: Any
    tree: Any
    label: int
    _buffer: Any = field(default=None, repr=False)
    _buffer_range: tuple[int, int] = field(default=(0, 0), repr=False)
    _buffer_key: tuple[str, ...] = field(default=(), repr=False)

    @property
    def entries(self) -> int:
        """Number of entries in the tree."""
        return int(self.tree.num_entries)

    @property
    def uuid(self) -> str:
        """The ROOT file's UUID, which identifies its content."""
        return str(self.file.file.uuid)

    def _cluster_end(self, stop: int) -> int:
        offsets = getattr(self.tree, "common_entry_offsets", None)
        if offsets is None:  # RNTuple: read exactly what is asked
            return stop
        return next((int(o) for o in offsets() if o >= stop), self.entries)

    def arrays(self, branches: list[str], start: int, stop: int,
               executor: Executor | None = None) -> dict[str, Any]:
        """Read ``branches`` for entries [start, stop): name -> numpy array (flat) or
        :class:`~mlaas4hep.flatten.Jagged`."""
        lo, hi = self._buffer_range
        key = tuple(branches)
        if not (key == self._buffer_key and lo <= start and stop <= hi):
            end = self._cluster_end(stop)
            self._buffer = columns_of(self._read(branches, start, end, executor), branches)
            self._buffer_range, self._buffer_key = (start, end), key
            lo = start
        return events_of(self._buffer, start - lo, stop - lo)

    def _read(self, branches: list[str], start: int, stop: int,
              executor: Executor | None) -> Any:
        options = {} if executor is None else {"decompression_executor": executor,
                                               "interpretation_executor": executor}
        try:
            return self.tree.arrays(branches, entry_start=start, entry_stop=stop, **options)
        except UserError:
            raise
        except Exception as exc:  # uproot raises many types for corrupt baskets
            raise UserError(f"{self.path}: cannot read entries {start}-{stop}: "
                            f"{describe(exc)}. The file may be truncated or corrupt") from None

    def release(self) -> None:
        """Drop the buffered entries (at the end of a pass: the next pass reads anew)."""
        self._buffer, self._buffer_range, self._buffer_key = None, (0, 0), ()

    def close(self) -> None:
        """Close the file and drop buffered entries."""
        self.release()
        self.file.close()


def list_trees(file: Any) -> list[str]:
    """Paths of the TTrees and RNTuples in an open file."""
    classes = file.classnames(recursive=True, cycle=False)
    return sorted(name for name, cls in classes.items() if cls in TREE_CLASSES)


def open_file(name: str, *, redirector: str = "") -> tuple[str, Any]:
    """Open ``name`` with uproot (path or URL, checked); return the resolved path and file."""
    path = resolve_path(name, redirector)
    if not is_remote(path):
        local = Path(path)
        if not local.exists():
            raise UserError(f"{path}: file not found")
        if not local.is_file() or not os.access(local, os.R_OK):
            raise UserError(f"{path}: not a readable file")
        with open(local, "rb") as head:
            if head.read(4) != b"root":
                raise UserError(f"{path}: not a ROOT file (it does not start with the ROOT "
                                "magic bytes)")
    token = find_token() if is_remote(path) else None
    url, options = with_token(path, token)
    if not is_remote(path):
        options = {**LOCAL_READS, **options}
    use_fast_zlib()
    try:
        # no uproot array cache: memory stays bounded by the chunk size, and caching is
        # the pipeline's own (cache_mb)
        file = uproot.open(url, timeout=60, array_cache=None, **options)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(_open_error(path, exc, token)) from None
    if not is_remote(path) and os.path.getsize(path) < file.file.fEND:
        file.close()
        raise UserError(f"{path}: truncated ROOT file: {os.path.getsize(path)} bytes, but its "
                        f"header says {file.file.fEND}; copy or download it again")
    return path, file


def open_input(name: str, tree: str, label: int = 0, *, redirector: str = "") -> RootInput:
    """Open ``name`` and its ``tree``, with clear errors for every failure."""
    path, file = open_file(name, redirector=redirector)
    trees = safe_list_trees(file, path)
    if tree not in trees:
        file.close()
        hint = did_you_mean(tree, trees)
        there = short_list(trees) if trees else "none"
        raise UserError(f"{path}: tree '{tree}' not found{hint}; trees in this file: {there}")
    try:
        obj = file[tree]
    except Exception as exc:
        file.close()
        raise UserError(f"{path}: cannot read tree '{tree}': {describe(exc)}. "
                        "The file may be truncated or corrupt") from None
    return RootInput(path=path, file=file, tree=obj, label=label)


def safe_list_trees(file: Any, path: str) -> list[str]:
    """:func:`list_trees` with a clear error (and the file closed) when it fails."""
    try:
        return list_trees(file)
    except Exception as exc:
        file.close()
        raise UserError(f"{path}: cannot list the file's contents: {describe(exc)}. "
                        "The file may be truncated or corrupt") from None


def with_token(path: str, token: BearerToken | None) -> tuple[str, dict[str, Any]]:
    """The URL and ``uproot.open`` options that present ``token`` to the server of ``path``.

    ``https://``: an ``Authorization: Bearer`` header (never over plain ``http://``).
    ``root://``: the ``authz`` CGI (what SciTokens-enabled servers authorise an open with) and
    a login name derived from the token (its :attr:`~BearerToken.tag`), so each token gets
    its own connection whose ``ztn`` login presents it.
    """
    if token is None:
        return path, {}
    if path.startswith("https://"):
        return path, {"headers": {"Authorization": f"Bearer {token.value}"}}
    if path.startswith("root://"):
        host, sep, rest = path[len("root://"):].partition("/")
        login = host if "@" in host else f"{token.tag}@{host}"
        cgi = "&" if "?" in rest else "?"
        return f"root://{login}{sep}{rest}{cgi}authz=Bearer%20{token.value}", {}
    return path, {}


def server_of(path: str) -> str:
    """``scheme://host:port`` of a remote path."""
    scheme, _, rest = path.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def refusal_message(path: str, server_said: str, token: BearerToken | None) -> str:
    """Why ``path`` was refused, from what the server said and the token (or its absence)."""
    said = f" (server said: {server_said})" if server_said else ""
    if token is None:
        return (f"{path}: {server_of(path)} refused to read it: no bearer token found (looked in "
                f"{', '.join(discovery_places())}). In the hub $BEARER_TOKEN_FILE is kept for "
                f"you; elsewhere get one with oidc-agent (see README 'Remote data'){said}")
    left = token.expires_in()
    if left is not None and left <= 0:
        return (f"{path}: {server_of(path)} refused to read it: the {token.summary()}; get a "
                f"fresh token (oidc-token, or sign in to the hub again){said}")
    if path.startswith("root://") and _xrootd_without_tls():
        return (f"{path}: {server_of(path)} refused to read it: the XRootD client could not "
                f"present the {token.summary()}: the token login (ztn) needs TLS, and "
                f"{_tls_trouble()}{said}")
    return (f"{path}: {server_of(path)} refused to read it: the {token.summary()} does not "
            f"allow reading this path{said}")


def _xrootd_without_tls() -> bool:
    """True once the XRootD client of this process has given up TLS (``NoTlsOK`` set)."""
    try:
        from XRootD.client import EnvGetInt
    except ImportError:
        return False
    return bool(EnvGetInt("NoTlsOK"))


def _tls_trouble() -> str:
    """Why the XRootD client in this process may have no TLS (it sets TLS up only once)."""
    ca_dir = os.environ.get("X509_CERT_DIR") or GRID_CA_DIR
    if not os.path.isdir(ca_dir):
        return (f"its CA folder {ca_dir} does not exist: set X509_CERT_DIR to the folder of "
                "CA certificates before the process first reads a root:// file")
    return (f"the client sets TLS up once, at the process's first root:// connection, when "
            f"$X509_CERT_DIR (now {ca_dir}) was unset or wrong: start the process (or "
            "notebook kernel) again")


def _open_error(path: str, exc: Exception, token: BearerToken | None = None) -> str:
    text = " ".join(str(exc).split())
    if token is not None:
        text = text.replace(token.value, "<token>")
    if is_remote(path) and REFUSAL.search(text):
        return refusal_message(path, text, token)
    if "not a ROOT file" in text:
        return f"{path}: not a ROOT file (it does not start with the ROOT magic bytes)"
    if isinstance(exc, (PermissionError,)) or "permission" in text.lower():
        return f"{path}: permission denied: {text}"
    if is_remote(path) and isinstance(exc, FileNotFoundError):
        return f"{path}: file not found on the server"
    if is_remote(path):
        return f"{path}: cannot open remote file: {describe(exc)}"
    return (f"{path}: cannot open as a ROOT file: {describe(exc)}. "
            "The file may be truncated or corrupt")
