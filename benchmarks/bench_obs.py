"""Observation cost: single- vs multi-scale observation building, against one game tick of the same map.

For each map size (built-in continents maps) a mid-game position is made: the agent and 10 tribes spawn,
everyone attacks unowned land, and `--warmup-ticks` ticks run with the scripted bots (fewer on maps over
1024x1024, scaled by area, at least 10: the cost measured does not depend on how much land is taken, every
pass is dense). The position is copied to `n_envs` envs, then timed in interleaved rounds (so all three
see the same load on a shared machine; each timed call follows an untimed tick, as in an env step, so it
starts with the caches a tick leaves), each jitted and vmapped over the envs:
- a single-scale observation step (`Observer.observe`: the global view, features, frame stack);
- a multi-scale observation step (global, local and tactical views);
- one game tick (`jaxms.game.tick` with `scripted_bots`).
Printed and saved: ms per call (the median over rounds; the minimum in the JSON), the ratios obs / tick and
multi / single, bytes of one multi-scale observation, and compile times. Views are sized by
`ObsConfig.for_map` (or `--config default` for its 1024x1024 sizes, 128 / 256->128 / 64, everywhere).

With `--centre-check`, also times what the local window's centre would cost as the centroid of the agent's
largest connected part: 4-neighbour label propagation at full resolution until it settles (a `while_loop`),
on the same positions, against the pooled-grid box search the observer uses.

Targets (issue 4, 2-core CPU, 1024x1024): multi-scale observation <= 50% of a tick; multi <= 2x single.

    python -m benchmarks.bench_obs [--sizes 256 512 1024 2048 4096] [--n-envs 1 8] [--max-tiles 2^25]
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
from jaxms import game, load_map
from jaxms.env.contract import AGENT, NUM_ACTIONS, ObsConfig
from jaxms.env.observe import Observer
from jaxms.env.views import box_argmax, fit_plans, pool_sums
from jaxms.game.bots import scripted_bots
from jaxms.maps.procedural import GENERATORS

TARGET_OBS_VS_TICK = 0.5
TARGET_MULTI_VS_SINGLE = 2.0


def mid_game(size: int, ticks: int, family: str = "continents") -> tuple[game.GameState, game.MapArrays]:
    """The agent and 10 tribes on <family>_<size>, everyone expanding, after `ticks` ticks."""
    arrays = game.map_arrays(load_map(f"{family}_{size}"))
    state = game.new_game(jax.random.key(0), arrays, ["human"] + ["tribe"] * 10)
    for player in range(1, state.num_players + 1):
        state = game.launch_attack(state, player, 0, 0.5 * state.troops[player])
    state = jax.jit(lambda s: game.run_ticks(s, arrays, ticks, bots=scripted_bots))(state)
    return jax.block_until_ready(state), arrays


def compile_seconds(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - start, compiled


def time_rounds(functions: dict, repeats: int, before=None) -> dict[str, list[float]]:
    """Seconds per call of each compiled (function, args), measured in interleaved rounds. `before`, a
    (function, args) pair, runs untimed before each timed call: a tick before an observation leaves the
    caches as an env step does (at 1024x1024 a warm cache would make the observation look 2x cheaper)."""
    times = {name: [] for name in functions}
    for fn, args in functions.values():  # warm up
        jax.block_until_ready(fn(*args))
    for _ in range(repeats):
        for name, (fn, args) in functions.items():
            if before is not None:
                jax.block_until_ready(before[0](*before[1]))
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - start)
    return times


def components_centre(owner: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(centroid float32[2] of the agent's largest 4-connected part, sweeps): min-label propagation over
    4-neighbours until nothing changes; the exact centre the observer's cheaper box search stands in for."""
    height, width = owner.shape
    mine = owner == AGENT
    big = jnp.int32(height * width)
    labels = jnp.where(mine, jnp.arange(height * width, dtype=jnp.int32).reshape(height, width), big)

    def sweep(carry):
        labels, _, count = carry
        padded = jnp.pad(labels, 1, constant_values=big)
        neighbours = jnp.minimum(jnp.minimum(padded[:-2, 1:-1], padded[2:, 1:-1]),
                                 jnp.minimum(padded[1:-1, :-2], padded[1:-1, 2:]))
        new = jnp.where(mine, jnp.minimum(labels, neighbours), big)
        return new, jnp.any(new != labels), count + 1

    labels, _, count = jax.lax.while_loop(lambda c: c[1], sweep, (labels, jnp.bool_(True), jnp.int32(0)))
    sizes = jax.ops.segment_sum(mine.ravel().astype(jnp.int32), jnp.minimum(labels, big - 1).ravel(),
                                num_segments=height * width)
    largest = (labels == jnp.argmax(sizes)).astype(jnp.float32)
    total = jnp.maximum(largest.sum(), 1.0)
    cy = (largest.sum(axis=1) * jnp.arange(height)).sum() / total
    cx = (largest.sum(axis=0) * jnp.arange(width)).sum() / total
    return jnp.stack([cy, cx]), count


def pooled_box_centre(owner: jax.Array, config: ObsConfig) -> jax.Array:
    """The observer's local-centre search alone (own area pooled to the global grid, box search)."""
    plan_y, plan_x = fit_plans(*owner.shape, config.global_size)
    own = pool_sums([(owner == AGENT, 1)], plan_y, plan_x)[..., 0]
    cells = max(1, round(config.local_view_size / float(plan_y.scale)))
    return box_argmax(own, cells)[0]


