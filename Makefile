# Two commands do all the set-up (see README): `make train` and `make test`.
# Both create a local virtual environment in .venv on first use and install jaxms into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# JAX's persistent compilation cache, shared by tests, demos and benchmarks (git-ignored).
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.jax_cache

.PHONY: install train test lint clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

# The main job. Until the trainer lands, this runs the map demo: it generates a built-in map and renders it.
train: $(INSTALLED)
	$(BIN)/python -m jaxms.maps show continents_256 --out runs/demo/continents_256.png
	$(BIN)/python -m jaxms.maps show islands_256x128_s1 --out runs/demo/islands_256x128_s1.png

lint: $(INSTALLED)
	$(BIN)/ruff check .

test: $(INSTALLED) lint
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .jax_cache runs .pytest_cache .ruff_cache .hypothesis
