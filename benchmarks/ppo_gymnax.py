"""jaxms's PPO (`jaxms.ppo.make_train`) on gymnax's classic-control tasks with PureJaxRL's hyperparameters.

PureJaxRL's CartPole-v1 PPO (purejaxrl/ppo.py): 4 envs x 128 steps, 5e5 steps, 4 epochs of 4 minibatches,
Adam 2.5e-4 annealed linearly to 0, gamma 0.99, GAE lambda 0.95, clip 0.2, entropy 0.01, value 0.5 with
its clipped value loss (value_loss="max_clipped"), gradient norm 0.5, its 64-64 tanh actor-critic
(`jaxms.ppo.ActorCritic`). The same settings run on Acrobot-v1. gymnax's environments are used unchanged
(six-value step; the trainer records episode returns itself).

Reported per run: the mean episode return of the episodes finished in the last 10 updates (about 5,000
steps), and the first 10 updates' for comparison, against the published figures: CartPole-v1 500
(PureJaxRL's curve; gymnax's README), Acrobot-v1 -80 (gymnax's README, gymnax-blines' PPO, its own
hyperparameters).

    python -m benchmarks.ppo_gymnax [--seeds 4] [--envs CartPole-v1,Acrobot-v1]

Writes benchmarks/results/ppo_gymnax.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import numpy as np

from benchmarks.common import write_results
from jaxms.ppo import ActorCritic, PPOConfig, make_train

PUREJAXRL = dict(num_envs=4, n_steps=128, num_minibatches=4, update_epochs=4, total_timesteps=500_000,
                 learning_rate=2.5e-4, lr_schedule="linear", gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
                 ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, value_loss="max_clipped",
                 updates_per_chunk=61)  # 976 updates = 16 chunks of 61
PUBLISHED = {"CartPole-v1": 500.0, "Acrobot-v1": -80.0}
SOURCE = {"CartPole-v1": "PureJaxRL (same hyperparameters)",
          "Acrobot-v1": "gymnax README (gymnax-blines PPO, other hyperparameters)"}
LAST = 10  # updates averaged for the final figure


def run(env_name: str, seed: int) -> dict:
    import gymnax

    env, env_params = gymnax.make(env_name)
    config = PPOConfig(**PUREJAXRL)
    start = time.perf_counter()
    trainer = make_train(config, env, env_params, ActorCritic(num_actions=env.action_space(env_params).n))
    runner = trainer.init(jax.random.key(seed))
    returns = []
    while int(runner.update) < config.num_updates:
        runner, metrics = trainer.train_chunk(runner)
        returns.extend(np.asarray(metrics["episode_return"]).tolist())
        if len(returns) == config.updates_per_chunk:
            first_chunk = time.perf_counter() - start
    seconds = time.perf_counter() - start
    final = float(np.nanmean(returns[-LAST:]))
    return {"env": env_name, "seed": seed, "env_steps": int(runner.env_steps), "updates": len(returns),
            "first_return": round(float(np.nanmean(returns[:LAST])), 1), "final_return": round(final, 1),
            "published": PUBLISHED[env_name], "seconds": round(seconds, 1),
            "first_chunk_s": round(first_chunk, 1),  # compilation and the first chunk (1/16 of the run)
            "steps_per_s_after_compile": round(int(runner.env_steps) * 15 / 16 / (seconds - first_chunk))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ppo_gymnax", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4, help="seeds per environment (0, 1, ...)")
    parser.add_argument("--envs", default="CartPole-v1,Acrobot-v1", help="gymnax environment names")
    args = parser.parse_args(argv)
    rows = []
    for env_name in args.envs.split(","):
        for seed in range(args.seeds):
            rows.append(run(env_name, seed))
            print(rows[-1], flush=True)
    summary = []
    for env_name in args.envs.split(","):
        finals = [row["final_return"] for row in rows if row["env"] == env_name]
        summary.append({"env": env_name, "seeds": len(finals),
                        "final_return_mean": round(float(np.mean(finals)), 1),
                        "final_return_min": min(finals),
                        "published": PUBLISHED[env_name], "published_by": SOURCE[env_name]})
    columns = ["env", "seed", "env_steps", "first_return", "final_return", "published", "seconds",
               "first_chunk_s", "steps_per_s_after_compile"]
    write_results("ppo_gymnax", rows, columns,
                  "jaxms PPO on gymnax classic control, PureJaxRL's CartPole hyperparameters (5e5 steps)",
                  sections={"summary": ("Summary (final = mean return of the last 10 updates' episodes)",
                                        summary, ["env", "seeds", "final_return_mean", "final_return_min",
                                                  "published", "published_by"])})


if __name__ == "__main__":
    main()
