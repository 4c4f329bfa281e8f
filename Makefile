# Two commands do all set-up: `make demo` and `make test` create .venv when it is missing
# and re-sync it whenever requirements.lock (or pyproject.toml) is newer than the last sync.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
# uv does not read pip's configuration; machines that carry local wheels (the CPU torch
# build here) name them in pip's find-links or in PIP_FIND_LINKS, so pass them on.
FIND_LINKS := $(strip $(PIP_FIND_LINKS) $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
UV_LINKS := $(foreach d,$(FIND_LINKS),--find-links $(d))
export HF_HUB_OFFLINE ?= 1
export RAY_AUTH_MODE ?= disabled

.PHONY: demo test bench lock clean-venv
demo: $(VENV)/.synced
	$(VENV)/bin/soundry demo

test: $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest -q

bench: $(VENV)/.synced
	$(VENV)/bin/python bench/curation.py

$(VENV)/.synced: requirements.lock pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(VENV)/bin/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --python $(VENV)/bin/python --compile-bytecode $(UV_LINKS) requirements.lock
	@touch $@

# Re-resolve the lock after changing dependencies in pyproject.toml or requirements.in.
lock: $(VENV)/.synced
	$(UV) pip compile --python-version 3.11 $(UV_LINKS) --upgrade requirements.in -o requirements.lock

clean-venv:
	rm -rf $(VENV)
