"""Data-parallel PPO: `make_train`'s update on every device of a mesh (one process or several).

    mesh = device_mesh(4)                                  # jax.make_mesh((4,), ("data",))
    trainer = make_parallel_train(PPOConfig(...), env, env_params, network, mesh)
    runner = trainer.init(jax.random.key(0))                # env axis sharded, the rest replicated
    runner, metrics = trainer.train_chunk(runner)           # metrics replicated, as make_train's

What is sharded: the env axis of the runner state (`env_state`, `obs`: N envs, N / n per device) and so the
rollout; each device steps its envs, computes GAE and its share of every minibatch from its own rollout
(no rollout moves between devices). Replicated: parameters, optimizer state, the PRNG key and the counters.
Each minibatch's gradients and every metric are averaged over the "data" axis (`lax.pmean`), so the
parameters stay equal on every device. The global batch is the config's: N envs, minibatches of
`batch_size` transitions (batch_size / n per device), so a run gives the same parameters (to float32
rounding) on 1, 2 or 8 devices; learning rates need no scaling with the device count.

The per-shard code is `make_train(..., shard=Shard("data", n))` run under `jax.shard_map`; the rest of
jaxms (env/, game/, nn/) knows nothing of devices.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxms.ppo.config import PPOConfig
from jaxms.ppo.trainer import RunnerState, Shard, Trainer, make_train

DATA_AXIS = "data"


def device_count(devices: str, platform: str | None = None) -> int:
    """The number of devices `--devices` asks for: "all" (every device JAX sees on `platform`, default its
    default one, all processes together) or a count; ValueError saying what is accepted when there are not
    that many."""
    available = len(jax.devices(platform))
    if devices == "all":
        return available
    count = int(devices) if devices.isdigit() else 0
    if count < 1:
        raise ValueError(f"--devices {devices!r} is not accepted: give a count (1, 2, ...) or all")
    if count > available:
        kinds = ", ".join(sorted({d.platform for d in jax.devices(platform)}))
        raise ValueError(f"--devices {count}: JAX sees {available} device(s) ({kinds}); give at most "
                         f"{available} or all")
    return count


def device_mesh(count: int, platform: str | None = None) -> jax.sharding.Mesh:
    """A one-axis mesh ("data") over the first `count` devices of `platform` (default: JAX's default one)
    of all processes, process by process."""
    devices = jax.devices(platform)[:count]
    return jax.make_mesh((count,), (DATA_AXIS,), (jax.sharding.AxisType.Auto,), devices=devices)


def check_divisible(config: PPOConfig, count: int) -> None:
    """Refuse rollout sizes that do not split over `count` devices (ValueError naming the flag)."""
    if count == 1:
        return
    if config.num_envs % count:
        raise ValueError(f"--n-envs {config.num_envs} must be divisible by the {count} devices (each steps "
                         f"n_envs / devices envs); give a multiple of {count}")
    if config.batch_size % count:
        raise ValueError(f"--batch-size {config.batch_size} must be divisible by the {count} devices (each "
                         f"takes batch_size / devices rows of a minibatch); give a multiple of {count}")
    if config.n_steps % config.minibatches:
        raise ValueError(f"--batch-size {config.batch_size}: on several devices each minibatch takes n_steps "
                         f"/ minibatches steps of every env, so the {config.minibatches} minibatches "
                         f"(n_envs x n_steps / batch_size) must divide --n-steps {config.n_steps}")


@dataclasses.dataclass(frozen=True)
class ParallelTrainer(Trainer):
    """A `Trainer` over a device mesh: `init` and `train_chunk` take and give runner states whose env axis
    is sharded over the mesh. `place(runner)` puts a runner state read on the host (a checkpoint written
    on any device count) onto this mesh."""

    mesh: Any = None
    shardings: Any = None  # (abstract runner state) -> the NamedSharding of each leaf

    def place(self, runner: RunnerState) -> RunnerState:
        """`runner` (host or device arrays, the global batch) laid out over the mesh: the env axis sharded,
        the rest replicated. Works with several processes (each puts its own devices' parts)."""
        shardings = self.shardings(runner)

        def put(x, sharding):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                return jax.random.wrap_key_data(put(jax.random.key_data(x), sharding),
                                                impl=jax.random.key_impl(x))
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree.map(put, runner, shardings)


def runner_specs(runner: RunnerState) -> RunnerState:
    """The PartitionSpec of each part of a runner state: env axis over "data", the rest replicated."""
    return RunnerState(params=P(), opt_state=P(), env_state=P(DATA_AXIS), obs=P(DATA_AXIS), key=P(),
                       update=P(), env_steps=P())


def _spec_tree(runner: RunnerState) -> Any:
    """A PartitionSpec per leaf of `runner` (the specs of `runner_specs` broadcast over each part)."""
    specs = runner_specs(runner)
    return jax.tree.map(lambda spec, part: jax.tree.map(lambda _: spec, part),
                        specs, runner, is_leaf=lambda x: isinstance(x, P))


def make_parallel_train(config: PPOConfig, env, env_params, network, mesh: jax.sharding.Mesh
                        ) -> ParallelTrainer:
    """`make_train` over the devices of `mesh` (a one-axis "data" mesh, `device_mesh`): see the module
    doc. Raises ValueError when the rollout sizes do not divide over the devices."""
    count = mesh.shape[DATA_AXIS]
    check_divisible(config, count)
    local = make_train(config, env, env_params, network, shard=Shard(DATA_AXIS, count))
    # A fresh run is the single-device trainer's (the same envs, keys and parameters), laid out on the mesh:
    # its jitted reset serves every device count (and is compiled once, cached).
    whole = make_train(config, env, env_params, network)
    shapes = jax.eval_shape(whole.init, jax.random.key(0))
    specs = _spec_tree(shapes)
    # check_vma=False: each shard's gradients are its own until averaged explicitly (lax.pmean).
    chunk_fn = jax.shard_map(local.train_chunk, mesh=mesh, in_specs=(specs,), out_specs=(specs, P()),
                             check_vma=False)
    shardings = _shardings_like(mesh, shapes)
    replicated = NamedSharding(mesh, P())
    trainer = ParallelTrainer(config=config, init=None, optimizer=local.optimizer, learn=local.learn,
                              train_chunk=jax.jit(chunk_fn, out_shardings=(shardings, replicated),
                                                  donate_argnums=0),
                              mesh=mesh, shardings=lambda runner: _shardings_like(mesh, runner))

    def init(key: jax.Array) -> RunnerState:
        """A fresh run over the mesh (every process passes the same key and builds the same state)."""
        return trainer.place(whole.init(key))

    return dataclasses.replace(trainer, init=init)


def _shardings_like(mesh, runner: RunnerState) -> Any:
    return jax.tree.map(lambda spec: NamedSharding(mesh, spec), _spec_tree(runner),
                        is_leaf=lambda x: isinstance(x, P))
