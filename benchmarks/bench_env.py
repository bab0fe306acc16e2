"""Simulation speed and memory: game ticks and env steps per second by map size and number of envs.

For each map size (built-in continents maps) and n_envs, the envs are first played for `--warmup-steps`
steps with random legal actions (so attacks run and borders exist, as in training), then timed:
- game ticks alone (the agent's attacks and the bots' running; no observation), vmapped over the envs;
- env steps (an action, `ticks_per_step` ticks, direction targets and the observation, auto-reset).
Printed and saved: ms per tick (batch and per env), ns per tile per tick, env steps/s, the batch's cost per
env relative to one env, state bytes per env, XLA's peak memory estimate for the step, and compile time.

Targets (issue 3, 2-core CPU, 1024x1024, 10 tribes): a tick <= 10 ms for one env (aim 5); a batch's cost
per env within 1.5x of one env's; state < 8 MB per env.

    python -m benchmarks.bench_env [--sizes 128 256 512 1024 2048] [--n-envs 1 8 32] [--budget-s 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from benchmarks.common import write_results
from jaxms import load_map
from jaxms.env import make_env
from jaxms.game.bots import scripted_bots
from jaxms.game.loop import tick

TARGET_TICK_MS_1024 = 10.0


def tree_bytes(tree) -> int:
    return sum(x.nbytes if not jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else 8
               for x in jax.tree.leaves(tree))


def random_policy_rollout(env, params, num_steps: int):
    """A jittable scan of `num_steps` env steps with uniformly random legal actions, vmapped over envs."""

    def one_step(carry, _):
        obs, state, key = carry
        key, action_key, step_key = jax.random.split(key, 3)
        logits = jnp.where(obs["action_mask"], 0.0, -1e9)
        actions = jax.random.categorical(action_key, logits)
        step_keys = jax.random.split(step_key, actions.shape[0])
        obs, state, reward, _done, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            step_keys, state, actions, params)
        return (obs, state, key), reward.mean()

    def rollout(obs, state, key):
        (obs, state, key), rewards = jax.lax.scan(one_step, (obs, state, key), None, length=num_steps)
        return obs, state, key, rewards

    return rollout


def game_ticks(env, num_ticks: int):
    """A jittable scan of `num_ticks` game ticks (scripted bots) over a batch of games; the map's arrays
    are an argument (`env.map_arrays(params)`), as in the env's step."""

    def run(games, arrays):
        def body(g, _):
            return jax.vmap(lambda one: tick(one, arrays, env.rules, scripted_bots))(g), None

        games, _ = jax.lax.scan(body, games, None, length=num_ticks)
        return games

    return run


def timed(fn, *args, repeats: int = 3):
    """(median seconds per call, last result); the first call (compile) is not counted."""
    result = jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def compile_seconds_and_memory(fn, *args) -> tuple[float, int | None]:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - start
    try:
        analysis = compiled.memory_analysis()
        peak = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
                + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)
    except (AttributeError, NotImplementedError, TypeError):
        peak = None
    return seconds, peak


def bench_case(size: int, n_envs: int, args) -> dict:
    game_map = load_map(f"continents_{size}")
    env = make_env(game_map, num_bots=args.num_bots, ticks_per_step=args.ticks_per_step, max_steps=10**6,
                   reset_pool_size=2)
    params = env.default_params
    keys = jax.random.split(jax.random.key(0), n_envs)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    warm = jax.jit(random_policy_rollout(env, params, args.warmup_steps))
    obs, state, key, _ = jax.block_until_ready(warm(obs, state, jax.random.key(1)))

    # Game ticks only. Scale the tick count so one timed call stays within the budget.
    tick_count = max(2, min(args.ticks, int(args.ticks * 128 * 128 * 8 / (size * size * n_envs))))
    arrays = env.map_arrays(params)
    run_ticks = jax.jit(game_ticks(env, tick_count))
    tick_compile, _ = compile_seconds_and_memory(game_ticks(env, tick_count), state.game, arrays)
    tick_seconds, _ = timed(run_ticks, state.game, arrays, repeats=args.repeats)
    ms_per_tick = 1000.0 * tick_seconds / tick_count

    # Env steps (action + ticks_per_step ticks + observation + auto-reset).
    step_count = max(1, tick_count // args.ticks_per_step)
    rollout_fn = random_policy_rollout(env, params, step_count)
    step_compile, peak = compile_seconds_and_memory(rollout_fn, obs, state, key)
    rollout = jax.jit(rollout_fn)
    step_seconds, _ = timed(rollout, obs, state, key, repeats=args.repeats)
    env_steps_per_s = n_envs * step_count / step_seconds
    return {
        "map": f"{size}x{size}", "n_envs": n_envs,
        "tick_ms": round(ms_per_tick, 2),
        "tick_ms_per_env": round(ms_per_tick / n_envs, 2),
        "ns_per_tile_tick": round(1e9 * tick_seconds / (tick_count * n_envs * size * size), 2),
        "ticks_per_s": round(n_envs * tick_count / tick_seconds, 1),
        "env_steps_per_s": round(env_steps_per_s, 2),
        "state_mb_per_env": round(tree_bytes(state) / n_envs / 2**20, 2),
        "peak_mb": round(peak / 2**20, 1) if peak else "",
        "compile_s": round(tick_compile + step_compile, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--num-bots", type=int, default=10)
    parser.add_argument("--ticks-per-step", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=200, help="ticks per timed call at 128x128, 8 envs")
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tiles", type=float, default=2 * 2048 * 2048,
                        help="skip cases with more tiles than this over all envs (what does not fit)")
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--name", default="bench_env")
    args = parser.parse_args()

    cases = [(s, n) for s in args.sizes for n in args.n_envs if s * s * n <= args.max_tiles]
    rows = []
    for size, n_envs in tqdm(cases, desc="bench_env", disable=None):
        rows.append(bench_case(size, n_envs, args))
        print(rows[-1], flush=True)
    # Cost per env in a batch relative to one env of the same size (target <= 1.5).
    single = {r["map"]: r["tick_ms"] for r in rows if r["n_envs"] == 1}
    for row in rows:
        if row["map"] in single:
            row["batch_cost_vs_single"] = round(row["tick_ms_per_env"] / single[row["map"]], 2)
    device = jax.devices()[0]
    columns = ["map", "n_envs", "tick_ms", "tick_ms_per_env", "ns_per_tile_tick", "ticks_per_s",
               "env_steps_per_s", "batch_cost_vs_single", "state_mb_per_env", "peak_mb", "compile_s"]
    write_results(args.name, rows, columns,
                  f"Simulation speed ({device.platform}: {device.device_kind}; {args.num_bots} tribes, "
                  f"{args.ticks_per_step} ticks per env step; target at 1024x1024: "
                  f"<= {TARGET_TICK_MS_1024} ms per tick)", args.out_dir)


if __name__ == "__main__":
    main()
