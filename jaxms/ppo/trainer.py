"""PPO with the whole update inside jit: rollout scan -> GAE -> epochs x minibatches (PureJaxRL's pattern).

    trainer = make_train(PPOConfig(...), env, env_params, network)
    runner = trainer.init(jax.random.key(0))
    runner, metrics = trainer.train_chunk(runner)     # `updates_per_chunk` updates; metrics [K, ...]

Generic over environments with gymnax's API (`reset(key, params)`, `step(key, state, action, params)`,
`action_space(params).n`) whose observations are pytrees carrying an "action_mask" or not, and networks with
`init(key, obs) -> params` and `apply(params, obs) -> (logits, value, aux)` (logits already masked).
If the env's `info` has "terminated", "truncated" and "final_observation" (ours does), truncated episodes
bootstrap from the value of their final observation; otherwise every `done` counts as a termination.

Memory: the rollout buffer holds each transition's observation once (no copy of the whole buffer per epoch:
minibatches gather their own rows by a random permutation of the flattened [T * N] index).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxms.ppo.config import PPOConfig
from jaxms.ppo.gae import compute_gae
from jaxms.ppo.loss import explained_variance, log_prob, ppo_loss

EPISODE_KEYS = {  # our metric name -> the env info key with the last finished episode's statistic
    "episode_return": "returned_episode_returns",
    "episode_length": "returned_episode_lengths",
    "episode_won": "returned_episode_won",
    "episode_land_share": "returned_episode_share",
}


@struct.dataclass
class RunnerState:
    """Everything a training run carries from one update to the next (and what a checkpoint saves)."""

    params: Any  # network parameters
    opt_state: Any  # optax state
    env_state: Any  # batched env state, leading axis [N]
    obs: Any  # the observation each env will act on next, leading axis [N]
    key: jax.Array  # PRNG key
    update: jax.Array  # int32[]: updates done
    env_steps: jax.Array  # int32[]: env steps done (all envs)


@struct.dataclass
class Transition:
    """One rollout step of N envs (the buffer stacks T of them)."""

    obs: Any
    action: jax.Array  # int32[N]
    log_prob: jax.Array  # float32[N]
    value: jax.Array  # float32[N]
    reward: jax.Array  # float32[N]
    terminated: jax.Array  # bool[N]
    truncated: jax.Array  # bool[N]
    final_value: jax.Array  # float32[N]: value of the final observation where truncated, else 0


@dataclasses.dataclass(frozen=True)
class Trainer:
    """The jitted pieces of a run. `train_chunk` donates the runner state (do not reuse the argument)."""

    config: PPOConfig
    init: Any  # (key) -> RunnerState
    train_chunk: Any  # (RunnerState) -> (RunnerState, metrics with a leading [updates_per_chunk] axis)
    optimizer: optax.GradientTransformation
    # (params, opt_state, batch, key) -> (params, opt_state, losses [epochs, minibatches]): the epochs x
    # minibatches of one update on a flat rollout batch (keys obs, action, log_prob, value, advantage,
    # return; leading axis [rollout_size]). Not jitted: part of `train_chunk`, exposed for benchmarks.
    learn: Any


def _learning_rate(config: PPOConfig, update: jax.Array) -> jax.Array:
    if config.lr_schedule == "linear":
        return config.learning_rate * (1.0 - update.astype(jnp.float32) / config.num_updates)
    return jnp.asarray(config.learning_rate, jnp.float32)


def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Global-norm clipping then Adam (eps 1e-5), its step size following `lr_schedule` per update."""
    steps_per_update = config.update_epochs * config.num_minibatches

    def schedule(count):
        return _learning_rate(config, count // steps_per_update)

    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                       optax.adam(learning_rate=schedule, eps=config.adam_eps))


