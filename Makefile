# Two commands do all the set-up (see README): `make train` and `make test`.
# Both create a local virtual environment in .venv on first use and install jaxms into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# JAX's persistent compilation cache, shared by tests, demos and benchmarks (git-ignored).
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.jax_cache

.PHONY: install train test lint clean bench-device notebooks

# The PyTorch path's wheel, installed before the extras: a bare `torch` requirement resolved with no torch
# present pulls the CUDA build (gigabytes); this pin takes the CPU wheel our machines carry. The torch extra
# (Stable-Baselines3 and sb3-contrib with it) then finds torch satisfied, so the torch tests run in CI.
# `pip install -e .` alone still works without torch. Override with e.g. `make install TORCH=torch==2.6.0`.
TORCH ?= torch==2.13.0

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev,torch,notebooks,video]"
	touch $(INSTALLED)

install: $(INSTALLED)

# The main job: train an agent (multi-scale views) against tribes on a small built-in map, then evaluate
# it against the baselines. The settings are benchmarks/learning.py's (a timed game of 80 steps) for
# 40,960 env steps, about 9-11 minutes on a 2-core CPU (README).
# Override with e.g. `make train TRAIN_ARGS="--map australia:915,290,1024,1024"`.
TRAIN_ARGS ?= --map continents_128 --num-bots 5 --max-steps 80 --time-limit lose --network-width 0.25 \
	--n-envs 16 --n-steps 32 --batch-size 128 --update-epochs 4 --learning-rate 1e-3 --lr-schedule linear \
	--reset-pool-size 64 --total-timesteps 40960 --eval-every 40 --eval-games 8 --name demo
train: $(INSTALLED)
	$(BIN)/python -m jaxms.train $(TRAIN_ARGS) --output-dir runs
	$(BIN)/python -m jaxms.evaluate $$(cat runs/LATEST) --games 10

lint: $(INSTALLED)
	$(BIN)/ruff check .

# Two pytest workers (pytest-xdist): most of the suite is single-threaded XLA compilation, so two cores
# halve it. A test file runs on one worker (--dist loadfile), so its module fixtures (a trained run) are
# made once and its later compiles hit JAX's persistent cache.
PYTEST_WORKERS ?= 2
# The notebooks run too (nbmake: each in its own kernel, at the small sizes of its parameter cell). Files are
# handed to the workers in the order given (--no-loadscope-reorder; xdist's default sorts them by their
# number of tests, which sent the longest files, the notebooks and the learning smoke tests, last, to run
# alone at the end): the longest first, longest to shortest, then the rest (pytest collects a file named
# twice once), so the many short files fill in around them. The order is that of each file's time in a
# cold suite (fresh clone, 2-core AMD EPYC, 2026-12-04, the suite's XLA options at -O0: 1,449 test-seconds).
LONGEST_TESTS := tests/test_reliability.py tests/test_torch.py tests/test_ppo.py \
	tests/test_torch_learning.py notebooks/03_single_vs_multi_scale.ipynb \
	notebooks/02_train_and_evaluate.ipynb tests/test_golden.py tests/test_benchmarks.py tests/test_observe.py \
	tests/test_nn.py tests/test_render.py tests/test_game_defense.py notebooks/01_quickstart.ipynb \
	tests/test_game_rules.py tests/test_play.py
test: $(INSTALLED) lint
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--durations=15 --nbmake --nbmake-timeout=900 $(LONGEST_TESTS) notebooks tests

# Jupyter Lab on notebooks/ with the project's environment (its kernel is .venv's Python).
notebooks: $(INSTALLED)
	$(BIN)/jupyter lab notebooks

# Every GPU measurement (env steps/s at 1024x1024 with 1/64/512 envs and at 128x128 with 4096 envs; whole
# training multi- vs single-scale at 1024x1024) in under 8 minutes on one GPU; writes
# benchmarks/results/device/<GPU name>.json and .md. `python -m benchmarks.device_suite --smoke` tries it on
# the CPU at tiny sizes.
bench-device: $(INSTALLED)
	$(BIN)/python -m benchmarks.device_suite $(BENCH_DEVICE_ARGS)

clean:
	rm -rf $(VENV) .jax_cache runs .pytest_cache .ruff_cache .hypothesis notebooks/output
