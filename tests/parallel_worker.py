"""The programs of test_parallel.py, run as subprocesses: JAX's device count (XLA_FLAGS) and its distributed
runtime are fixed when JAX starts, so each setting needs its own process.

    python tests/parallel_worker.py devices OUT            # 4 forced CPU devices, one process
    python tests/parallel_worker.py process I PORT OUT     # process I of 2 (2 forced devices each)

The trainer is jaxms's data-parallel PPO on gymnax's CartPole-v1 (the same sharded code as on the territory
env, at a compile cost tests can afford). Each writes what it measured to OUT/<name>.json, and the npz of
the parameters it ended with; the test compares them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

CONFIG = dict(num_envs=4, n_steps=16, batch_size=16, update_epochs=2, updates_per_chunk=2,
              total_timesteps=4 * 16 * 100, learning_rate=3e-3)
SEED = 7


def build(devices: int):
    import gymnax
    import jax

    from jaxms.ppo import ActorCritic, PPOConfig
    from jaxms.ppo.parallel import device_mesh, make_parallel_train

    env, env_params = gymnax.make("CartPole-v1")
    network = ActorCritic(num_actions=env.action_space(env_params).n)
    trainer = make_parallel_train(PPOConfig(**CONFIG), env, env_params, network, device_mesh(devices))
    return trainer, jax.random.key(SEED)


def host(tree) -> list[np.ndarray]:
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


def max_difference(a, b) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(host(a), host(b), strict=True))


def devices_mode(out: Path) -> None:
    """1, 2 and 4 devices on one global batch; checkpoints written on 4 devices resumed on 1 and back."""
    import jax

    from jaxms.checkpoint import Checkpointer

    assert jax.device_count() == 4, jax.devices()
    result: dict = {"device_count": jax.device_count()}
    runs = {}
    for devices in (1, 2, 4):
        trainer, key = build(devices)
        runner = trainer.init(key)
        result[f"obs_shards_{devices}"] = len(runner.obs.sharding.device_set)
        runner, _ = trainer.train_chunk(runner)
        if devices in (1, 4):  # written halfway (2 updates), on this device count's layout
            saver = Checkpointer(out / f"written_on_{devices}", asynchronous=False)
            saver.save(int(runner.update), runner, {"devices": devices})
            saver.close()
        runner, second = trainer.train_chunk(runner)
        runs[devices] = (trainer, runner, jax.device_get(second))
        result[f"params_sharding_{devices}"] = str(jax.tree.leaves(runner.params)[0].sharding.spec)
    for devices in (2, 4):
        one, many = runs[1], runs[devices]
        result[f"params_difference_1_vs_{devices}"] = max_difference(one[1].params, many[1].params)
        result[f"loss_difference_1_vs_{devices}"] = float(np.abs(one[2]["loss"] - many[2]["loss"]).max())
    result["episodes"] = runs[1][2]["episodes"].tolist()
    result["env_steps"] = int(runs[1][1].env_steps)
    # A checkpoint written on `write` devices, resumed on `read`: the resumed run's next chunk ends where the
    # uninterrupted run on `write` devices did.
    for write, read in ((4, 1), (1, 4)):
        trainer = runs[read][0]
        template = trainer.init(jax.random.key(0))  # the layout to restore into (the target shardings)
        result[f"params_change_{write}_to_{read}"] = max_difference(template.params, runs[write][1].params)
        restored, meta = Checkpointer(out / f"written_on_{write}", read_only=True).restore(template)
        result[f"restored_update_{write}_to_{read}"] = int(restored.update)
        result[f"restored_meta_devices_{write}_to_{read}"] = meta["devices"]
        result[f"restored_obs_shards_{write}_to_{read}"] = len(restored.obs.sharding.device_set)
        resumed, _ = trainer.train_chunk(restored)
        result[f"resume_difference_{write}_to_{read}"] = max_difference(resumed.params, runs[write][1].params)
    np.savez(out / "devices_params.npz", *host(runs[4][1].params))
    (out / "devices.json").write_text(json.dumps(result, indent=1))


def process_mode(index: int, port: int, out: Path) -> None:
    """Process `index` of two (2 CPU devices each, 4 in all): train over all four, checkpoint together."""
    import jax

    from jaxms.checkpoint import Checkpointer
    from jaxms.distributed import initialize

    initialize(f"127.0.0.1:{port}", 2, index)
    assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 4, 2)
    trainer, key = build(4)
    runner = trainer.init(key)
    runner, _ = trainer.train_chunk(runner)
    runner, metrics = trainer.train_chunk(runner)
    metrics = jax.device_get(metrics)
    folder = out / "two_process_checkpoint"
    saver = Checkpointer(folder, asynchronous=False)
    saver.save(int(runner.update), runner, {"processes": 2})
    saver.close()
    template = trainer.init(jax.random.key(0))
    restored, _ = Checkpointer(folder, read_only=True).restore(template)
    result = {"process": jax.process_index(), "update": int(runner.update),
              "restored_update": int(restored.update),
              "restored_difference": max_difference(restored.params, runner.params),
              "loss": metrics["loss"].tolist(),
              "local_obs_rows": int(runner.obs.addressable_shards[0].data.shape[0])}
    np.savez(out / f"process_{index}_params.npz", *host(runner.params))
    (out / f"process_{index}.json").write_text(json.dumps(result, indent=1))
    jax.distributed.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "devices":
        devices_mode(Path(sys.argv[2]))
    else:
        process_mode(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
