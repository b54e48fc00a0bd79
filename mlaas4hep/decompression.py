"""Faster zlib decompression for uproot: ISA-L (the ``isal`` package) where installed.

ROOT files written with ROOT's default compression (zlib) spend most of their
read time in ``zlib.decompress``. uproot can inflate them with ISA-L instead
(its ``"isal"`` zlib library: the same bytes out, 1.2-1.4x faster);
:func:`use_fast_zlib` switches uproot's zlib *decompressor* to it before the
first read. Compression (files uproot writes) is left alone, so written files
keep their exact bytes.
"""

from __future__ import annotations

import logging

import uproot.compression

log = logging.getLogger("mlaas4hep")

_DECOMPRESSOR = getattr(uproot.compression, "_decompress_ZLIB", None)
"""The object uproot inflates every zlib block with (its ``library`` picks the code)."""


def zlib_library(name: str | None = None) -> str:
    """The library uproot inflates zlib baskets with ("zlib" or "isal"); set it to ``name``
    first when given (benchmarks compare the two)."""
    if _DECOMPRESSOR is None or not hasattr(_DECOMPRESSOR, "library"):
        return "zlib"  # an uproot without the option: its own zlib
    if name is not None:
        _DECOMPRESSOR.library = name
    return _DECOMPRESSOR.library


def use_fast_zlib() -> str:
    """Inflate zlib baskets with ISA-L when ``isal`` imports; return the library in use."""
    try:
        import isal.isal_zlib  # noqa: F401  (uproot looks it up as isal.isal_zlib)
    except ImportError:
        log.debug("isal is not installed: zlib baskets are inflated with zlib "
                  "(pip install isal: 1.2-1.4x faster)")
        return zlib_library()
    return zlib_library("isal")
