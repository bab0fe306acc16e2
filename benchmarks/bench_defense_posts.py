"""What defense posts cost the tick: the same games with `Rules.defense_posts` off and on, timed in turns.

bench_env's set-up (the agent and `--num-bots` tribes on a built-in continents map, `--warmup-steps` env
steps of random legal actions), then `--posts` completed defense posts put into structure slots: first on
the front of every running attack on a player (a target tile next to the attacker), then at the spawns of
further tribes. Both programs are compiled first, then timed alternately `--rounds` times (so a machine
whose load changes affects both alike); with the rule off the compiled tick is the one of before posts were
read. Printed and saved: ms per tick (min and median), the ratio, the tiles owned differently after the
timed ticks (the posts at work) and the machine's load average. Early in a game on a large map nobody
attacks a player yet (no post on a front, no tile owned differently); the work per tick is the same
either way, as it does not depend on which tiles are covered.

    python -m benchmarks.bench_defense_posts [--size 1024] [--posts 8] [--ticks 20] [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from benchmarks.bench_env import warmed_up
from benchmarks.common import write_results
from jaxms import load_map
from jaxms.env import make_env
from jaxms.game.bots import scripted_bots
from jaxms.game.loop import tick
from jaxms.game.rules import Rules
from jaxms.game.structures import DEFENSE_POST


def place_posts(game, num_posts: int):
    """`game` (one env) with `num_posts` completed defense posts, on attacked fronts first, then at spawns;
    and how many are on a front."""
    owner = np.asarray(game.owner)
    attacks = np.asarray(game.attacks)
    spots = []
    for attacker, target in zip(*np.nonzero(attacks[1:, 1:] > 0), strict=True):
        attacker, target = attacker + 1, target + 1
        near = np.zeros_like(owner, bool)
        near[1:] |= owner[:-1] == attacker
        near[:-1] |= owner[1:] == attacker
        near[:, 1:] |= owner[:, :-1] == attacker
        near[:, :-1] |= owner[:, 1:] == attacker
        ys, xs = np.nonzero(near & (owner == target))
        if len(ys):
            spots.append((target, ys[len(ys) // 2], xs[len(xs) // 2]))
    on_fronts = min(len(spots), num_posts)
    spawns = np.asarray(game.spawn)
    alive = np.asarray(game.alive)
    for player in range(2, len(spawns)):
        if alive[player] and owner[spawns[player, 0], spawns[player, 1]] == player:
            spots.append((player, spawns[player, 0], spawns[player, 1]))
    spots = (spots * num_posts)[:num_posts]
    return game.replace(
        structure_kind=jnp.full(num_posts, DEFENSE_POST, jnp.int8),
        structure_owner=jnp.array([s[0] for s in spots], jnp.uint8),
        structure_pos=jnp.array([(s[1], s[2]) for s in spots], jnp.int32),
        structure_level=jnp.ones(num_posts, jnp.int32),
        structure_ready=jnp.zeros(num_posts, jnp.int32)), on_fronts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--num-bots", type=int, default=10)
    parser.add_argument("--posts", type=int, default=8)
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=20, help="ticks per timed call")
    parser.add_argument("--rounds", type=int, default=15, help="timed calls of each program, in turns")
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--name", default="bench_defense_posts")
    args = parser.parse_args()

    env = make_env(load_map(f"continents_{args.size}"), num_bots=args.num_bots, ticks_per_step=10,
                   max_steps=10**6, reset_pool_size=2)
    params = env.default_params
    _, state = warmed_up(env, params, args.warmup_steps)
    game, on_fronts = place_posts(jax.tree.map(lambda x: x[0], state.game), args.posts)

    arrays = env.map_arrays(params)  # an argument of the programs, as in the env's step

    def ticks(rules):
        def run(one, arrays):
            return jax.lax.scan(lambda g, _: (tick(g, arrays, rules, scripted_bots), None), one, None,
                                length=args.ticks)[0]
        return jax.jit(run)

    programs = {"off": ticks(Rules(defense_posts=False)), "on": ticks(Rules())}
    ends = {name: jax.block_until_ready(run(game, arrays)) for name, run in programs.items()}
    differ = int((ends["off"].owner != ends["on"].owner).sum())
    times = {name: [] for name in programs}
    load_before = os.getloadavg()[0]
    for _ in tqdm(range(args.rounds), desc="bench_defense_posts", disable=None):
        for name, run in programs.items():
            start = time.perf_counter()
            jax.block_until_ready(run(game, arrays))
            times[name].append(1000.0 * (time.perf_counter() - start) / args.ticks)
    load = f"{load_before:.1f}-{os.getloadavg()[0]:.1f}"
    rows = [{"map": f"{args.size}x{args.size}", "players": args.num_bots + 1, "posts": args.posts,
             "defense_posts": name, "tick_ms_min": round(min(v), 2),
             "tick_ms_median": round(float(np.median(v)), 2), "load_avg": load} for name, v in times.items()]
    ratio = min(times["on"]) / min(times["off"])
    for row in rows:
        row["on_vs_off_min"] = round(ratio, 3)
        row["tiles_owned_differently"] = differ
        row["posts_on_fronts"] = on_fronts
    columns = ["map", "players", "posts", "posts_on_fronts", "defense_posts", "tick_ms_min", "tick_ms_median",
               "on_vs_off_min", "tiles_owned_differently", "load_avg"]
    device = jax.devices()[0]
    write_results(args.name, rows, columns,
                  f"Defense posts in the conquest ({device.platform}: {device.device_kind}; {args.ticks} "
                  f"ticks per call, {args.rounds} calls each, in turns)", args.out_dir)


if __name__ == "__main__":
    main()
