"""A boat crossing on OpenFront's full Australia map, against what OpenFront's own engine did.

The scenario (run under node with the engine's TypeScript core, outside this repository: scamiv/OpenFrontIO
at 1ebac8e, its own `createGame` with DefaultConfig, Singleplayer, no nations or bots): a human spawned at
(1542, 1268) on the mainland's south coast sends 5,000 troops by boat to Tasmania's shore at (1500, 1331)
on the first tick after the spawn phase, as a client's boat intent. The engine's figures, recorded from
that run, are `ENGINE` and `ENGINE_GROWTH` below. This script plays the same scenario in jaxms and prints
both: the launch tile, the landing (ticks after the order), the player's troops then, the tiles held on
Tasmania (the land mass of the landing tile) every 10 ticks after the landing, and 95 ticks after it the
Tasmanian tiles and the mainland tiles gained beyond the spawn. The engine seeds a boat's attack at its
landing only, so it takes nothing on the mainland.

(The engine's own test helpers build games with `tests/util/TestConfig`, which takes exactly one tile per
attack per tick: 96 Tasmanian tiles at +95. That is not the game's rule; DefaultConfig's is.)

    python -m benchmarks.boat_landing [--maps-dir ../shared/maps/openfront]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np
from scipy import ndimage

from benchmarks.common import write_results
from jaxms import game, load_map
from jaxms.game import boats

SPAWN, LANDING, TROOPS, AFTER = (1542, 1268), (1500, 1331), 5_000, 95
# OpenFront's engine on this scenario (tsx under node, DefaultConfig, one human, no bots); the landing is
# counted in ticks after the order (the engine's game tick 205 for an order at tick 101).
ENGINE = {"launch_tile": [1542, 1270], "landing_tick": 104, "troops_at_landing": 57_657,
          "landing_island_tiles_after": 260, "mainland_tiles_gained_after": 0}
# Tasmanian tiles held that many ticks after the landing, in the same engine run.
ENGINE_GROWTH = {10: 25, 20: 57, 30: 85, 40: 105, 50: 132, 60: 163, 70: 193, 80: 223, 90: 250, 95: 260}


def play(maps_dir: str | None) -> dict:
    game_map = load_map("australia", maps_dir=maps_dir)
    arrays = game.map_arrays(game_map)
    width = arrays.shape[1]
    state = game.new_game(jax.random.key(0), arrays, ["human"], spawns=[SPAWN])
    start_tiles = int(state.tiles[1])
    dst = LANDING[1] * width + LANDING[0]
    state = boats.order_boat(state, 1, dst, TROOPS)
    tick = jax.jit(game.tick, static_argnums=(2,))
    rules = game.Rules()
    state = tick(state, arrays, rules)
    src = int(state.boat_src[1, 0])
    landing_tick = int(state.boat_arrive[1, 0])
    while int(state.tick) <= landing_tick:
        state = tick(state, arrays, rules)
    troops_at_landing = float(state.troops[1])
    run = jax.jit(game.run_ticks, static_argnums=(2,))
    labels, _ = ndimage.label(np.asarray(arrays.land))
    island = labels == labels[LANDING[1], LANDING[0]]
    growth, played = {}, 0
    for after in ENGINE_GROWTH:
        state = run(state, arrays, after - played)
        played = after
        growth[after] = int(((np.asarray(state.owner) == 1) & island).sum())
    owned = np.asarray(state.owner) == 1
    return {"launch_tile": [src % width, src // width], "landing_tick": landing_tick,
            "troops_at_landing": troops_at_landing,
            "landing_island_tiles_after": int((owned & island).sum()),
            "mainland_tiles_gained_after": int((owned & ~island).sum()) - start_tiles, "growth": growth}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps-dir", default="../shared/maps/openfront")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: benchmarks/results")
    args = parser.parse_args(argv)
    ours = play(args.maps_dir)
    rows = [{"figure": key, "engine": ENGINE[key], "jaxms": ours[key]} for key in ENGINE]
    rows += [{"figure": f"landing_island_tiles_{after}_ticks_after", "engine": tiles,
              "jaxms": ours["growth"][after]} for after, tiles in ENGINE_GROWTH.items()]
    write_results("boat_landing", rows, ["figure", "engine", "jaxms"],
                  "A boat crossing to Tasmania on the full Australia map: OpenFront's engine and jaxms",
                  out_dir=args.out_dir)

if __name__ == "__main__":
    main()
