# MLaaS4HEP Hub: one-command setup, demo and tests on Debian/Ubuntu (root or sudo).
#   make demo   generate ttH(bb)-like samples and run the seed's workflow.py command on them
#   make test   the whole test suite (what .ci/run runs)
#   make lint   ruff

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := python3-venv xrootd-server iproute2 util-linux
DEMO_EVENTS ?= 100000

.PHONY: demo test lint system-deps venv clean

$(VENV)/.system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends $$missing; fi
	@mkdir -p $(VENV) && touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,xrootd,https]"
	@touch $@

system-deps: $(VENV)/.system-deps
venv: $(VENV)/.installed

demo: venv
	@mkdir -p demo
	cd demo && ../$(VENV)/bin/mlaas4hep make-sample --out-dir samples --events $(DEMO_EVENTS)
	cp mlaas4hep/examples/model.py mlaas4hep/examples/params.json mlaas4hep/examples/preproc.json demo/
	cd demo && ../$(VENV)/bin/workflow.py --files=samples/files.txt --labels=samples/labels.txt \
	  --model=model.py --params=params.json --preproc=preproc.json --out-dir=run --overwrite

test: venv
	tests/isolated.sh $(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check mlaas4hep tests benchmarks

clean:
	rm -rf demo test-output .pytest_cache
