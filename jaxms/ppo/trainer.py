"""PPO with the whole update inside jit: rollout scan -> GAE -> epochs x minibatches (PureJaxRL's pattern).

    trainer = make_train(PPOConfig(...), env, env_params, network)
    runner = trainer.init(jax.random.key(0))
    runner, metrics = trainer.train_chunk(runner)     # `updates_per_chunk` updates; metrics [K, ...]

Generic over environments with gymnax's API, gymnax's own environments unchanged (`gymnax.make(...)`, with
or without its wrappers):
- `reset(key, params) -> (obs, state)` and a discrete action (int32), the observation any pytree (with an
  "action_mask" or not: the network masks its logits itself);
- `step(key, state, action, params)` returning six values, `(obs, state, reward, terminated, truncated,
  info)` (gymnax >= 1.0), or five, `(obs, state, reward, done, info)` (gymnax < 1.0, PureJaxRL's wrappers,
  gymnax's LegacyStepAPIWrapper, jaxms's env), with `info` a dict; the step auto-resets, as gymnax's do.
  Which form is found once, by tracing the step (`jax.eval_shape`, no compilation), when the trainer is
  built;
- truncated episodes bootstrap from the value of their final observation when `info` has
  "final_observation" (gymnax >= 1.0 and jaxms's env do) and the truncation is known (the six-value form,
  or a five-value `info` with "terminated" and "truncated"); otherwise every `done` counts as a
  termination, as in PureJaxRL;
- episode returns and lengths are reported from `info` when the env records them (PureJaxRL's and gymnax's
  LogWrapper keys "returned_episode_returns", "returned_episode_lengths", "returned_episode"; jaxms's env),
  and otherwise recorded by the trainer itself (`runner.env_state` is then an `EpisodeRecord` around the
  env's state; jaxms's env records its own, so its runner state and checkpoints are unchanged).
Networks: `init(key, obs) -> params` and `apply(params, obs)` returning `(logits, value)` or
`(logits, value, aux)` (logits already masked; `aux` a dict or None), a flax linen module included (e.g.
`jaxms.ppo.ActorCritic`, PureJaxRL's classic-control network).

Memory: the rollout buffer holds each transition's observation once (no copy of the whole buffer per epoch:
minibatches gather their own rows by a random permutation of the flattened [T * N] index).

Several devices: `jaxms.ppo.parallel.make_parallel_train` runs the same functions on each shard of the env
axis (`make_train(..., shard=Shard("data", n))` gives them unjitted, for `jax.shard_map`): each shard steps
its N / n envs with the keys those envs have in the whole batch, sums and averages (gradients, metrics) go
over the mesh axis, and each minibatch takes n_steps / minibatches steps of every env (chosen per env, so
no shard needs another's rollout), which makes the result the same for any device count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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
class EpisodeRecord:
    """`RunnerState.env_state` where the trainer records episode statistics itself (the env's `info` has no
    "returned_episode_returns"): the env's batched state and the running episodes' return and length."""

    env_state: Any
    episode_return: jax.Array  # float32[N]: reward so far in each env's running episode
    episode_length: jax.Array  # int32[N]: steps so far in each env's running episode


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


@dataclasses.dataclass(frozen=True)
class Shard:
    """The program runs on one of `count` shards of the env axis, the mesh axis `axis` (inside
    `jax.shard_map`): it holds N / count envs, and sums and means over envs span the axis."""

    axis: str
    count: int


def _learning_rate(config: PPOConfig, update: jax.Array) -> jax.Array:
    if config.lr_schedule == "linear":
        return config.learning_rate * (1.0 - update.astype(jnp.float32) / config.num_updates)
    return jnp.asarray(config.learning_rate, jnp.float32)


def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Global-norm clipping then Adam (eps 1e-5), its step size following `lr_schedule` per update."""
    steps_per_update = config.update_epochs * config.minibatches

    def schedule(count):
        return _learning_rate(config, count // steps_per_update)

    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                       optax.adam(learning_rate=schedule, eps=config.adam_eps))