def bench_size(size: int, n_envs_list: list[int], args) -> list[dict]:
    ticks = max(10, round(args.warmup_ticks * min(1.0, (1024 / size) ** 2)))
    state, arrays = mid_game(size, ticks, args.family)
    mask = jnp.ones(NUM_ACTIONS, bool)
    sized_for = 1024 if args.config == "default" else size  # "default": the 1024x1024 sizes on every map
    configs = {mode: ObsConfig.for_map(sized_for, sized_for, mode) for mode in ("single", "multi")}
    rows = []
    for n_envs in n_envs_list:
        if size * size * n_envs > args.max_tiles:
            print(f"skip {size}x{size} x {n_envs} envs (over --max-tiles)", flush=True)
            continue
        games = jax.tree.map(lambda leaf, n=n_envs: jnp.broadcast_to(leaf, (n, *leaf.shape)), state)
        functions, compile_s = {}, {}
        for mode, config in configs.items():
            observer = Observer(config)
            _, memory = jax.jit(jax.vmap(observer.init, in_axes=(0, None, None)))(games, arrays, mask)
            observe = jax.vmap(observer.observe, in_axes=(0, None, None, 0))
            compile_s[mode], compiled = compile_seconds(observe, games, arrays, mask, memory)
            functions[mode] = (compiled, (games, arrays, mask, memory))
        tick = jax.vmap(lambda g, a: game.tick(g, a, game.Rules(), scripted_bots), in_axes=(0, None))
        compile_s["tick"], compiled = compile_seconds(tick, games, arrays)  # the map an argument, as above
        functions["tick"] = (compiled, (games, arrays))
        times = time_rounds(functions, args.repeats, before=functions["tick"])
        ms = {name: 1000.0 * float(np.median(t)) for name, t in times.items()}
        best = {name: 1000.0 * float(np.min(t)) for name, t in times.items()}
        multi = configs["multi"]
        rows.append({
            "map": f"{size}x{size}", "n_envs": n_envs,
            "views": f"{multi.global_size}/{multi.local_view_size}->{multi.local_size}/{multi.tactical_size}",
            "single_ms": round(ms["single"], 2), "multi_ms": round(ms["multi"], 2),
            "tick_ms": round(ms["tick"], 2),
            "single_vs_tick": round(ms["single"] / ms["tick"], 3),
            "multi_vs_tick": round(ms["multi"] / ms["tick"], 3),
            "multi_vs_single": round(ms["multi"] / ms["single"], 2),
            "multi_ms_per_env": round(ms["multi"] / n_envs, 2),
            "obs_kb_per_env": round(multi.nbytes / 1024, 1),
            "min_ms": {name: round(v, 2) for name, v in best.items()},
            "compile_s": {name: round(v, 1) for name, v in compile_s.items()},
            "warmup_ticks": ticks, "agent_tiles": int(state.tiles[AGENT]),
        })
        print(rows[-1], flush=True)
    if args.centre_check and size == 1024:
        owner = state.owner
        components = jax.jit(components_centre)
        box = jax.jit(lambda o: pooled_box_centre(o, configs["multi"]))
        times = time_rounds({"components": (components, (owner,)), "box": (box, (owner,))}, args.repeats)
        _, sweeps = components(owner)
        rows.append({"map": f"{size}x{size}", "n_envs": 1, "views": "centre check",
                     "components_ms": round(1000 * float(np.median(times["components"])), 2),
                     "components_sweeps": int(sweeps),
                     "box_search_ms": round(1000 * float(np.median(times["box"])), 2)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--warmup-ticks", type=int, default=100, help="ticks before timing, up to 1024x1024")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--family", default="continents", choices=list(GENERATORS),
                        help="built-in map generator (maps are <family>_<size>)")
    parser.add_argument("--config", choices=["preset", "default"], default="preset",
                        help="views by ObsConfig.for_map for each map (preset) or its 1024x1024 sizes, "
                        "128 / 256->128 / 64, on every map (default)")
    parser.add_argument("--max-tiles", type=float, default=2**25,
                        help="skip cases with more tiles than this over all envs (too slow or big here)")
    parser.add_argument("--centre-check", action=argparse.BooleanOptionalAction, default=True,
                        help="at 1024x1024, time a connected-components centre against the box search")
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--name", default="bench_obs")
    args = parser.parse_args()

    rows = []
    for size in tqdm(args.sizes, desc="bench_obs", disable=None):
        rows.extend(bench_size(size, args.n_envs, args))
    device = jax.devices()[0]
    columns = ["map", "n_envs", "views", "single_ms", "multi_ms", "tick_ms", "single_vs_tick",
               "multi_vs_tick", "multi_vs_single", "multi_ms_per_env", "obs_kb_per_env", "components_ms",
               "components_sweeps", "box_search_ms"]
    write_results(args.name, rows, columns,
                  f"Observation cost ({device.platform}: {device.device_kind}; {args.config} views; "
                  f"targets at 1024x1024: multi <= {TARGET_OBS_VS_TICK:.0%} of a tick, multi <= "
                  f"{TARGET_MULTI_VS_SINGLE:g}x single)", args.out_dir)


if __name__ == "__main__":
    main()
