# JupyterHub configuration of MLaaS4HEP Hub. Everything comes from one YAML file,
# named by $MLAAS4HEP_HUB_CONFIG (default: hub.yaml in the working folder);
# `mlaas4hep-hub keys` lists its keys.
from mlaas4hep_hub.configure import configure

configure(get_config())  # noqa: F821 (get_config is provided by JupyterHub)
