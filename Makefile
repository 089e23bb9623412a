# make demo  — set up .venv and run the CPU demo (GRPO vs DMPO on NP-Bench, with a report)
# make test  — set up .venv and .venv-verl and run the whole test suite (slow tests included)
# make verl-setup — .venv-verl: verl (pins transformers<5.11) with dmpo[verl], CPU torch, no TRL
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VVENV := .venv-verl
VBIN := $(VVENV)/bin
VSTAMP := $(VVENV)/.installed

.PHONY: setup verl-setup demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[trl,dev,sources]"
	touch $(STAMP)

setup: $(STAMP)

# torch first, from the same pin as .venv (the CPU wheel): verl itself lists no torch, but its
# dependencies (accelerate, peft, torchdata, tensordict) would otherwise resolve a CUDA build.
$(VSTAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VVENV)
	$(VBIN)/python -m pip install -q --upgrade pip
	$(VBIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(VBIN)/python -m pip install -q -c constraints.txt -e ".[verl,dev]"
	touch $(VSTAMP)

verl-setup: $(VSTAMP)

demo: $(STAMP)
	$(BIN)/dmpo demo --output-dir runs/demo

# The two environments are built side by side (mostly downloads and unpacking).
test:
	@$(MAKE) --no-print-directory -j2 $(STAMP) $(VSTAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q
	$(VBIN)/python -m pytest -q tests/engines/verl

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(VVENV) runs
