"""The torch learner learns: test_ppo.py's learning smoke test (the timed game on continents_96 against 5
tribes, same env, same PPO settings, same features-only policy, same bar) with `jaxms.torch.trainer` in
place of `jaxms.ppo.make_train`. The slowest torch test: the env runs step by step from the host."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is optional (pip install -e '.[torch]'); CI installs "
                                            "torch==2.13.0 so this runs there")

from minimal_observer import MinimalObserver  # noqa: E402

from jaxms.env import make_env  # noqa: E402
from jaxms.ppo import PPOConfig  # noqa: E402
from jaxms.torch.networks import MASKED_LOGIT  # noqa: E402
from jaxms.torch.trainer import make_torch_train  # noqa: E402


class FeaturesPolicy(torch.nn.Module):
    """test_ppo.py's FeaturesPolicy in torch: two tanh layers of 64 on the scalar features, orthogonal
    initialisation (sqrt 2 hidden, 0.01 policy, 1 value), masked logits."""

    def __init__(self, features: int = 4, actions: int = 45):
        super().__init__()
        self.hidden_0, self.hidden_1 = torch.nn.Linear(features, 64), torch.nn.Linear(64, 64)
        self.policy, self.value = torch.nn.Linear(64, actions), torch.nn.Linear(64, 1)
        for layer, gain in ((self.hidden_0, 2**0.5), (self.hidden_1, 2**0.5), (self.policy, 0.01),
                            (self.value, 1.0)):
            torch.nn.init.orthogonal_(layer.weight, gain)
            torch.nn.init.zeros_(layer.bias)

    def forward(self, obs):
        hidden = torch.tanh(self.hidden_1(torch.tanh(self.hidden_0(obs["features"]))))
        logits = torch.where(obs["action_mask"], self.policy(hidden), torch.tensor(MASKED_LOGIT))
        return logits, self.value(hidden)[..., 0], {}


# Open: with this seed the torch learner went 0.139 -> 0.236 (last two chunks), short of the bar (+0.25) that
# the JAX trainer clears (0.18 -> 0.68); until the cause is found this stays an expected failure.
@pytest.mark.xfail(reason="the torch learner does not yet clear the JAX smoke test's bar: 0.139 -> 0.236 of "
                          "the land, +0.25 needed (README, 'The PyTorch path')", strict=False)
def test_learning_smoke_a_timed_game_on_a_small_map():
    """As test_ppo.py's: from ~0.2 of the land in the first chunk to 0.25 more in the last two, 10,240 env
    steps (8 envs x 32 steps, 4 epochs of minibatches of 64, learning rate 2.5e-3)."""
    torch.set_num_threads(1)
    env = make_env("continents_96", num_bots=5, max_steps=60, time_limit="lose", reset_pool_size=32,
                   observer=MinimalObserver(8))
    config = PPOConfig(num_envs=8, n_steps=32, batch_size=64, update_epochs=4, learning_rate=2.5e-3,
                       total_timesteps=10_240, updates_per_chunk=4)
    torch.manual_seed(0)
    trainer = make_torch_train(config, env, network=FeaturesPolicy(), seed=0)
    runner = trainer.init()
    shares = []
    for _ in range(config.num_updates // config.updates_per_chunk):
        runner, metrics = trainer.train_chunk(runner)
        done = metrics["episodes"]
        shares.append(np.nansum(metrics["episode_land_share"] * done) / max(done.sum(), 1))
    assert len(shares) == 10 and shares[0] < 0.3, shares
    assert np.mean(shares[-2:]) > shares[0] + 0.25, shares
