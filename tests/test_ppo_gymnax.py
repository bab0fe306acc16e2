"""PPO as a library: `jaxms.ppo.make_train` on gymnax's own environments, unchanged.

gymnax >= 1.0's six-value step, its five-value legacy form and its LogWrapper train identically; the trainer
records episode returns itself when the env does not; networks may return (logits, value) or (logits, value,
None); PureJaxRL's clipped value loss and `num_minibatches` are options. The learning check runs PureJaxRL's
CartPole-v1 hyperparameters on a fifth of its 5e5 steps (about 10 s on a 2-core CPU); the full-length runs
(CartPole-v1 and Acrobot-v1, several seeds) are `python -m benchmarks.ppo_gymnax`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxms.ppo import ActorCritic, EpisodeRecord, PPOConfig, make_train, ppo_loss

gymnax = pytest.importorskip("gymnax", reason="gymnax is in the dev extra: pip install -e '.[dev]'")
from gymnax.wrappers import LegacyStepAPIWrapper, LogWrapper  # noqa: E402

# PureJaxRL's CartPole-v1 PPO (purejaxrl/ppo.py), in PPOConfig's names.
PUREJAXRL = dict(num_envs=4, n_steps=128, num_minibatches=4, update_epochs=4, total_timesteps=500_000,
                 learning_rate=2.5e-4, lr_schedule="linear", gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
                 ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, value_loss="max_clipped")


def test_num_minibatches_derives_the_batch_size_and_disagreement_is_refused():
    config = PPOConfig(num_envs=4, n_steps=128, num_minibatches=4)
    assert (config.batch_size, config.minibatches) == (128, 4)
    assert PPOConfig(num_envs=4, n_steps=128, batch_size=128, num_minibatches=4).batch_size == 128
    assert PPOConfig(num_envs=4, n_steps=128, batch_size=64).minibatches == 8
    with pytest.raises(ValueError, match="batch_size 64 and num_minibatches 4 disagree"):
        PPOConfig(num_envs=4, n_steps=128, batch_size=64, num_minibatches=4)
    with pytest.raises(ValueError, match="num_minibatches 3 must divide the rollout size"):
        PPOConfig(num_envs=4, n_steps=128, num_minibatches=3)
    with pytest.raises(ValueError, match="clip_value applies to value_loss='squared' only"):
        PPOConfig(value_loss="max_clipped", clip_value=True)
    with pytest.raises(ValueError, match="value_loss='huber' is not accepted"):
        PPOConfig(value_loss="huber")


def test_the_max_clipped_value_loss_is_purejaxrls():
    values, old_values = jnp.array([0.0, 1.0, 2.0, -1.0]), jnp.array([0.5, 0.5, 0.5, 0.5])
    returns = jnp.array([1.0, 0.0, 3.0, 0.0])
    logits, actions = jnp.zeros((4, 2)), jnp.zeros(4, jnp.int32)
    common = dict(clip_eps=0.2, vf_coef=1.0, ent_coef=0.0)
    _, metrics = ppo_loss(logits, values, actions, jnp.log(jnp.full(4, 0.5)), old_values, jnp.zeros(4),
                          returns, value_loss="max_clipped", **common)
    clipped = np.asarray(old_values) + np.clip(np.asarray(values - old_values), -0.2, 0.2)
    expected = 0.5 * np.mean(np.maximum((returns - values) ** 2, (returns - clipped) ** 2))
    assert float(metrics["value_loss"]) == pytest.approx(expected, rel=1e-6)
    _, squared = ppo_loss(logits, values, actions, jnp.log(jnp.full(4, 0.5)), old_values, jnp.zeros(4),
                          returns, **common)
    assert float(squared["value_loss"]) == pytest.approx(float(np.mean((returns - values) ** 2)), rel=1e-6)


class NoneAux:
    """A network returning (logits, value, None): `aux` need not be a dict."""

    def __init__(self, network):
        self.network = network

    def init(self, key, obs):
        return self.network.init(key, obs)

    def apply(self, params, obs):
        return (*self.network.apply(params, obs), None)


def test_gymnax_step_forms_train_identically_and_episodes_are_recorded():
    """Bare gymnax (six values; the trainer records the episodes) and gymnax's LogWrapper (which records
    them) under its legacy five-value wrapper, with a network whose aux is None, give the same parameters
    and episode statistics, truncations (a 12-step limit) bootstrapped from the final observation in both."""
    env, env_params = gymnax.make("CartPole-v1")
    env_params = dataclasses.replace(env_params, max_steps_in_episode=12)
    config = PPOConfig(num_envs=2, n_steps=32, num_minibatches=2, update_epochs=2, total_timesteps=2 * 32 * 3,
                       updates_per_chunk=3, value_loss="max_clipped", learning_rate=1e-3)
    network = ActorCritic(num_actions=env.action_space(env_params).n)
    results = []
    for variant, net in ((env, network), (LegacyStepAPIWrapper(LogWrapper(env)), NoneAux(network))):
        trainer = make_train(config, variant, env_params, net)
        runner = trainer.init(jax.random.key(3))
        assert isinstance(runner.env_state, EpisodeRecord) == (variant is env)  # else LogWrapper records
        runner, metrics = trainer.train_chunk(runner)
        results.append((jax.tree.leaves(runner.params), metrics))
    (params, metrics), others = results[0], results[1:]
    assert np.all(np.asarray(metrics["episodes"]) > 0)
    assert np.all(np.asarray(metrics["episode_length"]) <= 12)
    # CartPole pays 1 per step: a return is its episode's length.
    np.testing.assert_allclose(metrics["episode_return"], metrics["episode_length"])
    for other_params, other_metrics in others:
        for a, b in zip(params, other_params, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        for name in ("episodes", "episode_return", "episode_length", "loss"):
            np.testing.assert_allclose(metrics[name], other_metrics[name], rtol=1e-5, err_msg=name)


def test_a_step_of_another_shape_is_refused_with_what_is_accepted():
    env, env_params = gymnax.make("CartPole-v1")

    class FourValues(LegacyStepAPIWrapper):
        def step(self, key, state, action, params=None):
            return self._env.step(key, state, action, params)[:4]

    with pytest.raises(TypeError, match=r"must return \(obs, state, reward, terminated, truncated, info\)"):
        make_train(PPOConfig(num_envs=2, n_steps=8, batch_size=8), FourValues(env), env_params,
                   ActorCritic(num_actions=2))


def test_cartpole_learns_with_purejaxrls_hyperparameters():
    """A fifth of PureJaxRL's CartPole-v1 run (1e5 steps, its schedule over them): the mean return climbs
    from random play's ~20 to over 150 (the full run reaches 500: benchmarks/results/ppo_gymnax.md)."""
    env, env_params = gymnax.make("CartPole-v1")
    config = PPOConfig(**{**PUREJAXRL, "total_timesteps": 100_352, "updates_per_chunk": 49})
    trainer = make_train(config, env, env_params, ActorCritic(num_actions=env.action_space(env_params).n))
    runner = trainer.init(jax.random.key(0))
    returns = []
    while int(runner.update) < config.num_updates:
        runner, metrics = trainer.train_chunk(runner)
        returns.extend(np.asarray(metrics["episode_return"]).tolist())
    assert len(returns) == config.num_updates == 196
    first, last = np.nanmean(returns[:10]), np.nanmean(returns[-20:])
    assert first < 60, returns[:10]
    assert last > 150, returns[-20:]
