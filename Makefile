# churnpredict — run `make` (or `make help`) to see the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
CP := $(VENV)/bin/churnpredict
PYTHON ?= python3
DEMO_DIR ?= data/demo
DEMO_OUT ?= reports/demo
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db

.PHONY: help setup demo test test-fast lint format bench clean mlflow-ui docs

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,spark]"
	@touch $@

setup: $(VENV)/.installed ## Create .venv and install the package with dev and spark extras

demo: setup ## Simulate a world, train, score the last day, print where the call list is
	$(CP) simulate --out $(DEMO_DIR) --seed 42
	$(CP) train --data $(DEMO_DIR)
	$(CP) score --data $(DEMO_DIR) --as-of latest --out $(DEMO_OUT)/call_list.csv
	@if command -v chromium >/dev/null 2>&1; then \
	  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,1100 \
	    --screenshot=$(CURDIR)/$(DEMO_OUT)/digest.png file://$(CURDIR)/$(DEMO_OUT)/call_list.html \
	    >/dev/null 2>&1 && echo "Digest rendered by headless Chromium: $(DEMO_OUT)/digest.png"; \
	else echo "chromium not found: the digest was not rendered (apt-get install chromium)"; fi
	@echo ""
	@echo "Call list: $(CURDIR)/$(DEMO_OUT)/call_list.csv"
	@echo "Digest:    $(CURDIR)/$(DEMO_OUT)/call_list.html"
	@echo "Report:    $(CURDIR)/reports/train/report.html   (MLflow: make mlflow-ui)"

test: setup ## Run the whole test suite
	$(PY) -m pytest -n 2 --dist loadgroup -q

test-fast: setup ## Run unit tests only
	$(PY) -m pytest -q tests/unit

lint: setup ## Lint with ruff
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: setup ## Format with ruff
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: setup ## Run the benchmarks and append results to BENCHMARKS.md
	$(PY) -m benchmarks.run

docs: setup ## Regenerate docs/features.md
	$(CP) features list --markdown docs/features.md

mlflow-ui: setup ## Open the MLflow UI on the local store (http://127.0.0.1:5000)
	$(VENV)/bin/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port 5000

clean: ## Remove generated data, models, reports, stores and caches (keeps .venv)
	rm -rf data/demo reports/* models/* mlruns mlartifacts mlflow.db .pytest_cache .ruff_cache .hypothesis bench-data
	git checkout -- data/README.md models/README.md reports/README.md 2>/dev/null || true
	find . -name __pycache__ -prune -not -path './.venv/*' -exec rm -rf {} +
