# os-onboard: `make demo` and `make test` do all set-up on a fresh machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LAB    := lab/lab
PYTEST_ARGS ?=

.PHONY: help venv lint unit functional test test-ui demo lab-up lab-down lab-status bench bench-reconcile bench-adopt bench-adopt-vsphere clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# libvirt-python compiles against libvirt-dev, which the lab installs (apt).
$(BIN)/os-onboard: pyproject.toml
	$(LAB) packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	# stevedore (cliff's command loader) caches entry points and can miss new ones
	rm -rf "$${XDG_CACHE_HOME:-$$HOME/.cache}/python-entrypoints"
	touch $@

venv: $(BIN)/os-onboard  ## create .venv with os-onboard and its test tools

lint: venv  ## ruff, and the architecture's import contracts (pyproject.toml [tool.importlinter])
	$(BIN)/ruff check os_onboard tests bench extras
	$(BIN)/lint-imports

unit: venv  ## unit tests (no lab needed)
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

functional: venv lab-up  ## functional tests against the running lab
	$(BIN)/pytest -q tests/functional $(PYTEST_ARGS)

test: venv $(VENV)/.ui-deps lint lab-up  ## unit + functional + UI tests (brings the lab up if needed)
	$(BIN)/pytest -q tests $(PYTEST_ARGS)

# Playwright drives Debian's Chromium (lab/lib/horizon.sh installs it): no browser download.
$(VENV)/.ui-deps: $(BIN)/os-onboard
	$(BIN)/pip install -q 'playwright>=1.49,<2'
	touch $@

test-ui: venv $(VENV)/.ui-deps lab-up  ## browser tests of Horizon's Onboarding panels (PNGs in build/screenshots/)
	$(BIN)/pytest -q tests/ui $(PYTEST_ARGS)

demo: venv lab-up  ## bring up the lab and onboard its legacy VMs, printing each step
	PATH=$(CURDIR)/$(BIN):$$PATH lab/demo

lab-up:  ## start the lab (idempotent; seconds when already up)
	$(LAB) up

lab-down:  ## stop everything the lab started
	$(LAB) down

lab-status:  ## show the lab's daemons and guests
	$(LAB) status

bench: venv lab-up  ## run the benchmarks (figures are printed, never asserted)
	$(BIN)/python bench/discovery/run.py
	$(BIN)/python bench/discovery/vsphere.py
	$(MAKE) --no-print-directory bench-adopt-vsphere

# Not in `bench`: it live-migrates a lab VM (adopting it first on a fresh lab) for minutes.
bench-reconcile: venv lab-up  ## reconcile: a pass over 10,000 simulated VMs, drift latency in the lab (libvirt, vCenter)
	flock /tmp/os-onboard-lab.lock $(BIN)/python bench/reconcile/run.py
	flock /tmp/os-onboard-lab.lock $(BIN)/python bench/reconcile/vsphere_latency.py

# Not in `bench`: it adds a (fake-driver) compute host and up to 200 servers to the lab for minutes.
bench-adopt: venv lab-up  ## adoption: plan + apply of 200 simulated VMs vs a naive loop
	flock /tmp/os-onboard-lab.lock $(BIN)/python bench/adopt/run.py

# In `bench`: 200 VMs made in the lab's vCenter simulator, adopted, released and destroyed (~10 min).
bench-adopt-vsphere: venv lab-up  ## adoption: plan + apply of 200 vSphere VMs (lab's vCenter, Nova's VMware driver) vs a naive loop
	flock /tmp/os-onboard-lab.lock $(BIN)/python bench/adopt/vsphere.py

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
