"""MLaaS4HEP: Machine Learning as a Service for High Energy Physics.

Train models on ROOT files (local, ``root://``, ``https://``)::

    from mlaas4hep.workflow import run_workflow, prepare
    from mlaas4hep.dataset import Dataset
"""

from __future__ import annotations

import contextlib
import os

GRID_CA_DIR = "/etc/grid-security/certificates"
SYSTEM_CA_DIR = "/etc/ssl/certs"

# The XRootD client reads $X509_CERT_DIR (default GRID_CA_DIR) once, at the
# process's first connection; without that folder it gives up TLS for the rest
# of the process, and token logins (ztn, TLS only) then fail. Where there are no
# grid CAs, trust the system's.
if ("X509_CERT_DIR" not in os.environ and not os.path.isdir(GRID_CA_DIR)
        and os.path.isdir(SYSTEM_CA_DIR)):
    os.environ["X509_CERT_DIR"] = SYSTEM_CA_DIR

# The XRootD client library must be loaded before TensorFlow's: the other
# order crashes the process (segmentation fault) at the first root:// read.
with contextlib.suppress(ImportError):
    import XRootD.client  # noqa: F401

__version__ = "0.1.0"
