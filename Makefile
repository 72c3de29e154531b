# Two commands do all the set-up on a fresh machine:
#   make run    install, then train NegGen on Baby (NEGGEN_DATA_PATH names the folder holding baby/)
#   make test   install, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
NEGGEN_DATA_PATH ?= ../shared/data
MODEL ?= NegGen
DATASET ?= baby
export OMP_NUM_THREADS ?= 1

.PHONY: install run test

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-deps recbole==1.2.1
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip show torch | grep -q "^Version: 2.13.0" || (echo "torch is no longer 2.13.0" && exit 1)
	touch $@

run: install
	NEGGEN_DATA_PATH=$(NEGGEN_DATA_PATH) $(PY) run_recbole_neggen.py --model=$(MODEL) --dataset=$(DATASET) $(ARGS)

test: install
	NEGGEN_DATA_PATH=$(NEGGEN_DATA_PATH) $(PY) -m pytest -q $(PYTEST_ARGS)