def make_train(config: PPOConfig, env, env_params, network) -> Trainer:
    """Build the jitted `init` and `train_chunk` of a PPO run on `env` with `network`."""
    optimizer = make_optimizer(config)
    num_envs, num_steps = config.num_envs, config.n_steps
    batched_reset = jax.vmap(env.reset, in_axes=(0, None))
    batched_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    reset_envs = jax.jit(lambda key: batched_reset(jax.random.split(key, num_envs), env_params))

    def init(key: jax.Array) -> RunnerState:
        """A fresh run: envs reset and network initialised from `key` (host code calling jitted parts,
        so the network's own `init` may be jitted however it likes)."""
        key, net_key, reset_key = jax.random.split(key, 3)
        obs, env_state = reset_envs(reset_key)
        params = network.init(net_key, obs)
        return RunnerState(params=params, opt_state=jax.jit(optimizer.init)(params), env_state=env_state,
                           obs=obs, key=key, update=jnp.int32(0), env_steps=jnp.int32(0))

    def env_step(runner: RunnerState, _):
        key, action_key, step_key = jax.random.split(runner.key, 3)
        logits, value, aux = network.apply(runner.params, runner.obs)
        action = jax.random.categorical(action_key, logits).astype(jnp.int32)
        obs, env_state, reward, done, info = batched_step(jax.random.split(step_key, num_envs),
                                                          runner.env_state, action, env_params)
        terminated = info.get("terminated", done)
        truncated = info.get("truncated", jnp.zeros_like(done))
        if "final_observation" in info:
            # Only evaluate the network on final observations when some env was truncated this step.
            final_value = jax.lax.cond(
                truncated.any(), lambda: network.apply(runner.params, info["final_observation"])[1],
                lambda: jnp.zeros_like(value))
        else:
            final_value, truncated, terminated = jnp.zeros_like(value), jnp.zeros_like(done), done
        transition = Transition(obs=runner.obs, action=action, log_prob=log_prob(logits, action),
                                value=value, reward=reward.astype(jnp.float32), terminated=terminated,
                                truncated=truncated, final_value=jnp.where(truncated, final_value, 0.0))
        step_metrics = _step_metrics(done, info, aux)
        runner = runner.replace(obs=obs, env_state=env_state, key=key,
                                env_steps=runner.env_steps + num_envs)
        return runner, (transition, step_metrics)

    def update_minibatch(carry, indices, batch):
        params, opt_state = carry
        minibatch = jax.tree.map(lambda x: x[indices], batch)

        def loss_fn(p):
            logits, values, _ = network.apply(p, minibatch["obs"])
            return ppo_loss(logits, values, minibatch["action"], minibatch["log_prob"], minibatch["value"],
                            minibatch["advantage"], minibatch["return"], clip_eps=config.clip_eps,
                            vf_coef=config.vf_coef, ent_coef=config.ent_coef, clip_value=config.clip_value,
                            normalize_advantages=config.normalize_advantages)

        grads, metrics = jax.grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics["grad_norm"] = optax.tree.norm(grads)
        return (params, opt_state), metrics

    def learn(params, opt_state, batch, key):
        # The batch is closed over, not carried, so the loops never copy it.
        def update_epoch(carry, epoch_key):
            order = jax.random.permutation(epoch_key, config.rollout_size)
            minibatches = order.reshape(config.num_minibatches, config.batch_size)
            return jax.lax.scan(partial(update_minibatch, batch=batch), carry, minibatches)

        (params, opt_state), losses = jax.lax.scan(update_epoch, (params, opt_state),
                                                   jax.random.split(key, config.update_epochs))
        return params, opt_state, losses

    def one_update(runner: RunnerState, _):
        runner, (rollout, step_metrics) = jax.lax.scan(env_step, runner, None, length=num_steps)
        _, last_value, _ = network.apply(runner.params, runner.obs)
        advantages, returns = compute_gae(rollout.reward, rollout.value, rollout.terminated,
                                          rollout.truncated, rollout.final_value, last_value,
                                          config.gamma, config.gae_lambda)
        flat = lambda x: x.reshape((config.rollout_size, *x.shape[2:]))  # noqa: E731 ([T, N] -> [T * N])
        batch = {"obs": jax.tree.map(flat, rollout.obs), "action": flat(rollout.action),
                 "log_prob": flat(rollout.log_prob), "value": flat(rollout.value),
                 "advantage": flat(advantages), "return": flat(returns)}
        key, epoch_key = jax.random.split(runner.key)
        params, opt_state, losses = learn(runner.params, runner.opt_state, batch, epoch_key)
        metrics = {name: value.mean() for name, value in losses.items()}
        metrics["explained_variance"] = explained_variance(rollout.value.ravel(), returns.ravel())
        metrics["learning_rate"] = _learning_rate(config, runner.update)
        metrics["reward_mean"] = rollout.reward.mean()
        metrics.update(_reduce_step_metrics(step_metrics))
        runner = runner.replace(params=params, opt_state=opt_state, key=key, update=runner.update + 1)
        metrics["env_steps"] = runner.env_steps
        return runner, metrics

    def train_chunk(runner: RunnerState):
        return jax.lax.scan(one_update, runner, None, length=config.updates_per_chunk)

    return Trainer(config=config, init=init, train_chunk=jax.jit(train_chunk, donate_argnums=0),
                   optimizer=optimizer, learn=learn)


def _step_metrics(done: jax.Array, info: dict, aux: dict) -> dict[str, jax.Array]:
    """Per-step sums over envs: finished episodes and their statistics (where the env reports them)."""
    ended = info.get("returned_episode", done)
    metrics = {"episodes": ended.sum().astype(jnp.float32)}
    for name, key in EPISODE_KEYS.items():
        if key in info:
            metrics[name + "_sum"] = jnp.where(ended, info[key].astype(jnp.float32), 0.0).sum()
    if "rank" in info:
        metrics["episode_rank_sum"] = jnp.where(ended, info["rank"], 0.0).sum()
    if "scale_attention" in aux:
        weights = aux["scale_attention"].astype(jnp.float32)
        metrics["scale_attention"] = weights.reshape(-1, weights.shape[-1]).mean(axis=0)
    for key in ("invalid_action", "illegal_direction"):
        if key in info:
            metrics[key + "_sum"] = info[key].sum().astype(jnp.float32)
    return metrics


def _reduce_step_metrics(step_metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Rollout totals: episode means are sums over the rollout / episodes (NaN when none ended)."""
    out = {"episodes": step_metrics["episodes"].sum()}
    count = out["episodes"]
    for name, values in step_metrics.items():
        if name.startswith("episode_") and name.endswith("_sum"):
            out[name[:-4]] = jnp.where(count > 0, values.sum() / jnp.maximum(count, 1.0), jnp.nan)
        elif name.endswith("_sum"):
            out[name[:-4]] = values.sum()
    if "scale_attention" in step_metrics:
        out["scale_attention"] = step_metrics["scale_attention"].mean(axis=0)
    return out
