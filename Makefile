# The two commands: `make demo` and `make test`. Each installs what it needs first, from the
# lock file requirements/dev.txt (`make lock` writes it from pyproject.toml).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/dev.txt
# Test processes (pytest-xdist workers); each starts its own pcscd, PostgreSQL and browser.
JOBS ?= 3
# Reinstall only when the requirements change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | sha1sum | cut -c1-12)
LATEST := .venv-latest

.PHONY: demo test lint lock lock-upgrade test-latest system-demo system-test clean

demo: system-demo $(STAMP)
	$(BIN)/moulin demo $(if $(PORT),--port $(PORT))

# pytest fails when it runs no test (exit 5) as when one fails; --durations is in pyproject.
test: system-test $(STAMP) lint
	$(BIN)/pytest -n $(JOBS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The lock files: `make lock` after changing pyproject.toml's dependencies (keeps the
# versions pinned where still allowed); `make lock-upgrade` for the newest allowed.
lock:
	bash scripts/lock.sh

lock-upgrade:
	bash scripts/lock.sh --upgrade

# The suite against the newest releases pyproject.toml allows, in a venv of its own (not
# in .ci/run: it tells whether `make lock-upgrade` is safe). Lists what lies beyond the
# upper bounds too.
test-latest: system-test
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	$(LATEST)/bin/python -m pip list --outdated
	$(LATEST)/bin/ruff check .
	$(LATEST)/bin/mypy
	$(LATEST)/bin/pytest -n $(JOBS) $(PYTEST_ARGS)

system-demo:
	@bash scripts/system-deps.sh demo

system-test:
	@bash scripts/system-deps.sh test

# pip checks every file against the lock's hashes; the package itself comes after,
# without dependencies, and `pip check` fails when the lock misses one pyproject needs.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@rm -f $(VENV)/.installed-*
	@touch $@

clean:
	rm -rf $(VENV) $(LATEST) var .pytest_cache .mypy_cache .ruff_cache
