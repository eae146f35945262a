# Two entry points for a fresh machine (see README): `make run` and `make test`.
# Everything else here is what those two need; each step is idempotent and skipped when already done.

PYTHON ?= python3
# OpenMP threads must not spin between parallel regions: on 2 shared cores that made training 2-3x slower.
export OMP_WAIT_POLICY ?= PASSIVE
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install web chromium services lint typecheck pytest test-slow test-gpu bench clean

run: install web
	$(BIN)/vidscene serve

test: install web chromium services lint typecheck pytest

install: $(STAMP)

# pip resolves torch==2.13.0 (CPU build) from local disk on these machines; see README "GPU install".
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

web:
	bash scripts/build-web.sh

chromium:
	bash scripts/install-chromium.sh

services:
	bash scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check vidscene tests bench scripts

typecheck: install
	$(BIN)/mypy

# The default run: everything but tests marked slow or gpu (those run with `make test-slow` / `make test-gpu`).
# It runs on two pytest-xdist workers, each test module on one worker (--dist loadscope: a module's shared
# server, browser or trained scene is set up once): 1126 tests in 565 s on a quiet 2-core VM against 965 s in
# one process (bench/RESULTS.md, "CI time"), which keeps CI well inside its 20 minutes. PYTEST_WORKERS=0 runs
# them in one process (for a debugger, or to rule xdist out when a test fails only there).
PYTEST_WORKERS ?= 2
pytest: install
	$(BIN)/python -m pytest -m "not slow and not gpu" -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

test-slow: install web chromium services
	$(BIN)/python -m pytest -m "slow and not gpu" $(PYTEST_ARGS)

test-gpu: install
	$(BIN)/python -m pytest -m gpu $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) vidscene/web/dist vidscene/web/node_modules .pytest_cache .mypy_cache .ruff_cache
