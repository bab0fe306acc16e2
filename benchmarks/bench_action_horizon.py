"""How long one action keeps acting: the measurement behind the default `ticks_per_step` (10).

From the env's start positions (the agent against tribes), the agent sends each intensity's share of its
troops into unowned land once and then waits. Per intensity we record, over several games: the ticks until
the attack is spent, and the share of the attack's final gain already taken after 5, 10, 20 and 50 ticks.
If one attack runs for many ticks, a step of 10 ticks lets the agent re-aim several times while it runs;
if it were over within a step, the agent could not steer it at all.

    python -m benchmarks.bench_action_horizon [--map continents_256] [--games 16] [--ticks 200]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import write_results
from jaxms import load_map
from jaxms.env import make_env
from jaxms.env.contract import AGENT, INTENSITIES
from jaxms.game.bots import scripted_bots
from jaxms.game.loop import launch_orders, tick
from jaxms.game.spawn import launch_attack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", default="continents_256")
    parser.add_argument("--num-bots", type=int, default=10)
    parser.add_argument("--games", type=int, default=16)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args()

    env = make_env(load_map(args.map), num_bots=args.num_bots, reset_pool_size=1)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(
        jax.random.split(jax.random.key(0), args.games), env.default_params)

    arrays = env.map_arrays(env.default_params)  # an argument, as in the env's step

    def play(game, share, arrays):
        game = launch_orders(launch_attack(game, AGENT, 0, jnp.floor(game.troops[AGENT] * share)))

        def body(g, _):
            g = tick(g, arrays, env.rules, scripted_bots)
            return g, (g.attacks[AGENT, 0], g.tiles[AGENT])

        _, (attack, tiles) = jax.lax.scan(body, game, None, length=args.ticks)
        return attack, tiles

    run = jax.jit(jax.vmap(play, in_axes=(0, None, None)))
    rows = []
    for share in INTENSITIES:
        attack, tiles = (np.asarray(x) for x in run(states.game, share, arrays))
        running = attack > 0
        lasted = np.where(running.all(axis=1), args.ticks, np.argmin(running, axis=1))
        gain = tiles - tiles[:, :1]
        final = np.maximum(gain[np.arange(args.games), np.maximum(lasted - 1, 0)], 1)
        row = {"intensity": share, "ticks_running_median": int(np.median(lasted)),
               "ticks_running_min": int(lasted.min()), "tiles_gained_median": int(np.median(final))}
        for horizon in (5, 10, 20, 50):
            done = np.minimum(gain[:, horizon - 1] / final, 1.0)
            row[f"done_after_{horizon}"] = round(float(np.median(done)), 2)
        rows.append(row)
    write_results("bench_action_horizon", rows,
                  ["intensity", "ticks_running_median", "ticks_running_min", "tiles_gained_median",
                   "done_after_5", "done_after_10", "done_after_20", "done_after_50"],
                  f"How long one attack into unowned land runs ({args.map}, {args.num_bots} tribes, "
                  f"{args.games} games; done_after_N: share of the attack's gain taken after N ticks)",
                  args.out_dir)


if __name__ == "__main__":
    main()
