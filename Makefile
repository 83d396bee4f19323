# Tollhouse: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -hE '^[a-z][a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the locked dependencies and the project

system-deps: ## Install the Debian packages the browser tests and benchmarks need (chromium, a CJK font, wrk)
	@command -v chromium >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi wenquanyi || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei wrk >/dev/null; }

run: install ## Run the hub on 127.0.0.1:8000 (migrates, seeds the demo once, generates keys)
	$(BIN)/tollhouse serve

test: install system-deps ## Run the whole test suite (set TOLLHOUSE_DATABASE_URL for PostgreSQL)
	$(BIN)/pytest -q -n 2 -p no:cacheprovider

soak: install ## Longer runs: 3,000 differential policy decisions (embedded vs OPA REST); two hubs on PostgreSQL for 120 s; schemathesis with 200 examples per operation
	TOLLHOUSE_DIFFERENTIAL_EXAMPLES=3000 $(BIN)/pytest -q -p no:cacheprovider tests/policy/test_differential.py
	TOLLHOUSE_SCALEOUT_SECONDS=120 TOLLHOUSE_SCALEOUT_PULLERS=50 $(BIN)/pytest -q -p no:cacheprovider tests/hardening/test_scaleout.py  # PostgreSQL only
	TOLLHOUSE_FUZZ_EXAMPLES=200 $(BIN)/pytest -q -p no:cacheprovider tests/hardening/test_schemathesis.py

lint: install ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check hub consent connectors tests bench
	$(BIN)/ruff format --check hub consent connectors tests bench
	$(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix hub consent connectors tests bench
	$(BIN)/ruff format hub consent connectors tests bench

bench: install ## Run the benchmarks: one table, bench/results/latest.json + PNG (ARGS=--quick)
	$(BIN)/python -m bench $(ARGS)

demo: install ## Tell the demo story against the running hub
	$(BIN)/tollhouse demo

lock: ## Re-resolve requirements.lock from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock -q

.PHONY: help install system-deps run test soak lint format bench demo lock
