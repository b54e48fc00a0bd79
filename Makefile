# MLaaS4HEP Hub: one-command setup, dev hub, demo and tests on Debian/Ubuntu (root or sudo).
#   make up     the hub on http://127.0.0.1:8000 with a dev IAM, example notebooks and sample data
#   make demo   generate ttH(bb)-like samples and run the seed's workflow.py command on them
#   make test   the whole test suite (what .ci/run runs)
#   make images build the user and hub images (see images/README.md)
#   make lint   ruff

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := python3-venv xrootd-server xrootd-scitokens-plugins openssl ca-certificates iproute2 util-linux chromium docker.io debootstrap wrk
DEMO_EVENTS ?= 100000
DEV_STATE := .hub-dev

.PHONY: up demo test bench lint images system-deps venv node-deps clean

$(VENV)/.system-deps: Makefile
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends $$missing; fi
	@mkdir -p $(VENV) && touch $@

$(VENV)/.installed: pyproject.toml hub/pyproject.toml extension/pyproject.toml $(VENV)/.system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,xrootd,https,notebook,torch,xgboost,onnx,dask,deploy]" -e hub -e extension
	@touch $@

$(VENV)/.node-deps: hub/devidp/package-lock.json hub/proxy/package-lock.json $(VENV)/.installed
	$(PY) -c "from mlaas4hep_hub.devidp import ensure_installed; ensure_installed()"
	cd hub/proxy && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# the debootstrap base and the wheelhouse for the images (needs the network: runs before the
# tests, which build the images offline on their own Docker engine)
$(VENV)/.images-prepared: images/build.sh images/singleuser/Dockerfile images/hub/Dockerfile \
		pyproject.toml hub/pyproject.toml extension/pyproject.toml images/wheelhouse.py \
		$(VENV)/.installed $(VENV)/.node-deps
	images/build.sh prepare
	@touch $@

system-deps: $(VENV)/.system-deps
venv: $(VENV)/.installed
node-deps: $(VENV)/.node-deps

$(DEV_STATE)/examples/.ready: venv extension/notebooks mlaas4hep/examples/model.py \
		mlaas4hep/examples/params.json mlaas4hep/examples/preproc.json
	@mkdir -p $(DEV_STATE)/examples
	cp -r extension/notebooks/. mlaas4hep/examples/model.py mlaas4hep/examples/params.json \
	  mlaas4hep/examples/preproc.json $(DEV_STATE)/examples/
	cd $(DEV_STATE)/examples && ../../$(VENV)/bin/mlaas4hep make-sample --out-dir samples \
	  --events 20000
	@sed -i "s|$$(pwd)/$(DEV_STATE)/examples/||" $(DEV_STATE)/examples/samples/files.txt
	@touch $@

up: venv node-deps $(DEV_STATE)/examples/.ready
	$(VENV)/bin/mlaas4hep-hub dev --state-dir $(DEV_STATE) --examples $(DEV_STATE)/examples

demo: venv
	@mkdir -p demo
	cd demo && ../$(VENV)/bin/mlaas4hep make-sample --out-dir samples --events $(DEMO_EVENTS)
	cp mlaas4hep/examples/model.py mlaas4hep/examples/params.json mlaas4hep/examples/preproc.json demo/
	cd demo && ../$(VENV)/bin/workflow.py --files=samples/files.txt --labels=samples/labels.txt \
	  --model=model.py --params=params.json --preproc=preproc.json --out-dir=run --overwrite

# needs a running Docker engine (DOCKER_HOST); BASE_IMAGE=python:3.11-slim-bookworm where a
# registry is reachable
images: $(VENV)/.images-prepared
	images/build.sh images

test: venv node-deps $(VENV)/.images-prepared
	tests/isolated.sh $(PY) -m pytest

# the data pipeline against a raw uproot read (README "Speed"); not part of the tests
bench: venv
	$(PY) benchmarks/pipeline_vs_raw.py --json benchmark-results.json

lint: venv
	$(VENV)/bin/ruff check mlaas4hep hub extension tests benchmarks

clean:
	rm -rf demo test-output .pytest_cache benchmark-results.json $(DEV_STATE)
