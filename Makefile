# The targets people and CI both run. `make test` and `make demo` set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp

.PHONY: demo test check lint unit bench tools clean

# The main job: local broker (unless KAFKA_BOOTSTRAP_SERVERS is set), simulated traffic,
# and the daemon with readable logs. Ctrl-C stops it.
demo: tools $(STAMP)
	scripts/demo

# Whole suite: lint, types, unit tests, and integration tests on a real Kafka broker
# (KAFKA_BOOTSTRAP_SERVERS if set, else Docker via testcontainers, else scripts/kafka-local).
test: tools $(STAMP)
	@# the image test's stand-in base takes minutes on a new machine: make it meanwhile
	@scripts/image base >$(VENV)/image-base.log 2>&1 & \
	    echo "test: making the image's stand-in base in the background ($(VENV)/image-base.log)"
	$(MAKE) check
	$(BIN)/pytest

# System tools the tests use: kcat, Java and Maven (installed with apt-get when missing).
tools:
	scripts/setup-tools

# Static checks only (ruff, mypy --strict, the layers' import contracts, hadolint).
check lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

# Unit tests only: no broker, seconds.
unit: $(STAMP)
	$(BIN)/pytest tests/unit

# Benchmarks (not part of the test suite): print their figures, ratios and targets.
# BENCH_FLAGS=--quick runs them about ten times smaller.
bench: tools $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_FLAGS)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
