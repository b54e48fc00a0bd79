"""What the inference and submit services are made of, without any web framework.

:mod:`.bundle` loads a training output and predicts with the training's own
preprocessing; :mod:`.archive` unpacks uploaded tarballs safely;
:mod:`.store` keeps models per namespace; :mod:`.jobs` runs ``workflow.py``
as jobs whose state lives on disk. The hub's services (and the wizard) call
these.
"""