def _forward(network, params, obs) -> tuple[jax.Array, jax.Array, Any]:
    """(logits, value, aux) of a network returning (logits, value) or (logits, value, aux)."""
    out = network.apply(params, obs)
    if isinstance(out, tuple | list) and len(out) in (2, 3):
        return (*out, None) if len(out) == 2 else tuple(out)
    raise TypeError("the network's apply(params, obs) must return (logits, value) or (logits, value, aux), "
                    f"got {type(out).__name__}")


def _probe_step(batched_reset, batched_step, num_envs: int, env_params) -> tuple[int, Mapping]:
    """(number of values `step` returns, the abstract `info`) of a batched env, by tracing only. The jitted
    reset and step are traced here once and the trace is cached: the rollout's tracing reuses it."""
    keys = jax.eval_shape(lambda: jax.random.split(jax.random.key(0), num_envs))
    _, state = jax.eval_shape(batched_reset, keys, env_params)
    out = jax.eval_shape(batched_step, keys, state, jax.ShapeDtypeStruct((num_envs,), jnp.int32), env_params)
    if not isinstance(out, tuple) or len(out) not in (5, 6) or not isinstance(out[-1], Mapping):
        found = f"{len(out)} values" if isinstance(out, tuple) else type(out).__name__
        raise TypeError("the env's step(key, state, action, params) must return (obs, state, reward, "
                        "terminated, truncated, info) (gymnax >= 1.0) or (obs, state, reward, done, info), "
                        f"with info a dict; got {found}"
                        + (f" with info a {type(out[-1]).__name__}" if isinstance(out, tuple) else ""))
    return len(out), out[-1]


