"""Wheelhouse helpers for images/build.sh (run with the venv's Python).

relax FOLDER TARGET CONSTRAINTS IMAGE_CONSTRAINTS RELAXED PIP
    The venv's Python may be newer than the images' (Debian bookworm has
    3.11.2). Each wheel in FOLDER whose Requires-Python excludes TARGET is
    replaced by the newest earlier release that allows it (pip download);
    IMAGE_CONSTRAINTS is CONSTRAINTS without those pins and RELAXED lists them
    (name, venv version, its Requires-Python, image version; tab-separated).

stage REPORT CONTEXT
    Hard-link the wheels of a ``pip install --dry-run --report`` into
    CONTEXT/wheels (third-party) and CONTEXT/local (mlaas4hep, mlaas4hep-hub, mlaas4hep-wizard)
    and write CONTEXT/wheels/requirements.txt (name==version, third-party).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename

LOCAL = {"mlaas4hep", "mlaas4hep-hub", "mlaas4hep-wizard"}


def requires_python(wheel: Path) -> str | None:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        return Parser().parsestr(z.read(meta).decode()).get("Requires-Python")


def relax(folder: Path, target: str, constraints: Path, image_constraints: Path,
          relaxed: Path, pip: str) -> None:
    rows = []
    for wheel in sorted(folder.glob("*.whl")):
        spec = requires_python(wheel)
        if not spec or SpecifierSet(spec).contains(target, prereleases=True):
            continue
        name, version, _, _ = parse_wheel_filename(wheel.name)
        wheel.unlink()
        before = set(folder.iterdir())
        subprocess.run([pip, "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--only-binary", ":all:", "--python-version", target,
                        "--dest", str(folder), f"{name}<{version}"], check=True)
        (new,) = set(folder.iterdir()) - before
        older = parse_wheel_filename(new.name)[1]
        rows.append(f"{name}\t{version}\t{spec}\t{older}\n")
        print(f"==> {name} {version} needs Python {spec}: the images get {older}",
              file=sys.stderr)
    relaxed.write_text("".join(rows))
    names = {row.split("\t")[0] for row in rows}
    keep = [line for line in constraints.read_text().splitlines()
            if canonicalize_name(line.split("==")[0]) not in names]
    image_constraints.write_text("\n".join(keep) + "\n")


def stage(report_path: Path, context: Path) -> None:
    report = json.loads(report_path.read_text())
    pins = []
    for item in report["install"]:
        name = canonicalize_name(item["metadata"]["name"])
        wheel = Path(unquote(urlparse(item["download_info"]["url"]).path))
        dest = context / ("local" if name in LOCAL else "wheels") / wheel.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(wheel, dest)
        except OSError:
            shutil.copy2(wheel, dest)
        if name not in LOCAL:
            pins.append(f"{name}=={item['metadata']['version']}")
    (context / "wheels" / "requirements.txt").write_text("\n".join(sorted(pins)) + "\n")


def main(argv: list[str]) -> None:
    if argv[:1] == ["relax"] and len(argv) == 7:
        folder, target, constraints, image_constraints, relaxed, pip = argv[1:]
        relax(Path(folder), target, Path(constraints), Path(image_constraints), Path(relaxed), pip)
    elif argv[:1] == ["stage"] and len(argv) == 3:
        stage(Path(argv[1]), Path(argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
