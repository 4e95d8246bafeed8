# The targets people and CI both run. `make test` and `make demo` set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
# The package as the image ships it, engine compiled by mypyc (setup.py), unpacked here;
# tests and benchmarks put it first on the path. Any source change rebuilds it.
COMPILED := build/compiled
COMPILED_STAMP := $(COMPILED)/.built
SOURCES := $(shell find consumer -name '*.py') setup.py pyproject.toml

.PHONY: demo test check lint unit unit-compiled compiled bench tools clean
.PHONY: integration integration-kafka4

# The main job: local broker (unless KAFKA_BOOTSTRAP_SERVERS is set), simulated traffic,
# and the daemon with readable logs. Ctrl-C stops it.
demo: tools $(STAMP)
	scripts/demo

# Whole suite: lint, types, unit tests, the engine's and step's tests again on the build
# compiled by mypyc, then integration tests on the source as it is (KAFKA_BOOTSTRAP_SERVERS
# if set, else Docker via testcontainers, else scripts/kafka-local), in
# INTEGRATION_WORKERS processes (pytest-xdist).
INTEGRATION_WORKERS ?= 2
test: tools $(STAMP)
	@# the image test's stand-in base takes minutes on a new machine: make it meanwhile
	@scripts/image base >$(VENV)/image-base.log 2>&1 & \
	    echo "test: making the image's stand-in base in the background ($(VENV)/image-base.log)"
	@# the static checks, the unit tests and the compiled engine's build and tests are each
	@# mostly one core: side by side; then the integration tests, which mostly wait on time,
	@# in processes of their own (tests/integration/conftest.py keeps the modules with a
	@# broker or image of their own whole); without KAFKA_BOOTSTRAP_SERVERS each process
	@# starts a broker of its own
	$(MAKE) --jobs=3 --output-sync=target check unit unit-compiled
	$(MAKE) --jobs=2 --output-sync=target integration integration-kafka4

integration: $(STAMP)
	$(BIN)/pytest --numprocesses=$(INTEGRATION_WORKERS) --dist=load tests/integration

# The compatibility subset (tests marked kafka4: live, backlog, restart, TLS, OAuth) again on a
# Kafka 4 broker of scripts/kafka-local's, beside the main run: both mostly wait on time.
# Under CI a 4.x broker that cannot start fails the run (tests/integration/harness.py).
KAFKA4_VERSION ?= 4.1.1
integration-kafka4: $(STAMP)
	env -u KAFKA_BOOTSTRAP_SERVERS KAFKA_LOCAL_VERSION=$(KAFKA4_VERSION) \
	    $(BIN)/pytest -p no:xdist -m kafka4 tests/integration

# System tools the tests use (kcat, Java and Maven, a C compiler...: scripts/setup-tools),
# installed with apt-get when missing.
tools:
	PYTHON=$(PYTHON) scripts/setup-tools

# Static checks only (ruff, mypy --strict, the layers' import contracts, hadolint, and
# helm lint and render of the chart with the values docs/operate/deploying.md installs it with).
HELM = $(shell scripts/setup-tools helm-path 2>/dev/null)
CHART := deploy/helm/interaction-consumer
CHART_VALUES := --set image.repository=registry.example.com/interaction-consumer \
    --set existingSecret=interaction-consumer-credentials
check lint: $(STAMP) $(HELM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/gen_config_doc.py --check
	$(BIN)/hadolint Dockerfile
	$(HELM) lint --strict --quiet $(CHART) $(CHART_VALUES)
	$(HELM) template interaction-consumer $(CHART) $(CHART_VALUES) >/dev/null

$(HELM):
	PYTHON=$(PYTHON) scripts/setup-tools

# Unit tests only: no broker, seconds.
unit: $(STAMP)
	$(BIN)/pytest tests/unit

# The engine's, the formats' and the daemon's unit tests again on the compiled build: it
# must behave exactly as its source does. --import-mode=append keeps the checkout's own
# consumer/ behind the compiled one.
ENGINE_TESTS := tests/unit/engine tests/unit/formats tests/unit/daemon
unit-compiled: $(COMPILED_STAMP)
	PYTHONPATH=$(COMPILED) $(BIN)/python -P -c 'import consumer.engine as e; assert e.compiled()'
	PYTHONPATH=$(COMPILED) $(BIN)/pytest --import-mode=append -p no:cacheprovider $(ENGINE_TESTS)

compiled: $(COMPILED_STAMP)

$(COMPILED_STAMP): $(STAMP) $(SOURCES)
	rm -rf build  # setuptools packs whatever an earlier build left in build/lib
	CONSUMER_USE_MYPYC=1 $(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir build/wheel .
	$(BIN)/python -m zipfile -e build/wheel/interaction_consumer-*.whl $(COMPILED)
	rm -rf $(COMPILED)/*.dist-info
	touch $@

# Benchmarks (not part of the test suite): print their figures, ratios and targets, on the
# compiled engine as the image ships it (BENCH_SOURCE=1: on the source, uncompiled).
# BENCH_FLAGS=--quick runs them about ten times smaller. PYTHONSAFEPATH keeps the checkout's
# consumer/ behind the compiled one in every process the benchmarks start.
bench: tools $(BENCH_STAMP) $(if $(BENCH_SOURCE),,$(COMPILED_STAMP))
	PYTHONSAFEPATH=1 PYTHONPATH=$(if $(BENCH_SOURCE),,$(COMPILED):). $(BIN)/python -m bench $(BENCH_FLAGS)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