def make_train(config: PPOConfig, env, env_params, network, shard: Shard | None = None) -> Trainer:
    """Build the jitted `init` and `train_chunk` of a PPO run on `env` with `network` (see the module doc
    for the environments and networks accepted).

    With `shard` (see `jaxms.ppo.parallel`, which is how to use it), `init(key)` and `train_chunk(runner)`
    are the unjitted functions of one shard, to run inside `jax.shard_map` over `shard.axis`; the runner
    state then holds this shard's envs only, everything else is the same on every shard."""
    optimizer = make_optimizer(config)
    num_envs, num_steps = config.num_envs, config.n_steps
    local_envs = num_envs // (shard.count if shard else 1)  # the envs this program steps
    local_rollout = num_steps * local_envs
    batched_reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    batched_step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    step_values, probe_info = _probe_step(batched_reset, batched_step, local_envs, env_params)
    record_episodes = "returned_episode_returns" not in probe_info

    # Over the mesh axis when sharded: sums and means over all envs, each env's own key of the whole batch.
    total = (lambda x: jax.lax.psum(x, shard.axis)) if shard else (lambda x: x)
    average = (lambda x: jax.lax.pmean(x, shard.axis)) if shard else (lambda x: x)

    def env_keys(key: jax.Array) -> jax.Array:
        """[local_envs] keys: env i gets key i of split(key, N), whatever the device count."""
        keys = jax.random.split(key, num_envs)
        if shard is None:
            return keys
        return jax.lax.dynamic_slice_in_dim(keys, jax.lax.axis_index(shard.axis) * local_envs, local_envs)

    def sample_actions(key: jax.Array, logits: jax.Array) -> jax.Array:
        if shard is None:
            return jax.random.categorical(key, logits)
        return jax.vmap(jax.random.categorical)(env_keys(key), logits)  # one key per env: shard-invariant

    def fresh_runner(key: jax.Array, reset) -> RunnerState:
        key, net_key, reset_key = jax.random.split(key, 3)
        obs, env_state = reset(env_keys(reset_key))
        params = network.init(net_key, obs)
        if record_episodes:
            env_state = EpisodeRecord(env_state=env_state, episode_return=jnp.zeros(local_envs, jnp.float32),
                                      episode_length=jnp.zeros(local_envs, jnp.int32))
        init_opt = optimizer.init if shard else jax.jit(optimizer.init)
        return RunnerState(params=params, opt_state=init_opt(params), env_state=env_state,
                           obs=obs, key=key, update=jnp.int32(0), env_steps=jnp.int32(0))

    reset_envs = jax.jit(lambda keys: batched_reset(keys, env_params))

    def init(key: jax.Array) -> RunnerState:
        """A fresh run: envs reset and network initialised from `key` (host code calling jitted parts,
        so the network's own `init` may be jitted however it likes)."""
        return fresh_runner(key, reset_envs)

    def init_shard(key: jax.Array) -> RunnerState:
        """`init` traced on one shard (inside shard_map): the same parameters on every shard."""
        return fresh_runner(key, lambda keys: batched_reset(keys, env_params))

    def env_step(runner: RunnerState, _):
        key, action_key, step_key = jax.random.split(runner.key, 3)
        logits, value, aux = _forward(network, runner.params, runner.obs)
        action = sample_actions(action_key, logits).astype(jnp.int32)
        record = runner.env_state if record_episodes else None
        out = batched_step(env_keys(step_key), record.env_state if record_episodes
                           else runner.env_state, action, env_params)
        if step_values == 6:
            obs, env_state, reward, terminated, truncated, info = out
            terminated, truncated = terminated.astype(bool), truncated.astype(bool)
            done = terminated | truncated
        else:
            obs, env_state, reward, done, info = out
            done = done.astype(bool)
            terminated = info.get("terminated", done)
            truncated = info.get("truncated", jnp.zeros_like(done))
        if "final_observation" in info and (step_values == 6 or "truncated" in info):
            # Only evaluate the network on final observations when some env was truncated this step.
            final_value = jax.lax.cond(
                truncated.any(), lambda: _forward(network, runner.params, info["final_observation"])[1],
                lambda: jnp.zeros_like(value))
        else:
            final_value, truncated, terminated = jnp.zeros_like(value), jnp.zeros_like(done), done
        if record_episodes:  # PureJaxRL's LogWrapper's bookkeeping
            episode_return = record.episode_return + reward.astype(jnp.float32)
            episode_length = record.episode_length + 1
            info = {**info, "returned_episode": done, "returned_episode_returns": episode_return,
                    "returned_episode_lengths": episode_length}
            env_state = EpisodeRecord(env_state=env_state,
                                      episode_return=jnp.where(done, 0.0, episode_return),
                                      episode_length=jnp.where(done, 0, episode_length))
        transition = Transition(obs=runner.obs, action=action, log_prob=log_prob(logits, action),
                                value=value, reward=reward.astype(jnp.float32), terminated=terminated,
                                truncated=truncated, final_value=jnp.where(truncated, final_value, 0.0))
        step_metrics = _step_metrics(done, info, aux)
        runner = runner.replace(obs=obs, env_state=env_state, key=key, env_steps=runner.env_steps + num_envs)
        return runner, (transition, step_metrics)

    def update_minibatch(carry, indices, batch):
        params, opt_state = carry
        minibatch = jax.tree.map(lambda x: x[indices], batch)

        def loss_fn(p):
            logits, values, _ = _forward(network, p, minibatch["obs"])
            return ppo_loss(logits, values, minibatch["action"], minibatch["log_prob"], minibatch["value"],
                            minibatch["advantage"], minibatch["return"], clip_eps=config.clip_eps,
                            vf_coef=config.vf_coef, ent_coef=config.ent_coef, clip_value=config.clip_value,
                            normalize_advantages=config.normalize_advantages, value_loss=config.value_loss,
                            mean=average if shard else None)

        grads, metrics = jax.grad(loss_fn, has_aux=True)(params)
        # Each shard's loss is the mean over its equal share of the minibatch: their mean is the whole's.
        grads, metrics = average(grads), average(metrics)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics["grad_norm"] = optax.tree.norm(grads)
        return (params, opt_state), metrics

    def minibatch_order(epoch_key: jax.Array) -> jax.Array:
        """int32[minibatches, local batch]: rows of the flat [T * local_envs] batch, one minibatch a row."""
        if shard is None:  # a permutation of the whole rollout
            order = jax.random.permutation(epoch_key, config.rollout_size)
            return order.reshape(config.minibatches, config.batch_size)
        # Each env's T steps in its own random order (its key of the whole batch); minibatch m takes the
        # m-th T / minibatches of them from every env, so the minibatches are the same for any device count.
        steps = jax.vmap(lambda k: jax.random.permutation(k, num_steps))(env_keys(epoch_key))  # [n, T]
        rows = steps * local_envs + jnp.arange(local_envs)[:, None]  # row of (step t, env j) in [T * n]
        rows = rows.reshape(local_envs, config.minibatches, num_steps // config.minibatches)
        return rows.transpose(1, 0, 2).reshape(config.minibatches, -1)

    def learn(params, opt_state, batch, key):
        # The batch is closed over, not carried, so the loops never copy it.
        def update_epoch(carry, epoch_key):
            return jax.lax.scan(partial(update_minibatch, batch=batch), carry, minibatch_order(epoch_key))

        (params, opt_state), losses = jax.lax.scan(update_epoch, (params, opt_state),
                                                   jax.random.split(key, config.update_epochs))
        return params, opt_state, losses

    def one_update(runner: RunnerState, _):
        runner, (rollout, step_metrics) = jax.lax.scan(env_step, runner, None, length=num_steps)
        _, last_value, _ = _forward(network, runner.params, runner.obs)
        advantages, returns = compute_gae(rollout.reward, rollout.value, rollout.terminated,
                                          rollout.truncated, rollout.final_value, last_value,
                                          config.gamma, config.gae_lambda)
        flat = lambda x: x.reshape((local_rollout, *x.shape[2:]))  # noqa: E731 ([T, N] -> [T * N])
        batch = {"obs": jax.tree.map(flat, rollout.obs), "action": flat(rollout.action),
                 "log_prob": flat(rollout.log_prob), "value": flat(rollout.value),
                 "advantage": flat(advantages), "return": flat(returns)}
        key, epoch_key = jax.random.split(runner.key)
        params, opt_state, losses = learn(runner.params, runner.opt_state, batch, epoch_key)
        metrics = {name: value.mean() for name, value in losses.items()}
        metrics["explained_variance"] = explained_variance(rollout.value.ravel(), returns.ravel(),
                                                           mean=average if shard else None)
        metrics["learning_rate"] = _learning_rate(config, runner.update)
        metrics["reward_mean"] = average(rollout.reward.mean())
        if shard:  # per-step sums over this shard's envs -> over all envs
            step_metrics = {name: average(value) if name == "scale_attention" else total(value)
                            for name, value in step_metrics.items()}
        metrics.update(_reduce_step_metrics(step_metrics))
        runner = runner.replace(params=params, opt_state=opt_state, key=key, update=runner.update + 1)
        metrics["env_steps"] = runner.env_steps
        return runner, metrics

    def train_chunk(runner: RunnerState):
        return jax.lax.scan(one_update, runner, None, length=config.updates_per_chunk)

    if shard is not None:
        return Trainer(config=config, init=init_shard, train_chunk=train_chunk, optimizer=optimizer,
                       learn=learn)
    return Trainer(config=config, init=init, train_chunk=jax.jit(train_chunk, donate_argnums=0),
                   optimizer=optimizer, learn=learn)


def _step_metrics(done: jax.Array, info: Mapping, aux: Any) -> dict[str, jax.Array]:
    """Per-step sums over envs: finished episodes and their statistics (where the env reports them)."""
    ended = info.get("returned_episode", done)
    metrics = {"episodes": ended.sum().astype(jnp.float32)}
    for name, key in EPISODE_KEYS.items():
        if key in info:
            metrics[name + "_sum"] = jnp.where(ended, info[key].astype(jnp.float32), 0.0).sum()
    if "rank" in info:
        metrics["episode_rank_sum"] = jnp.where(ended, info["rank"], 0.0).sum()
    if isinstance(aux, Mapping) and "scale_attention" in aux:
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
