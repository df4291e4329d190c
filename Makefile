# The README's two commands: `make demo` and `make test`. Everything else is a convenience.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Records each part's wall time for benchmark 7 (benchmarks/suite_times.py).
TIMED = $(BIN)/python -m benchmarks.suite_times run
PARAMS ?= parameters/sandbox.yaml
export EGRESS_SANDBOX_HOME ?= $(CURDIR)/.sandbox
# The SDKs send every call through HTTP(S)_PROXY when set, even to loopback.
unexport HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
export ALIBABA_CLOUD_ECS_METADATA_DISABLED := true

.PHONY: demo test bench lint typecheck notebooks lab lock sandbox-up sandbox-down clean

# constraints.txt pins the whole dependency set (`make lock` refreshes it), so two machines a
# month apart install the same versions.
$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

demo: $(BIN)/.installed  ## start the sandbox and run the whole runbook headless
	$(BIN)/egress-sandbox up
	$(BIN)/egress-runbook run $(PARAMS) --approve  # the demo says yes; sandbox.yaml, like every default, says no

test: $(BIN)/.installed  ## every test: lint, types, unit, integration, sandbox, nbval
	$(TIMED) lint -- $(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(TIMED) types -- $(BIN)/mypy
	$(TIMED) pytest -- $(BIN)/pytest tests
	$(TIMED) nbval -- $(BIN)/pytest --nbval --nbval-current-env --nbval-sanitize-with tests/notebooks/sanitize.cfg -p no:cacheprovider notebooks

bench: $(BIN)/.installed  ## every benchmark against fresh sandboxes; writes BENCHMARKS.md
	$(BIN)/python -m benchmarks

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

notebooks: $(BIN)/.installed  ## re-execute the committed notebooks in place against a fresh sandbox
	$(BIN)/python scripts/refresh_notebooks.py

# Root (CI machines, containers) needs --allow-root; the server listens on loopback only.
LAB_FLAGS := --ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: $(BIN)/.installed  ## start the sandbox and open JupyterLab on notebooks/
	$(BIN)/egress-sandbox up
	EGRESS_RUNS_DIR=$(CURDIR)/runs $(BIN)/jupyter lab $(LAB_FLAGS) notebooks/

lock:  ## re-pin constraints.txt from pyproject.toml's ranges (then commit it)
	PYTHON=$(PYTHON) scripts/lock.sh

sandbox-up: $(BIN)/.installed
	$(BIN)/egress-sandbox up

sandbox-down: $(BIN)/.installed
	$(BIN)/egress-sandbox down

clean:
	-$(BIN)/egress-sandbox down
	rm -rf .sandbox runs .pytest_cache .mypy_cache .ruff_cache
