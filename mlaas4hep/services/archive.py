"""Safe unpacking of uploaded ``.tar.gz`` files.

Only regular files and folders are accepted, every path must stay inside
the destination (no absolute paths, no ``..``), and sizes are capped per
file, in total and in number of entries. Anything else refuses the whole
archive with a message naming the entry; nothing is left behind.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..errors import UserError

MAX_MEMBERS = 1000


def _check_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")):
        raise UserError(f"archive entry '{name}': absolute paths are not allowed")
    if ".." in path.parts:
        raise UserError(f"archive entry '{name}': '..' in a path is not allowed")
    return path


def safe_extract(data: bytes | BinaryIO, dest: str | Path, *, max_bytes: int,
                 max_file_bytes: int | None = None, max_members: int = MAX_MEMBERS) -> Path:
    """Unpack a (gzipped) tar archive into the new folder ``dest``; return ``dest``.

    A single top-level folder in the archive is unwrapped (``run/model.onnx``
    lands as ``dest/model.onnx``). Raises :class:`UserError` for a refused or
    unreadable archive and removes ``dest`` again.
    """
    dest = Path(dest)
    fileobj = io.BytesIO(data) if isinstance(data, bytes) else data
    max_file_bytes = max_file_bytes or max_bytes
    dest.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
            members = _checked_members(tar, max_bytes, max_file_bytes, max_members)
            top = _single_top(members)
            for member, path in members:
                parts = path.parts[1:] if top else path.parts
                if not parts:
                    continue
                target = dest.joinpath(*parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with open(target, "xb") as out:
                    shutil.copyfileobj(source, out)
    except tarfile.TarError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise UserError(f"not a readable tar.gz archive: {exc}") from None
    except (UserError, FileExistsError, OSError, EOFError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        if isinstance(exc, UserError):
            raise
        raise UserError(f"the archive cannot be unpacked: {exc}") from None
    return dest


def _checked_members(tar: tarfile.TarFile, max_bytes: int, max_file_bytes: int,
                     max_members: int) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    members, total = [], 0
    for member in tar:
        if len(members) >= max_members:
            raise UserError(f"the archive has more than {max_members} entries")
        path = _check_name(member.name)
        if member.issym() or member.islnk():
            raise UserError(f"archive entry '{member.name}': links are not allowed")
        if not (member.isfile() or member.isdir()):
            raise UserError(f"archive entry '{member.name}': only files and folders are "
                            "allowed")
        if member.size > max_file_bytes:
            raise UserError(f"archive entry '{member.name}': {member.size} bytes, more than "
                            f"the limit of {max_file_bytes} bytes per file")
        total += member.size
        if total > max_bytes:
            raise UserError(f"the archive unpacks to more than the limit of {max_bytes} bytes")
        members.append((member, path))
    return members


def _single_top(members: list[tuple[tarfile.TarInfo, PurePosixPath]]) -> bool:
    """True when every entry is inside one top-level folder."""
    tops = {p.parts[0] for _, p in members if p.parts}
    files_at_top = any(len(p.parts) == 1 and not m.isdir() for m, p in members)
    return len(tops) == 1 and not files_at_top


def pack_folder(folder: str | Path, out: BinaryIO, arcname: str) -> None:
    """Write ``folder`` as a gzipped tar (top-level folder ``arcname``) to ``out``."""
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.add(str(folder), arcname=arcname)
