"""Evaluate a trained agent against the tribes, next to baseline policies in the same seat.

    python -m jaxms.evaluate runs/NAME_TIMESTAMP [--games 50] [--map SPEC] [--baselines random,wait,tribe]

Plays N games (one episode each, all games batched with vmap) and reports per policy: win rate, mean final
land share, mean final rank and mean survival (steps survived), each with a 95% confidence interval
(Wilson for the win rate, normal for the means). Baselines in the agent's seat: uniform random over legal
actions, always WAIT, and the tribe AI itself (the seat played by the tribe rules). Writes JSON and prints
a table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxms.env.actions import WAIT

BASELINES = ("random", "wait", "tribe")
POLICY_KINDS = ("sample", "greedy")

Policy = Callable[[jax.Array, dict], jax.Array]  # (key, batched obs) -> int32[N] actions


def network_policy(network, params, greedy: bool = False) -> Policy:
    """Actions of a trained network: sampled from its policy, or its most likely action."""

    def act(key, obs):
        logits, _, _ = network.apply(params, obs)
        actions = jnp.argmax(logits, axis=-1) if greedy else jax.random.categorical(key, logits)
        return actions.astype(jnp.int32)

    return act


def random_policy(key: jax.Array, obs: dict) -> jax.Array:
    """Uniform over the legal actions."""
    return jax.random.categorical(key, jnp.where(obs["action_mask"], 0.0, -1e9)).astype(jnp.int32)


def wait_policy(key: jax.Array, obs: dict) -> jax.Array:
    del key
    return jnp.full(obs["action_mask"].shape[:-1], WAIT * 5, jnp.int32)


def play_games(env, params, policy: Policy, num_games: int, key: jax.Array, max_steps: int | None = None
               ) -> dict[str, np.ndarray]:
    """Play `num_games` episodes to their end (or `max_steps`); per game: won, land_share, rank, steps, dead.

    Each game runs until it terminates or is truncated; finished games are frozen while others go on.
    """
    max_steps = int(params.max_steps) if max_steps is None else max_steps
    reset_key, play_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_games), params)
    step = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
    zeros = jnp.zeros(num_games)
    record = {"won": zeros.astype(bool), "land_share": zeros, "rank": zeros, "steps": zeros.astype(jnp.int32),
              "dead": zeros.astype(bool), "finished": zeros.astype(bool)}

    def body(carry):
        obs, state, key, record, t = carry
        key, act_key, step_key = jax.random.split(key, 3)
        actions = policy(act_key, obs)
        new_obs, new_state, _, terminated, truncated, info = step(jax.random.split(step_key, num_games),
                                                                  state, actions, params)
        ended = (terminated | truncated | (t + 1 >= max_steps)) & ~record["finished"]
        record = {
            "won": jnp.where(ended, info["won"], record["won"]),
            "land_share": jnp.where(ended, info["land_share"], record["land_share"]),
            "rank": jnp.where(ended, info["rank"], record["rank"]),
            "steps": jnp.where(ended, new_state.steps, record["steps"]),
            "dead": jnp.where(ended, info["dead"], record["dead"]),
            "finished": record["finished"] | ended,
        }
        keep = lambda new, old: jnp.where(  # noqa: E731 (finished games stay as they ended)
            record["finished"].reshape(-1, *([1] * (new.ndim - 1))), old, new)
        return (jax.tree.map(keep, new_obs, obs), jax.tree.map(keep, new_state, state), key, record, t + 1)

    def running(carry):
        return ~carry[3]["finished"].all() & (carry[4] < max_steps)

    @jax.jit
    def run(obs, state, key):
        return jax.lax.while_loop(running, body, (obs, state, key, record, jnp.int32(0)))[3]

    results = run(obs, state, play_key)
    return {name: np.asarray(value) for name, value in results.items() if name != "finished"}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(games: dict[str, np.ndarray]) -> dict[str, float]:
    """Win rate and means with 95% confidence intervals."""
    n = len(games["won"])
    wins = int(games["won"].sum())
    low, high = wilson_interval(wins, n)
    summary = {"games": n, "win_rate": wins / n, "win_rate_ci": [low, high]}
    for name, key in (("land_share", "land_share"), ("rank", "rank"), ("survival_steps", "steps")):
        values = games[key].astype(np.float64)
        half = 1.96 * values.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
        summary[name] = float(values.mean())
        summary[name + "_ci"] = [float(values.mean() - half), float(values.mean() + half)]
    summary["died"] = float(games["dead"].mean())
    return summary


def evaluate_policies(env_factory, params_factory, policies: dict[str, Policy | str], num_games: int,
                      seed: int = 0) -> dict[str, dict]:
    """Summaries per policy; a policy given as "tribe" plays the seat with the tribe rules (autopilot)."""
    results = {}
    for name, policy in policies.items():
        env = env_factory(autopilot=policy == "tribe")
        params = params_factory(env)
        play = wait_policy if policy == "tribe" else policy
        games = play_games(env, params, play, num_games, jax.random.key(seed))
        results[name] = summarise(games)
    return results


def format_table(results: dict[str, dict]) -> str:
    lines = [f"{'policy':<10} {'games':>5} {'win rate (95% CI)':>22} {'land share':>11} {'rank':>6} "
             f"{'survival':>9} {'died':>5}"]
    for name, r in results.items():
        ci = f"{r['win_rate']:.2f} [{r['win_rate_ci'][0]:.2f}, {r['win_rate_ci'][1]:.2f}]"
        lines.append(f"{name:<10} {r['games']:>5} {ci:>22} {r['land_share']:>11.3f} {r['rank']:>6.2f} "
                     f"{r['survival_steps']:>9.1f} {r['died']:>5.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from jaxms.train import build_run, load_run  # the trainer builds env and network from a run's config

    parser = argparse.ArgumentParser(prog="python -m jaxms.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a run folder (runs/NAME_TIMESTAMP) or its best/, final/ or "
                                           "checkpoints/ folder")
    parser.add_argument("--games", type=int, default=50, help="games per policy (default 50)")
    parser.add_argument("--map", default=None, help="map spec to play on (default: the run's map)")
    parser.add_argument("--baselines", default=",".join(BASELINES),
                        help=f"comma-separated baselines from {', '.join(BASELINES)}, or 'none'")
    parser.add_argument("--policy", choices=POLICY_KINDS, default="sample",
                        help="sample from the agent's policy (default) or take its most likely action")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (default: "
                                                                 "<run>/evaluation.json)")
    args = parser.parse_args(argv)
    if args.games < 1:
        parser.error(f"--games must be >= 1, got {args.games}")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip() and args.baselines != "none"]
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        parser.error(f"unknown baselines {unknown}: accepted are {', '.join(BASELINES)} or none")
    try:
        config, run_dir, network, trained = load_run(args.checkpoint, map_override=args.map)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    policies: dict[str, Policy | str] = {"agent": network_policy(network, trained, args.policy == "greedy")}
    policies.update({name: {"random": random_policy, "wait": wait_policy, "tribe": "tribe"}[name]
                     for name in baselines})

    def env_factory(autopilot: bool):
        return build_run(config, agent_autopilot=autopilot)[0]

    results = evaluate_policies(env_factory, lambda env: env.default_params, policies, args.games, args.seed)
    print(f"{config.map}, {config.num_bots} tribes, {args.games} games per policy ({args.policy} actions)")
    print(format_table(results))
    out = args.out or Path(run_dir) / "evaluation.json"
    out.write_text(json.dumps({"map": config.map, "num_bots": config.num_bots, "games": args.games,
                               "policy": args.policy, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
