PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck unit scenarios bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m engine run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest

scenarios: $(STAMP)
	$(BIN)/python -m engine replay scenarios
	$(BIN)/python -m engine replay scenarios --runtime threads

test: lint typecheck unit scenarios

bench: $(STAMP)
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.risk
	$(BIN)/python -m bench.recovery

# The property suite's long profile: many more examples, seed printed on failure.
soak: $(STAMP)
	HYPOTHESIS_PROFILE=soak $(BIN)/python -m pytest tests/properties -q -p no:cacheprovider

clean:
	rm -rf $(VENV) data .mypy_cache .pytest_cache .ruff_cache
