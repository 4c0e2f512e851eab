# The two commands the README promises: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
LINTED := $(wildcard src tests bench)
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test lint format postgres libreoffice bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# A development .env with a random JWT secret, written once and never overwritten.
.env:
	@printf 'B24MW_JWT_SECRET=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))')" > .env
	@echo "wrote .env with a fresh B24MW_JWT_SECRET"

# The whole product: API + worker + (with no B24MW_B24_URL) the built-in emulator.
run: install .env
	$(BIN)/b24mw run --host $(HOST) --port $(PORT)

# PostgreSQL server binaries for the test harness (it starts its own server).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

# Headless LibreOffice: the report tests open our CSV and workbooks in it
# (about 15 s to install from Debian on the development machine).
libreoffice:
	@if ! dpkg -s libreoffice-calc-nogui >/dev/null 2>&1 && ! dpkg -s libreoffice-calc >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends libreoffice-calc-nogui >/dev/null; \
	fi

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	# Dead code; settings in [tool.vulture], framework-used names in vulture_whitelist.py.
	$(BIN)/vulture

test: install postgres libreoffice lint
	$(BIN)/pytest -q -rs

# Every benchmark in bench/ (quick settings; BENCH_ARGS=--full for the bars' sizes):
# one JSON file in var/bench/ and a table, each figure beside its baseline.
bench: install postgres
	$(BIN)/python -m bench $(BENCH_ARGS)

format: install
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
