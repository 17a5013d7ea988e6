PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck unit scenarios bench soak screenshot clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# `make run CONFIG=engine.toml` runs on a configuration; without one, the demo.
# `make run BROKER=tradovate-sim` runs it on the local Tradovate-compatible server, started inside
# the engine (without CONFIG, in data/tradovate-sim/: the paper demo's store stays apart).
run: $(STAMP)
	$(if $(filter-out tradovate-sim,$(BROKER)),$(error BROKER=$(BROKER): expected tradovate-sim, or no BROKER for the paper broker))
	$(BIN)/python -m engine run $(if $(CONFIG),--config $(CONFIG)) \
		$(if $(BROKER),--tradovate-sim $(if $(CONFIG),,--data-dir data/tradovate-sim))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# Both cores: the suite's tests are spread over one worker per core (pytest-xdist).
unit: $(STAMP)
	$(BIN)/python -m pytest -n auto

# Both runtimes at once, one to a core; the threads runtime's report is printed after the
# deterministic one's, and either failing fails the target.
scenarios: $(STAMP)
	$(BIN)/python -m engine replay scenarios --runtime threads > $(VENV)/scenarios-threads.log 2>&1 & \
	$(BIN)/python -m engine replay scenarios; deterministic=$$?; \
	wait $$!; threads=$$?; cat $(VENV)/scenarios-threads.log; \
	test $$deterministic -eq 0 && test $$threads -eq 0

test: lint typecheck unit scenarios

bench: $(STAMP)
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.brackets
	$(BIN)/python -m bench.risk
	$(BIN)/python -m bench.recovery
	$(BIN)/python -m bench.tradovate
	$(BIN)/python -m bench.aged
	$(BIN)/python -m bench.load
	$(BIN)/python -m bench.replay
	$(BIN)/python -m bench.goals

# The property suite's long profile: many more examples, the seed and the example counts printed;
# then thirty days of the demo at its rate on the virtual clock (tests/engine/test_long_run.py,
# about 20 minutes), each day's sizes printed.
soak: $(STAMP)
	HYPOTHESIS_PROFILE=soak $(BIN)/python -m pytest tests/properties tests/brokers/tradovate/test_wire_fuzz.py \
		-q -s -p no:cacheprovider --hypothesis-show-statistics -o timeout=0
	ENGINE_LONG_RUN_DAYS=30 ENGINE_LONG_RUN_RATE=demo $(BIN)/python -m pytest \
		tests/engine/test_long_run.py -q -s -p no:cacheprovider -o timeout=0

# The README's picture of the Cockpit, taken by the browser test in headless chromium (a real
# engine, the demo copying); the test says why it skipped when no chromium is found.
screenshot: $(STAMP)
	COCKPIT_SCREENSHOT=$(CURDIR)/docs/cockpit.png $(BIN)/python -m pytest \
		tests/engine/api/test_browser.py -q -rs -p no:cacheprovider
	@test -f docs/cockpit.png && echo "docs/cockpit.png written" || echo "no screenshot taken"

clean:
	rm -rf $(VENV) data .mypy_cache .pytest_cache .ruff_cache
