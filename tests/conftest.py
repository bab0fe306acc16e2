"""Test harness set-up, once per session: CPU only, JAX's persistent compilation cache, shared map files."""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports JAX: tests always run on the CPU, and compiled programs are cached on disk
# (a git-ignored folder) so repeated runs skip most compilation.
REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
# Programs that compile in 0.1 s or more are cached too: the command-line runs and notebooks the tests start
# find them there (cold suite, 2-core Intel Xeon: 9:03 with 0.5 s, 8:40 with 0.1 s; 1,064 -> 1,018 CPU-s).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
# XLA options that compile faster (tests/xla_options.py), for this process and the notebooks and command-line
# runs it starts, which inherit this environment.
from xla_options import TEST_XLA_FLAGS  # noqa: E402

os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *TEST_XLA_FLAGS]).strip()

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# JIT-heavy property tests must not fail on the first example's compile time.
settings.register_profile("jaxms", deadline=None, max_examples=25)
settings.load_profile("jaxms")

# The real OpenFront maps live beside the repository (../shared), never inside it.
SHARED_MAPS_DIR = REPO_ROOT.parent / "shared" / "maps" / "openfront"


@pytest.fixture(scope="session")
def openfront_maps_dir() -> Path:
    """Folder holding the real OpenFront maps (australia, pangaea); skips the test when absent."""
    if not (SHARED_MAPS_DIR / "australia" / "manifest.json").is_file():
        pytest.skip(f"real OpenFront maps not found at {SHARED_MAPS_DIR} (they ship in ../shared, which is "
                    "absent here)")
    return SHARED_MAPS_DIR


# The command-line runs of test_train.py and test_reliability.py: one set of programs, so that JAX's
# persistent compilation cache serves every later run (and subprocess). Small views (16x16, one frame) and a
# narrow network without attention blocks.
TINY_CLI = ["--map", "plains_32", "--num-bots", "1", "--obs", "single", "--global-size", "16",
            "--frame-stack", "1", "--network-width", "0.125", "--attention", "false",
            "--n-envs", "2", "--n-steps", "8", "--batch-size", "8", "--update-epochs", "1",
            "--max-steps", "5", "--checkpoint-every", "1", "--image-every", "0"]


# One tiny PPO run shared by test_ppo.py and test_train.py, so its jitted `train_chunk` compiles once a
# session (per xdist worker): plains_32, one tribe, 6-step episodes, the minimal
# observer at 16x16 (compiling the real views and a network on them took minutes on a 2-core CPU) and an
# eighth-width single-view network.
TINY_PPO = {"num_envs": 2, "n_steps": 8, "batch_size": 8, "update_epochs": 2, "total_timesteps": 2 * 8 * 4,
            "updates_per_chunk": 2, "learning_rate": 1e-3}


@pytest.fixture(scope="session")
def tiny_run():
    """(env, network, trainer) of the tiny run: 4 updates of 16 env steps, 2 updates a chunk."""
    from minimal_observer import MinimalObserver

    from jaxms.env import make_env
    from jaxms.nn import NetworkConfig, make_network
    from jaxms.ppo import PPOConfig, make_train

    env = make_env("plains_32", num_bots=1, max_steps=6, reset_pool_size=2, observer=MinimalObserver(16))
    network = make_network(NetworkConfig(obs="single", width=0.125, heads=1))
    return env, network, make_train(PPOConfig(**TINY_PPO), env, env.default_params, network)
