PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROMPT ?= A retired lighthouse keeper and her estranged son sail from the stormy coast to the old harbour town to save the drowning lantern festival.

.PHONY: demo test test-heavy lint venv venv-test bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	# llama-cpp-python builds from source: a portable CPU build (GGML_NATIVE=OFF), because a
	# -march=native build uses AMX/AVX-512 kernels that die with SIGILL on some virtual machines
	CMAKE_ARGS="$${CMAKE_ARGS:--DGGML_NATIVE=OFF}" $(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	HF_HUB_OFFLINE=1 $(BIN)/cinerl make "$(PROMPT)" --out runs/demo --fresh

# the formatter, the linter and the layer contract of LAYOUT.md (pyproject.toml [tool.importlinter])
lint: venv
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/lint-imports

# two workers (pytest-xdist), one test file each at a time (module fixtures are built once)
test: venv lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not heavy" -n 2 --dist loadfile

# the trainers' multi-process (torchrun DDP/FSDP2) and SIGKILL-and-resume tests: minutes each on 2
# cores, so outside `make test`'s 15 minutes; CI runs them after it
test-heavy: venv
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m heavy

bench: venv
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/make_cpu.py

clean:
	rm -rf $(VENV) runs benchmarks/out
