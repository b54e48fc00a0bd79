"""MLaaS4HEP: Machine Learning as a Service for High Energy Physics.

Train models on ROOT files (local, ``root://``, ``https://``)::

    from mlaas4hep.workflow import run_workflow, prepare
    from mlaas4hep.dataset import Dataset
"""

from __future__ import annotations

import contextlib

# The XRootD client library must be loaded before TensorFlow's: the other
# order crashes the process (segmentation fault) at the first root:// read.
with contextlib.suppress(ImportError):
    import XRootD.client  # noqa: F401

__version__ = "0.1.0"
