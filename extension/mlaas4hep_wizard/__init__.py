"""MLaaS4HEP wizard: train on ROOT files from a notebook, step by step.

In a notebook::

    from mlaas4hep_wizard import Wizard
    Wizard()

Every step calls the framework's public API (``mlaas4hep``); training runs
``mlaas4hep.workflow.run_workflow`` on the files the wizard writes, so an
exported run gives the same result with ``workflow.py`` in a terminal.
"""

from __future__ import annotations

from .run_config import RunConfig, workflow_command
from .wizard import Wizard

__all__ = ["RunConfig", "Wizard", "workflow_command"]
__version__ = "0.1.0"
