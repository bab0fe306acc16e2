"""jaxms's JAX trainer, the PyTorch path and Stable-Baselines3 side by side: env steps/s of whole PPO training
on the same map, env, network and PPO settings, back to back in one process.

- jax: `jaxms.ppo.make_train` (rollout, GAE and update in one jitted chunk). Split: the update
  (`trainer.learn` jitted on its own on a rollout's worth of transitions, timed) against the rest
  (simulation + observation + policy forward, all inside the scan);
- torch: `jaxms.torch.trainer` (the JAX env through `JaxVectorEnv`, the torch mirror of the network and
  PPO). Split from its timers: simulation (env steps and host copies), policy (rollout forwards and
  sampling), update (GAE and the epochs);
- sb3 / sb3-maskable: Stable-Baselines3's PPO / sb3-contrib's MaskablePPO through `jaxms.torch.sb3`
  (our env as a VecEnv, our network's trunk as the features extractor, SB3's heads). Split: SB3's
  `train()` (the update) against its rollout collection (simulation + policy).

On CPU both torch-based trainers use one torch thread (the JAX env shares the cores; torch's spinning
OpenMP threads made a forward pass ~90x slower on a busy 2-core machine). Each trainer does one warm-up
update (compilation, allocation) and then `--updates` timed updates; env steps/s = transitions / wall time
of those. The JAX env is compiled once and served from JAX's persistent cache afterwards. The issue's
targets: jax >= 3x SB3 PPO, torch within 1.5x of jax.

    python -m benchmarks.bench_backends [--map continents_128] [--num-bots 5] [--n-envs 8] [--n-steps 32]
        [--batch-size 64] [--update-epochs 2] [--network-width 0.25] [--updates 3]
        [--backends jax torch sb3 sb3-maskable] [--device cpu] [--out-name bench_backends]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import write_results
from jaxms.config import TrainConfig
from jaxms.run import build_run

BACKENDS = ("jax", "torch", "sb3", "sb3-maskable")


def bench_jax(config: TrainConfig, updates: int) -> dict:
    from jaxms.ppo import make_train

    env, network, ppo, _ = build_run(config)
    trainer = make_train(ppo, env, env.default_params, network)
    runner = trainer.init(jax.random.key(0))
    start = time.perf_counter()
    runner, _ = trainer.train_chunk(runner)
    jax.block_until_ready(runner.params)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(updates):
        runner, _ = trainer.train_chunk(runner)
    jax.block_until_ready(runner.params)
    seconds = time.perf_counter() - start
    # The update alone, on a rollout's worth of the current observations.
    repeats = ppo.rollout_size // ppo.num_envs
    batch = {"obs": jax.tree.map(lambda x: jnp.concatenate([x] * repeats), runner.obs),
             "action": jnp.zeros(ppo.rollout_size, jnp.int32), "log_prob": jnp.full(ppo.rollout_size, -3.0),
             "value": jnp.zeros(ppo.rollout_size), "advantage": jnp.asarray(
                 np.random.default_rng(0).normal(size=ppo.rollout_size), jnp.float32),
             "return": jnp.zeros(ppo.rollout_size)}
    learn = jax.jit(trainer.learn)
    jax.block_until_ready(learn(runner.params, runner.opt_state, batch, jax.random.key(1)))
    start = time.perf_counter()
    for i in range(updates):
        out = learn(runner.params, runner.opt_state, batch, jax.random.key(2 + i))
    jax.block_until_ready(out)
    update = (time.perf_counter() - start) / updates
    per_update = seconds / updates
    return {"steps_per_s": ppo.rollout_size * updates / seconds, "warmup_s": warmup,
            "split": {"rollout (simulation + policy)": max(per_update - update, 0.0), "update": update}}


def bench_torch(config: TrainConfig, updates: int, device: str) -> dict:
    from jaxms.torch.trainer import make_torch_train

    env, _, ppo, _ = build_run(config)
    trainer = make_torch_train(ppo, env, config.network, device, seed=0)
    runner = trainer.init()
    start = time.perf_counter()
    runner, _ = trainer.train_chunk(runner)
    warmup = time.perf_counter() - start
    trainer.timings = dict.fromkeys(trainer.timings, 0.0)
    start = time.perf_counter()
    for _ in range(updates):
        runner, _ = trainer.train_chunk(runner)
    seconds = time.perf_counter() - start
    return {"steps_per_s": ppo.rollout_size * updates / seconds, "warmup_s": warmup,
            "split": {name: value / updates for name, value in trainer.timings.items()}}


def bench_sb3(config: TrainConfig, updates: int, device: str, maskable: bool) -> dict:
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)  # as the torch trainer on CPU (see jaxms/torch/trainer.py): fair to both

    from jaxms.env.vector import JaxVectorEnv
    from jaxms.torch.sb3 import SB3VecEnv, sb3_policy_kwargs

    env, _, ppo, _ = build_run(config)
    venv = SB3VecEnv(JaxVectorEnv(env, ppo.num_envs, seed=0))
    if maskable:
        from sb3_contrib import MaskablePPO as cls
    else:
        cls = PPO
    model = cls("MultiInputPolicy", venv, n_steps=ppo.n_steps, batch_size=ppo.batch_size,
                n_epochs=ppo.update_epochs, learning_rate=ppo.learning_rate, gamma=ppo.gamma,
                gae_lambda=ppo.gae_lambda, clip_range=ppo.clip_eps, ent_coef=ppo.ent_coef,
                vf_coef=ppo.vf_coef, max_grad_norm=ppo.max_grad_norm, device=device, seed=0,
                policy_kwargs=sb3_policy_kwargs(config.network))
    timed = {"update": 0.0}
    train = model.train

    def timed_train():
        start = time.perf_counter()
        train()
        timed["update"] += time.perf_counter() - start

    model.train = timed_train
    start = time.perf_counter()
    model.learn(ppo.rollout_size)
    warmup = time.perf_counter() - start
    timed["update"] = 0.0
    start = time.perf_counter()
    model.learn(ppo.rollout_size * updates, reset_num_timesteps=False)
    seconds = time.perf_counter() - start
    per_update = seconds / updates
    return {"steps_per_s": ppo.rollout_size * updates / seconds, "warmup_s": warmup,
            "split": {"rollout (simulation + policy)": per_update - timed["update"] / updates,
                      "update": timed["update"] / updates}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", default="continents_128")
    parser.add_argument("--num-bots", type=int, default=5)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--update-epochs", type=int, default=2)
    parser.add_argument("--network-width", type=float, default=0.25)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--device", default="cpu", help="torch device for torch and SB3 (cpu, cuda, mps)")
    parser.add_argument("--out-name", default="bench_backends")
    args = parser.parse_args()
    config = TrainConfig().replace(map=args.map, num_bots=args.num_bots, n_envs=args.n_envs,
                                   n_steps=args.n_steps, batch_size=args.batch_size,
                                   update_epochs=args.update_epochs, network_width=args.network_width,
                                   learning_rate=1e-3, max_steps=80, time_limit="lose")
    rows, results = [], {}
    for backend in args.backends:
        print(f"{backend}: warm-up update, then {args.updates} timed updates", flush=True)
        if backend == "jax":
            result = bench_jax(config, args.updates)
        elif backend == "torch":
            result = bench_torch(config, args.updates, args.device)
        else:
            result = bench_sb3(config, args.updates, args.device, maskable=backend == "sb3-maskable")
        results[backend] = result
        total = sum(result["split"].values())
        split = ", ".join(f"{name} {1e3 * value:.0f} ms ({100 * value / total:.0f}%)"
                          for name, value in result["split"].items())
        rows.append({"trainer": backend, "env steps/s": round(result["steps_per_s"], 1),
                     "per update: split": split, "warm-up update s": round(result["warmup_s"], 1)})
        print(rows[-1], flush=True)
    base = results.get("jax", {}).get("steps_per_s")
    for row in rows:
        row["jax / this"] = round(base / results[row["trainer"]]["steps_per_s"], 2) if base else ""
    settings = (f"{args.map}, {args.num_bots} tribes, multi-scale views, network width {args.network_width}, "
                f"{args.n_envs} envs x {args.n_steps} steps, minibatch {args.batch_size}, "
                f"{args.update_epochs} epochs, {args.updates} timed updates; torch/SB3 device {args.device}")
    write_results(args.out_name, rows, ["trainer", "env steps/s", "jax / this", "per update: split",
                                        "warm-up update s"], f"Trainers side by side ({settings})")


if __name__ == "__main__":
    main()
